"""Drawing primitives of the demo scenes: camera, canvas (image + labels), colour sampling and
the facade/fence patterns computed in metric plane coordinates.

Coordinates in metres: X to the right of the camera, D depth down the street, Z up from the
ground.
"""
import colorsys

import cv2
import numpy as np

from issegm.demo.styles import ID


class Camera:
    """Pinhole camera looking down the street (no roll, no pitch)."""

    def __init__(self, horizon_y, centre_x, focal, height):
        self.horizon_y, self.centre_x, self.focal, self.height = horizon_y, centre_x, focal, height

    def point(self, X, D, Z=0.0):
        """Pixel (x, y) of the point (X, D, Z)."""
        return (self.centre_x + self.focal * X / D,
                self.horizon_y + self.focal * (self.height - Z) / D)

    def points(self, xdz):
        return [self.point(*p) for p in xdz]

    def scale(self, D):
        """Pixels per metre at depth D."""
        return self.focal / D

    def ground_quad(self, X0, X1, D0, D1):
        """Pixel corners of the ground rectangle X0..X1 by D0..D1."""
        return self.points([(X0, D0, 0), (X1, D0, 0), (X1, D1, 0), (X0, D1, 0)])

    def side_quad(self, X, D0, D1, Z0, Z1):
        """Pixel corners of the rectangle D0..D1 by Z0..Z1 on the street-parallel plane at X."""
        return self.points([(X, D0, Z0), (X, D1, Z0), (X, D1, Z1), (X, D0, Z1)])

    def front_quad(self, X0, X1, D, Z0, Z1):
        """Pixel corners of the rectangle X0..X1 by Z0..Z1 on the camera-facing plane at D."""
        return self.points([(X0, D, Z0), (X1, D, Z0), (X1, D, Z1), (X0, D, Z1)])


def as_color(color):
    return tuple(float(v) for v in color)


def shade(color, factor):
    """The colour scaled by `factor`, capped at 255."""
    return tuple(min(255.0, v * factor) for v in color)


def adjust_saturation_value(color, saturation, value):
    """The colour with its HSV saturation and value scaled (each capped at 1)."""
    r, g, b = [v / 255.0 for v in color]
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    r, g, b = colorsys.hsv_to_rgb(h, min(1.0, s * saturation), min(1.0, v * value))
    return (r * 255.0, g * 255.0, b * 255.0)


def loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


class Canvas:
    """The float32 RGB image and the uint8 label-id map being drawn; a shape given a class name
    of None paints colour only, one given a colour of None labels only."""

    def __init__(self, height, width):
        self.height, self.width = height, width
        self.img = np.zeros((height, width, 3), np.float32)
        self.lab = np.zeros((height, width), np.uint8)

    @staticmethod
    def pixel_points(pts):
        """Rounded int32 polygon corners in the layout cv2.fillPoly takes."""
        return np.round(np.asarray(pts, np.float64)).astype(np.int32).reshape(-1, 1, 2)

    def poly(self, pts, cls, color):
        p = self.pixel_points(pts)
        if color is not None:
            cv2.fillPoly(self.img, [p], as_color(color))
        if cls is not None:
            cv2.fillPoly(self.lab, [p], int(ID[cls]))

    def rect(self, x0, y0, x1, y1, cls, color):
        """Axis-aligned rectangle, at least one pixel wide/high."""
        if x1 - x0 < 1.0:
            m = 0.5 * (x0 + x1)
            x0, x1 = m - 0.5, m + 0.5
        if y1 - y0 < 1.0:
            m = 0.5 * (y0 + y1)
            y0, y1 = m - 0.5, m + 0.5
        xa, xb = int(round(x0)), int(round(x1)) - 1
        ya, yb = int(round(y0)), int(round(y1)) - 1
        xb, yb = max(xa, xb), max(ya, yb)
        if color is not None:
            cv2.rectangle(self.img, (xa, ya), (xb, yb), as_color(color), -1)
        if cls is not None:
            cv2.rectangle(self.lab, (xa, ya), (xb, yb), int(ID[cls]), -1)

    def upright_rect(self, camera, X0, X1, D, Z0, Z1, cls, color):
        """The camera-facing rectangle X0..X1 by Z0..Z1 at depth D, as an axis-aligned `rect`."""
        bottom_left, top_right = camera.point(X0, D, Z0), camera.point(X1, D, Z1)
        self.rect(bottom_left[0], top_right[1], top_right[0], bottom_left[1], cls, color)

    def circle(self, cx, cy, r, cls, color, thickness=-1):
        c, r = (int(round(cx)), int(round(cy))), max(1, int(round(r)))
        if thickness > 0:
            thickness = max(1, int(round(thickness)))
        if color is not None:
            cv2.circle(self.img, c, r, as_color(color), thickness)
        if cls is not None:
            cv2.circle(self.lab, c, r, int(ID[cls]), thickness)

    def line(self, p0, p1, cls, color, thickness):
        a = (int(round(p0[0])), int(round(p0[1])))
        b = (int(round(p1[0])), int(round(p1[1])))
        t = max(1, int(round(thickness)))
        if color is not None:
            cv2.line(self.img, a, b, as_color(color), t)
        if cls is not None:
            cv2.line(self.lab, a, b, int(ID[cls]), t)

    def poly_mask(self, pts):
        """(y0, y1, x0, x1, bool mask) of a polygon, clipped to the image; None if empty."""
        p = self.pixel_points(pts)
        x0, y0 = np.maximum(p.reshape(-1, 2).min(0), 0)
        x1, y1 = np.minimum(p.reshape(-1, 2).max(0) + 1, [self.width, self.height])
        if x1 <= x0 or y1 <= y0:
            return None
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(m, [p - np.array([x0, y0], np.int32)], 1)
        return y0, y1, x0, x1, m.astype(bool)


class Painter:
    """Colour sampling for one domain and one image (the image's random stream is `rng`)."""

    def __init__(self, style, rng):
        self.style, self.rng = style, rng

    def base(self, key, jitter=None):
        """One of the palette's colours for `key`, jittered (overall and per channel)."""
        choices = self.style.palette[key]
        c = np.asarray(choices[self.rng.randint(len(choices))], np.float64)
        j = self.style.jitter if jitter is None else jitter
        c = c + self.rng.normal(0.0, j) + self.rng.normal(0.0, j * 0.4, 3)
        return tuple(np.clip(c, 0, 255))

    def instance(self, key):
        """Vehicle/clothes colours: same choices in both domains, desaturated in the target."""
        return adjust_saturation_value(self.base(key), self.style.instance_sat,
                                       self.style.instance_val)


def _plane_coords(camera, y0, y1, x0, x1, plane, value):
    """Metric (u, Z) coordinates of the pixels y0:y1, x0:x1 on a vertical plane: 'side' (the
    plane X=value, u is the depth) or 'front' (the plane D=value, u is X)."""
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    xx += 0.5
    yy += 0.5
    if plane == 'side':
        dx = xx - camera.centre_x
        dx[np.abs(dx) < 1e-3] = 1e-3
        D = camera.focal * value / dx
        u = D
    else:
        D = np.full_like(xx, value)
        u = (xx - camera.centre_x) * value / camera.focal
    Z = camera.height - (yy - camera.horizon_y) * D / camera.focal
    return u, Z


def _plane_patch(canvas, camera, pts, plane, value):
    """(image patch, mask, label patch, u, Z) of a polygon on a vertical plane; None if empty."""
    clipped = canvas.poly_mask(pts)
    if clipped is None:
        return None
    y0, y1, x0, x1, mask = clipped
    u, Z = _plane_coords(camera, y0, y1, x0, x1, plane, value)
    return canvas.img[y0:y1, x0:x1], mask, canvas.lab[y0:y1, x0:x1], u, Z


def paint_windows(canvas, camera, pts, plane, value, color, rng, ground_floor=3.2):
    """Rows of windows (and shop fronts below `ground_floor` metres) on a facade polygon."""
    patch = _plane_patch(canvas, camera, pts, plane, value)
    if patch is None:
        return
    img, mask, _, u, Z = patch
    pu, pz = rng.uniform(2.6, 4.0), rng.uniform(2.8, 3.4)
    wu, wz = pu * rng.uniform(0.35, 0.6), pz * rng.uniform(0.35, 0.55)
    ou = rng.uniform(0, pu)
    win = mask & (np.mod(u + ou, pu) < wu) & (np.mod(Z, pz) > pz - wz - 0.3) & \
        (np.mod(Z, pz) < pz - 0.3) & (Z > ground_floor)
    if ground_floor > 0:  # shop fronts
        win |= mask & (Z > 0.4) & (Z < ground_floor - 0.6) & (np.mod(u + ou, 2 * pu) < 1.4 * pu)
    img[win] = np.asarray(color, np.float32)


def paint_fence(canvas, camera, pts, plane, value, color, height):
    """A see-through mesh fence with posts and rails on a polygon; labels it fence."""
    patch = _plane_patch(canvas, camera, pts, plane, value)
    if patch is None:
        return
    img, mask, lab, u, Z = patch
    col = np.asarray(color, np.float32)
    img[mask] = 0.45 * img[mask] + 0.55 * col  # see-through mesh
    solid = mask & ((np.mod(u, 2.0) < 0.14) | (np.abs(Z - height + 0.05) < 0.07) |
                    (np.abs(Z - 0.3) < 0.06))
    img[solid] = col * 0.8
    lab[mask] = ID['fence']
