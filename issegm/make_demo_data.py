"""Deterministic synthetic street scenes for the CBST demo (a tiny GTA-5 -> Cityscapes stand-in).

``generate(root, seed=0, ...)`` writes two domains under ``root``:

* SOURCE, GTA-5 layout: ``gta/images/00001.png`` (RGB) and ``gta/labels/00001.png``
  (single-channel uint8 Cityscapes label ids), list ``gta/train.lst``.
* TARGET, Cityscapes layout:
  ``cityscapes/leftImg8bit/{train,val}/CITY/CITY_000000_0000NN_leftImg8bit.png`` and
  ``cityscapes/gtFine/{train,val}/CITY/CITY_000000_0000NN_gtFine_labelIds.png``, lists
  ``cityscapes/train.lst`` and ``cityscapes/val.lst``.

List files use the upstream format: one line per sample, ``image<TAB>label``, paths relative to
that dataset's root. Label ids come from ``cityscapesscripts.helpers.labels``.

CLI::

    python issegm/make_demo_data.py --output DIR --seed 0 [--num-source N --num-target-train N
        --num-target-val N --source-size HxW --target-size HxW]

Scenes
------
Every image is a pinhole-camera view down a straight street (all geometry is in metres and
projected, so sizes and shapes follow perspective): sky on top; a skyline of buildings and tree
groups where the street ends; side blocks of buildings (perspective facades with window
patterns), tree groups, or gaps showing terrain; the road (with lane marks that keep the road
label) flanked by sidewalks with a kerb; terrain strips; walls and fences; poles carrying traffic
lights, traffic signs or lamps; street trees; cars (rear/front face plus the visible side, wheels
included) in lanes and parked at the kerb; persons on sidewalks or crossing; riders on bicycles
and motorcycles (plus parked two-wheelers); trucks and buses (rare); a crossing tram labelled
``train`` (very rare); small ``static`` (void, id 4) street furniture. Objects are drawn far to
near so occlusion is consistent. Every image uses its own ``np.random.RandomState([seed, stream,
index])`` (stream 1 = source, 2 = target train, 3 = target val), so image N does not depend on the
requested counts, and the domains/splits never share a random stream.

Domain shift (source -> target), clear but learnable
-----------------------------------------------------
The classes keep their shapes, positions and context in both domains (no class changes its
colour family: sky stays the brightest, vegetation green, road a grey darker than the
sidewalk); what changes is:

* Palette, per class: GTA-like saturated, warm colours in the source (warm-grey asphalt, beige
  sidewalks, yellow-green vegetation, dry terrain, deep-blue sky with clouds, vivid vehicles and
  clothes, bright reflective windows); cooler, muddier colours in the target (blue-grey asphalt,
  pinkish-grey paved sidewalks, blue-green vegetation, greener terrain, hazy pale sky without
  clouds, vehicles and clothes desaturated to 75 %, dark windows).
* Lighting: source sunny (gain 0.9-1.15, warm cast, hard building shadows across the ground);
  target overcast and darker (gain 0.84-0.96, blue cast, vertical gradient from 1.04 at the top
  to 0.9 at the bottom, no cast shadows).
* Texture/noise: source crisp (strong white/yellow lane marks and road edge lines, sensor noise
  sigma 2); target faded lane marks (absent in 30 % of images), paving-tile pattern on the
  sidewalks, blotchier vegetation/sky, sensor noise sigma 4 and a slight blur.
* Geometry: target horizon lower in the frame (0.44-0.52 H vs 0.36-0.44 H), camera higher
  (1.7-2.1 m vs 1.4-1.7 m), roads of 2-3 lanes (vs 2-4), wider sidewalks (3-5.5 m vs
  1.8-3.2 m), smaller default frames (128x256 vs 160x288, so objects are ~10 % smaller), and an
  ego-vehicle hood band at the bottom (label id 1, ``ego vehicle``, ignored in training and
  evaluation).
* Frequencies: target has about half the cars, ~3x the persons, more riders (mostly on
  bicycles), more parked bicycles and street trees, fewer trucks; buses equally rare; trains
  (a crossing tram) ~1 % of images in both.

With a small FCN (8 conv layers, 500 Adam steps, no augmentation) on the default data (seed 0)
this gave 42 mIoU on held-out source images but 25 on the target val split (42 when trained on
the target labels instead); one round of class-balanced pseudo-labelling (top 20 % per class,
91 % correct) raised the target to 28, mostly on road, sidewalk, terrain and truck, i.e.
self-training recovers part of the gap.
"""
import argparse
import colorsys
import os
import sys
import time

try:
    import issegm  # noqa: F401
except ImportError:  # run by path without the repo root on sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import name2label

__all__ = ['generate', 'blend_styles', 'render_scene', 'SOURCE_STYLE', 'TARGET_STYLE', 'ID',
           'TRAIN_CITIES', 'VAL_CITIES', 'main']

_CLASS_NAMES = ['unlabeled', 'ego vehicle', 'static', 'road', 'sidewalk', 'building', 'wall',
                'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
                'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle']
#: Cityscapes label ids of the classes drawn here (from cityscapesscripts, never hand-typed).
ID = {n: name2label[n].id for n in _CLASS_NAMES}

TRAIN_CITIES = ('dummstadt', 'fakeburg')
VAL_CITIES = ('mockingen',)

DEFAULTS = dict(num_source=200, num_target_train=100, num_target_val=50,
                source_size=(160, 288), target_size=(128, 256))

_STREAM = {'source': 1, 'target_train': 2, 'target_val': 3}


class Style(object):
    """Parameters of one domain (see the module docstring for the differences)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _lut(values):
    lut = np.zeros(256, np.float32)
    for name, v in values.items():
        lut[ID[name]] = v
    return lut


SOURCE_STYLE = Style(
    name='source',
    horizon=(0.36, 0.44), cam_height=(1.4, 1.7), focal=(0.55, 0.65), lanes=(2, 4),
    sidewalk=(1.8, 3.2), strip_p=0.4, strip=(1.0, 4.0),
    n_lane_cars=2.2, n_parked_cars=1.8, n_persons=0.9, n_riders=0.35, p_bicycle=0.35,
    n_parked_bikes=0.15, p_truck=0.16, p_bus=0.07, p_train=0.01, n_poles=3.0, n_trees=0.8,
    p_wall=0.45, p_fence=0.45, n_static=0.3, p_veg_block=0.15, p_gap_block=0.15,
    p_crossing=0.15,
    palette=dict(
        road=[(122, 112, 106)], sidewalk=[(178, 162, 140)],
        building=[(168, 118, 92), (198, 186, 164), (150, 142, 146), (204, 170, 128)],
        wall=[(180, 168, 140)], fence=[(132, 104, 72), (110, 116, 120)], pole=[(96, 96, 92)],
        light_box=[(46, 46, 34)], sign=[(232, 200, 40), (214, 48, 38), (40, 80, 196)],
        vegetation=[(78, 142, 40)], terrain=[(164, 148, 86)],
        sky_top=[(84, 146, 236)], sky_horizon=[(186, 212, 246)],
        skin=[(228, 178, 146), (160, 112, 80)],
        clothes=[(200, 40, 40), (40, 70, 180), (236, 236, 236), (30, 30, 30), (120, 60, 140),
                 (230, 170, 40), (120, 90, 60)],
        car=[(204, 30, 30), (30, 60, 176), (232, 232, 232), (28, 28, 30), (152, 152, 162),
             (210, 164, 30), (112, 56, 30)],
        truck=[(222, 222, 216), (184, 62, 40), (62, 92, 156)],
        bus=[(228, 186, 40), (204, 52, 52), (62, 124, 204)], train=[(176, 176, 188)],
        moto=[(200, 40, 30), (40, 40, 44), (30, 80, 180)], bike=[(72, 72, 78), (190, 40, 40)],
        static=[(104, 92, 80)], window=[(150, 182, 214), (70, 86, 104)],
        lane=[(236, 236, 228), (236, 200, 40)], kerb=[(200, 196, 186)]),
    jitter=10.0, instance_sat=1.0, instance_val=1.0,
    fine=_lut({'road': 6, 'sidewalk': 4, 'building': 4, 'wall': 5, 'fence': 3, 'vegetation': 12,
               'terrain': 10, 'sky': 1, 'car': 2, 'truck': 2, 'bus': 2, 'train': 2,
               'person': 3, 'rider': 3, 'pole': 2, 'static': 4}),
    coarse=_lut({'road': 5, 'sidewalk': 4, 'building': 6, 'wall': 6, 'vegetation': 16,
                 'terrain': 14, 'sky': 0}),
    clouds=0.6, shadow_p=0.6, lane_marks=1.0, edge_lines=True, tiles=False,
    gain=(0.9, 1.15), cast=(1.05, 1.0, 0.93), gradient=(1.0, 1.0), gamma=1.0,
    sensor_noise=2.0, blur=0.0, ego=False,
)

TARGET_STYLE = Style(
    name='target',
    horizon=(0.44, 0.52), cam_height=(1.7, 2.1), focal=(0.55, 0.65), lanes=(2, 3),
    sidewalk=(3.0, 5.5), strip_p=0.5, strip=(1.0, 3.0),
    n_lane_cars=1.1, n_parked_cars=1.2, n_persons=2.6, n_riders=0.6, p_bicycle=0.75,
    n_parked_bikes=0.5, p_truck=0.07, p_bus=0.07, p_train=0.01, n_poles=3.0, n_trees=2.0,
    p_wall=0.4, p_fence=0.4, n_static=0.5, p_veg_block=0.3, p_gap_block=0.1,
    p_crossing=0.2,
    palette=dict(
        road=[(112, 110, 120)], sidewalk=[(170, 154, 152)],
        building=[(160, 128, 110), (186, 180, 170), (136, 132, 136), (184, 160, 132)],
        wall=[(166, 160, 146)], fence=[(120, 112, 96), (100, 108, 116)], pole=[(88, 88, 94)],
        light_box=[(40, 42, 40)], sign=[(214, 192, 60), (196, 58, 54), (52, 86, 176)],
        vegetation=[(70, 134, 66)], terrain=[(148, 148, 90)],
        sky_top=[(136, 170, 220)], sky_horizon=[(212, 222, 236)],
        skin=[(214, 172, 146), (150, 110, 86)],
        clothes=[(170, 50, 50), (46, 64, 140), (214, 214, 214), (26, 26, 30), (100, 60, 120),
                 (190, 150, 60), (100, 80, 64)],
        car=[(204, 30, 30), (30, 60, 176), (232, 232, 232), (28, 28, 30), (152, 152, 162),
             (210, 164, 30), (112, 56, 30)],
        truck=[(222, 222, 216), (184, 62, 40), (62, 92, 156)],
        bus=[(228, 186, 40), (204, 52, 52), (62, 124, 204)], train=[(150, 156, 170)],
        moto=[(200, 40, 30), (40, 40, 44), (30, 80, 180)], bike=[(60, 62, 66), (160, 50, 50)],
        static=[(96, 90, 86)], window=[(66, 76, 88), (96, 104, 114)],
        lane=[(196, 198, 196)], kerb=[(178, 174, 170)]),
    jitter=8.0, instance_sat=0.75, instance_val=0.95,
    fine=_lut({'road': 4, 'sidewalk': 5, 'building': 5, 'wall': 6, 'fence': 4, 'vegetation': 18,
               'terrain': 12, 'sky': 2, 'car': 3, 'truck': 3, 'bus': 3, 'train': 3,
               'person': 4, 'rider': 4, 'pole': 3, 'static': 5, 'ego vehicle': 3}),
    coarse=_lut({'road': 7, 'sidewalk': 5, 'building': 8, 'wall': 8, 'vegetation': 22,
                 'terrain': 16, 'sky': 9}),
    clouds=0.0, shadow_p=0.0, lane_marks=0.7, edge_lines=False, tiles=True,
    gain=(0.84, 0.96), cast=(0.95, 1.0, 1.05), gradient=(1.04, 0.9), gamma=1.0,
    sensor_noise=4.0, blur=0.5, ego=True,
)


# ---------------------------------------------------------------------------------------------
# drawing primitives
# ---------------------------------------------------------------------------------------------
class _Camera(object):
    """Pinhole camera looking down the street: X right, D depth, Z up (metres)."""

    def __init__(self, H, W, yh, vx, f, hc):
        self.H, self.W, self.yh, self.vx, self.f, self.hc = H, W, yh, vx, f, hc

    def pt(self, X, D, Z=0.0):
        return (self.vx + self.f * X / D, self.yh + self.f * (self.hc - Z) / D)

    def pts(self, xdz):
        return [self.pt(*p) for p in xdz]

    def scale(self, D):
        """Pixels per metre at depth D."""
        return self.f / D


class _Canvas(object):
    def __init__(self, H, W):
        self.H, self.W = H, W
        self.img = np.zeros((H, W, 3), np.float32)
        self.lab = np.zeros((H, W), np.uint8)

    @staticmethod
    def _ipts(pts):
        return np.round(np.asarray(pts, np.float64)).astype(np.int32).reshape(-1, 1, 2)

    def poly(self, pts, cls, color):
        p = self._ipts(pts)
        if color is not None:
            cv2.fillPoly(self.img, [p], _c(color))
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
            cv2.rectangle(self.img, (xa, ya), (xb, yb), _c(color), -1)
        if cls is not None:
            cv2.rectangle(self.lab, (xa, ya), (xb, yb), int(ID[cls]), -1)

    def circle(self, cx, cy, r, cls, color, thickness=-1):
        c, r = (int(round(cx)), int(round(cy))), max(1, int(round(r)))
        if thickness > 0:
            thickness = max(1, int(round(thickness)))
        if color is not None:
            cv2.circle(self.img, c, r, _c(color), thickness)
        if cls is not None:
            cv2.circle(self.lab, c, r, int(ID[cls]), thickness)

    def line(self, p0, p1, cls, color, thickness):
        a = (int(round(p0[0])), int(round(p0[1])))
        b = (int(round(p1[0])), int(round(p1[1])))
        t = max(1, int(round(thickness)))
        if color is not None:
            cv2.line(self.img, a, b, _c(color), t)
        if cls is not None:
            cv2.line(self.lab, a, b, int(ID[cls]), t)

    def poly_mask(self, pts):
        """(y0, y1, x0, x1, bool mask) of a polygon, clipped to the image; None if empty."""
        p = self._ipts(pts)
        x0, y0 = np.maximum(p.reshape(-1, 2).min(0), 0)
        x1, y1 = np.minimum(p.reshape(-1, 2).max(0) + 1, [self.W, self.H])
        if x1 <= x0 or y1 <= y0:
            return None
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(m, [p - np.array([x0, y0], np.int32)], 1)
        return y0, y1, x0, x1, m.astype(bool)


def _c(color):
    return tuple(float(v) for v in color)


def _shade(color, k):
    return tuple(min(255.0, v * k) for v in color)


def _hsv_tweak(color, sat, val):
    r, g, b = [v / 255.0 for v in color]
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    r, g, b = colorsys.hsv_to_rgb(h, min(1.0, s * sat), min(1.0, v * val))
    return (r * 255.0, g * 255.0, b * 255.0)


class _Painter(object):
    """Colour sampling for one domain and one image."""

    def __init__(self, style, rng):
        self.s, self.rng = style, rng

    def base(self, key, jitter=None):
        choices = self.s.palette[key]
        c = np.asarray(choices[self.rng.randint(len(choices))], np.float64)
        j = self.s.jitter if jitter is None else jitter
        c = c + self.rng.normal(0.0, j) + self.rng.normal(0.0, j * 0.4, 3)
        return tuple(np.clip(c, 0, 255))

    def instance(self, key):
        """Vehicle/clothes colours: same choices in both domains, desaturated in the target."""
        return _hsv_tweak(self.base(key), self.s.instance_sat, self.s.instance_val)


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# ---------------------------------------------------------------------------------------------
# plane patterns (windows, fences, tiles) computed in metric plane coordinates
# ---------------------------------------------------------------------------------------------
def _plane_coords(cam, y0, y1, x0, x1, plane, value):
    """Metric (u, Z) coordinates of pixels on a vertical plane: 'side' X=value or 'front' D=value."""
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    xx += 0.5
    yy += 0.5
    if plane == 'side':
        dx = xx - cam.vx
        dx[np.abs(dx) < 1e-3] = 1e-3
        D = cam.f * value / dx
        u = D
    else:
        D = np.full_like(xx, value)
        u = (xx - cam.vx) * value / cam.f
    Z = cam.hc - (yy - cam.yh) * D / cam.f
    return u, Z


def _windows(cv, cam, pts, plane, value, color, rng, ground_floor=3.2):
    pm = cv.poly_mask(pts)
    if pm is None:
        return
    y0, y1, x0, x1, m = pm
    u, Z = _plane_coords(cam, y0, y1, x0, x1, plane, value)
    pu, pz = rng.uniform(2.6, 4.0), rng.uniform(2.8, 3.4)
    wu, wz = pu * rng.uniform(0.35, 0.6), pz * rng.uniform(0.35, 0.55)
    ou = rng.uniform(0, pu)
    win = m & (np.mod(u + ou, pu) < wu) & (np.mod(Z, pz) > pz - wz - 0.3) & \
        (np.mod(Z, pz) < pz - 0.3) & (Z > ground_floor)
    if ground_floor > 0:  # shop fronts
        win |= m & (Z > 0.4) & (Z < ground_floor - 0.6) & (np.mod(u + ou, 2 * pu) < 1.4 * pu)
    sub = cv.img[y0:y1, x0:x1]
    sub[win] = np.asarray(color, np.float32)


def _fence_texture(cv, cam, pts, plane, value, color, height):
    pm = cv.poly_mask(pts)
    if pm is None:
        return
    y0, y1, x0, x1, m = pm
    u, Z = _plane_coords(cam, y0, y1, x0, x1, plane, value)
    sub = cv.img[y0:y1, x0:x1]
    col = np.asarray(color, np.float32)
    sub[m] = 0.45 * sub[m] + 0.55 * col  # see-through mesh
    solid = m & ((np.mod(u, 2.0) < 0.14) | (np.abs(Z - height + 0.05) < 0.07) |
                 (np.abs(Z - 0.3) < 0.06))
    sub[solid] = col * 0.8
    cv.lab[y0:y1, x0:x1][m] = ID['fence']


# ---------------------------------------------------------------------------------------------
# objects
# ---------------------------------------------------------------------------------------------
def _wheel_side(cv, cam, Xs, Dc, r, cls, color):
    t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    cv.poly(cam.pts([(Xs, max(0.3, Dc + r * np.cos(a)), r + r * np.sin(a)) for a in t]), cls,
            color)


def _vehicle(cv, cam, P, X, D, kind, facing_camera):
    """Box vehicle with its near face at depth D (and visible side face); label covers all."""
    rng = P.rng
    if kind == 'car':
        w, L, zb, zt, zc = rng.uniform(1.7, 1.9), rng.uniform(3.9, 4.7), 0.3, 1.0, \
            rng.uniform(1.4, 1.55)
        color, cls = P.instance('car'), 'car'
    elif kind == 'truck':
        w, L, zb, zt, zc = 2.5, rng.uniform(6.5, 9.0), 0.5, rng.uniform(3.2, 3.9), 0.0
        color, cls = P.instance('truck'), 'truck'
    else:  # bus
        w, L, zb, zt, zc = 2.55, rng.uniform(10.5, 12.5), 0.3, rng.uniform(3.0, 3.3), 0.0
        color, cls = P.instance('bus'), 'bus'
    tyre = (26, 26, 28)
    dark = _shade(color, 0.72)
    glass = P.base('window', jitter=4)
    xl, xr = X - w / 2, X + w / 2
    side = None
    if xl > 0.3:
        side = xl
    elif xr < -0.3:
        side = xr
    if side is not None:  # visible side face
        cv.poly(cam.pts([(side, D, zb), (side, D + L, zb), (side, D + L, zt), (side, D, zt)]),
                cls, dark)
        if kind == 'car':
            cv.poly(cam.pts([(side, D + 0.9, zt), (side, D + L - 1.0, zt),
                             (side, D + L - 1.5, zc), (side, D + 1.4, zc)]), cls, dark)
            cv.poly(cam.pts([(side, D + 1.05, zt + 0.04), (side, D + L - 1.15, zt + 0.04),
                             (side, D + L - 1.55, zc - 0.06), (side, D + 1.5, zc - 0.06)]),
                    None, glass)
        elif kind == 'bus':
            cv.poly(cam.pts([(side, D + 0.4, 1.3), (side, D + L - 0.4, 1.3),
                             (side, D + L - 0.4, zt - 0.5), (side, D + 0.4, zt - 0.5)]),
                    None, glass)
            for k in np.arange(D + 1.5, D + L - 0.5, 1.6):  # window pillars
                cv.poly(cam.pts([(side, k, 1.3), (side, k + 0.12, 1.3), (side, k + 0.12, zt - 0.5),
                                 (side, k, zt - 0.5)]), None, dark)
        else:  # truck: cab at the far end, stripe on the box
            cv.poly(cam.pts([(side, D + 0.3, 1.1), (side, D + L - 2.6, 1.1),
                             (side, D + L - 2.6, 1.35), (side, D + 0.3, 1.35)]), None,
                    _shade(color, 0.5))
        r = 0.34 if kind == 'car' else 0.5
        for dc in (D + 0.9, D + L - 1.0) if kind == 'car' else (D + 1.3, D + 2.8, D + L - 1.6):
            _wheel_side(cv, cam, side, dc, r, cls, tyre)
    # near face (rear, or front when oncoming)
    s = cam.scale(D)
    for xw in (xl + 0.1, xr - 0.5):  # wheels under the body
        a, b = cam.pt(xw, D, 0.0), cam.pt(xw + 0.4, D, zb + 0.2)
        cv.rect(a[0], b[1], b[0], a[1], cls, tyre)
    cv.poly(cam.pts([(xl, D, zb), (xr, D, zb), (xr, D, zt), (xl, D, zt)]), cls, color)
    if kind == 'car':
        cv.poly(cam.pts([(xl + 0.05, D, zt), (xr - 0.05, D, zt), (xr - 0.2, D, zc),
                         (xl + 0.2, D, zc)]), cls, color)
        cv.poly(cam.pts([(xl + 0.15, D, zt + 0.06), (xr - 0.15, D, zt + 0.06),
                         (xr - 0.27, D, zc - 0.06), (xl + 0.27, D, zc - 0.06)]), None, glass)
        lamp = (250, 248, 230) if facing_camera else (210, 30, 30)
        for x0 in (xl + 0.08, xr - 0.38):
            a, b = cam.pt(x0, D, 0.72), cam.pt(x0 + 0.3, D, 0.88)
            cv.rect(a[0], b[1], b[0], a[1], None, lamp)
        a, b = cam.pt(X - 0.25, D, 0.38), cam.pt(X + 0.25, D, 0.5)  # plate / grille
        cv.rect(a[0], b[1], b[0], a[1], None, (230, 230, 225) if not facing_camera else
                (40, 40, 42))
    elif kind == 'bus':
        cv.poly(cam.pts([(xl + 0.15, D, 1.4 if facing_camera else 2.1), (xr - 0.15, D, 1.4 if
                         facing_camera else 2.1), (xr - 0.15, D, zt - 0.3),
                         (xl + 0.15, D, zt - 0.3)]), None, glass)
        a, b = cam.pt(xl + 0.1, D, 0.5), cam.pt(xr - 0.1, D, 0.7)
        cv.rect(a[0], b[1], b[0], a[1], None, _shade(color, 0.6))
    else:
        if facing_camera:  # cab front with windscreen
            cv.poly(cam.pts([(xl + 0.15, D, 1.9), (xr - 0.15, D, 1.9), (xr - 0.15, D, 2.7),
                             (xl + 0.15, D, 2.7)]), None, glass)
        else:  # box doors
            cv.line(cam.pt(X, D, zb + 0.1), cam.pt(X, D, zt - 0.1), None, _shade(color, 0.6),
                    max(1, 0.05 * s))


def _person(cv, cam, P, X, D, cls='person', pose=None):
    rng = P.rng
    h = rng.uniform(1.55, 1.9)
    s = cam.scale(D)
    skin, shirt, pants = P.base('skin', jitter=6), P.instance('clothes'), P.instance('clothes')
    stride = rng.uniform(-0.18, 0.18) if pose is None else pose
    hip, sh = 0.5 * h, 0.82 * h
    for sgn, col in ((-1, pants), (1, _shade(pants, 0.85))):  # legs
        foot = X + sgn * abs(stride) + 0.04 * sgn
        cv.poly(cam.pts([(X + sgn * 0.02, D, hip), (X + sgn * 0.13, D, hip), (foot + 0.07, D, 0.0),
                         (foot - 0.07, D, 0.0)]), cls, col)
    bw = 0.2 * h
    cv.poly(cam.pts([(X - bw / 2, D, hip - 0.05), (X + bw / 2, D, hip - 0.05),
                     (X + bw / 2 + 0.02, D, sh), (X - bw / 2 - 0.02, D, sh)]), cls, shirt)
    for sgn in (-1, 1):  # arms
        cv.line(cam.pt(X + sgn * (bw / 2 + 0.03), D, sh - 0.03),
                cam.pt(X + sgn * (bw / 2 + 0.07 + abs(stride) * 0.4), D, hip), cls, shirt,
                0.09 * s)
    hx, hy = cam.pt(X, D, 0.92 * h)
    cv.circle(hx, hy, 0.075 * h * s, cls, skin)
    hx, hy = cam.pt(X, D, 0.95 * h)
    cv.circle(hx, hy, 0.06 * h * s, cls, _shade(skin, 0.45) if rng.rand() < 0.8 else skin)


def _two_wheeler(cv, cam, P, X, D, kind, ridden):
    """Side view crossing the street (plane at depth D); kind 'bicycle' or 'motorcycle'."""
    rng = P.rng
    s = cam.scale(D)
    d = 1 if rng.rand() < 0.5 else -1
    wb = 1.05 if kind == 'bicycle' else 1.4
    r = 0.34 if kind == 'bicycle' else 0.32
    xr, xf = X - d * wb / 2, X + d * wb / 2
    col = P.instance('bike' if kind == 'bicycle' else 'moto')
    tyre = (24, 24, 26)
    for xw in (xr, xf):
        c = cam.pt(xw, D, r)
        if kind == 'bicycle':
            cv.circle(c[0], c[1], r * s, kind, tyre, thickness=max(1.0, 0.06 * s))
        else:
            cv.circle(c[0], c[1], r * s, kind, tyre)
            cv.circle(c[0], c[1], 0.45 * r * s, None, (120, 120, 125))
    seat = (X - d * 0.15, D, 0.95 if kind == 'bicycle' else 0.8)
    bar = (xf - d * 0.15, D, 1.05)
    crank = (X, D, r)
    if kind == 'bicycle':
        for a, b in (((xr, D, r), seat), (seat, crank), ((xr, D, r), crank), (crank, bar),
                     (seat, bar), (bar, (xf, D, r))):
            cv.line(cam.pt(*a), cam.pt(*b), kind, col, 0.05 * s)
    else:
        cv.poly(cam.pts([(xr + d * 0.1, D, 0.45), (xf - d * 0.25, D, 0.45),
                         (xf - d * 0.3, D, 0.95), (X + d * 0.1, D, 1.0), (xr + d * 0.05, D, 0.8)]),
                kind, col)
        cv.line(cam.pt(xf, D, r), cam.pt(*bar), kind, (60, 60, 64), 0.07 * s)
        cv.poly(cam.pts([(X - d * 0.1, D, 0.3), (X + d * 0.35, D, 0.3), (X + d * 0.3, D, 0.55),
                         (X - d * 0.1, D, 0.55)]), kind, (90, 90, 96))
    if not ridden:
        return
    # rider: seated torso leaning towards the handlebar, bent legs, head (helmet on motorbikes)
    shirt, pants = P.instance('clothes'), P.instance('clothes')
    hipz = seat[2] + 0.05
    shx, shz = X + d * 0.15, hipz + 0.6
    cv.poly(cam.pts([(seat[0] - d * 0.12, D, hipz), (seat[0] + d * 0.15, D, hipz),
                     (shx + d * 0.12, D, shz), (shx - d * 0.16, D, shz)]), 'rider', shirt)
    knee = (X + d * 0.25, D, hipz - 0.05 if kind == 'bicycle' else hipz - 0.15)
    cv.line(cam.pt(seat[0], D, hipz), cam.pt(*knee), 'rider', pants, 0.15 * s)
    cv.line(cam.pt(*knee), cam.pt(X + d * 0.1, D, 0.3 if kind == 'bicycle' else 0.45),
            'rider', pants, 0.12 * s)
    cv.line(cam.pt(shx, D, shz - 0.05), cam.pt(*bar), 'rider', shirt, 0.08 * s)
    hx, hy = cam.pt(shx + d * 0.05, D, shz + 0.16)
    if kind == 'motorcycle':
        cv.circle(hx, hy, 0.15 * s, 'rider', P.instance('moto'))
    else:
        cv.circle(hx, hy, 0.12 * s, 'rider', P.base('skin', jitter=6))


def _pole(cv, cam, P, X, D, what):
    rng = P.rng
    s = cam.scale(D)
    hgt = rng.uniform(4.0, 6.5)
    pc = P.base('pole')
    w = 0.15
    a, b = cam.pt(X - w / 2, D, 0.0), cam.pt(X + w / 2, D, hgt)
    cv.rect(a[0], b[1], b[0], a[1], 'pole', pc)
    if what == 'lamp':
        d = 1 if X < 0 else -1
        cv.line(cam.pt(X, D, hgt), cam.pt(X + d * 1.2, D, hgt + 0.2), 'pole', pc, 0.1 * s)
        cv.circle(*cam.pt(X + d * 1.2, D, hgt + 0.1), 0.15 * s, 'pole', (220, 220, 200))
    if what in ('light', 'both'):
        z0 = hgt - rng.uniform(0.0, 1.2)
        bw, bh = 0.36, 0.95
        a, b = cam.pt(X - bw / 2, D, z0 - bh), cam.pt(X + bw / 2, D, z0)
        lb = P.base('light_box', jitter=4)
        cv.rect(a[0], b[1], b[0], a[1], 'traffic light', lb)
        on = rng.randint(3)
        for k, lc in enumerate(((230, 40, 30), (240, 180, 30), (40, 220, 90))):
            c = cam.pt(X, D, z0 - 0.17 - 0.3 * k)
            cv.circle(c[0], c[1], 0.1 * s, None, lc if k == on else _shade(lc, 0.3))
    if what in ('sign', 'both'):
        z = rng.uniform(2.2, 3.2) if what == 'both' else hgt - rng.uniform(0.2, 1.5)
        r = rng.uniform(0.3, 0.42)
        col = P.base('sign', jitter=6)
        cx, cy = cam.pt(X, D, z)
        shape = rng.randint(4)
        if shape == 0:
            cv.circle(cx, cy, r * s, 'traffic sign', col)
            cv.circle(cx, cy, 0.65 * r * s, None, (235, 235, 235))
        elif shape == 1:
            cv.poly([(cx - r * s, cy + 0.6 * r * s), (cx + r * s, cy + 0.6 * r * s),
                     (cx, cy - r * s)], 'traffic sign', col)
        elif shape == 2:
            cv.rect(cx - r * s, cy - 0.7 * r * s, cx + r * s, cy + 0.7 * r * s, 'traffic sign',
                    col)
            cv.rect(cx - 0.7 * r * s, cy - 0.15 * r * s, cx + 0.7 * r * s, cy + 0.15 * r * s,
                    None, (235, 235, 235))
        else:
            cv.poly([(cx - r * s, cy), (cx, cy - r * s), (cx + r * s, cy), (cx, cy + r * s)],
                    'traffic sign', col)


def _tree(cv, cam, P, X, D):
    rng = P.rng
    s = cam.scale(D)
    base = P.base('vegetation')
    a, b = cam.pt(X - 0.15, D, 0.0), cam.pt(X + 0.15, D, 3.0)
    cv.rect(a[0], b[1], b[0], a[1], 'vegetation', (70, 56, 44))
    zc, R = rng.uniform(4.0, 5.5), rng.uniform(1.5, 2.5)
    for _ in range(7):
        dx, dz, rr = rng.uniform(-0.6, 0.6) * R, rng.uniform(-0.5, 0.5) * R, R * rng.uniform(
            0.45, 0.7)
        c = cam.pt(X + dx, D, zc + dz)
        cv.circle(c[0], c[1], rr * s, 'vegetation', _shade(base, rng.uniform(0.75, 1.15)))


def _static(cv, cam, P, X, D):
    rng = P.rng
    w, h = rng.uniform(0.4, 1.6), rng.uniform(0.5, 1.1)
    a, b = cam.pt(X - w / 2, D, 0.0), cam.pt(X + w / 2, D, h)
    cv.rect(a[0], b[1], b[0], a[1], 'static', P.base('static'))


def _tram(cv, cam, P, D):
    rng = P.rng
    L = rng.uniform(18, 30)
    x0 = rng.uniform(-L, 0.0)
    col = P.instance('train')
    cv.poly(cam.pts([(x0, D, 0.3), (x0 + L, D, 0.3), (x0 + L, D, 3.4), (x0, D, 3.4)]), 'train',
            col)
    cv.poly(cam.pts([(x0 + 0.5, D, 1.3), (x0 + L - 0.5, D, 1.3), (x0 + L - 0.5, D, 2.6),
                     (x0 + 0.5, D, 2.6)]), None, P.base('window', jitter=4))
    for k in np.arange(x0 + 2.0, x0 + L - 1.0, 2.2):
        cv.poly(cam.pts([(k, D, 1.3), (k + 0.15, D, 1.3), (k + 0.15, D, 2.6), (k, D, 2.6)]), None,
                _shade(col, 0.7))
    cv.line(cam.pt(x0 + L / 2 - 1, D, 3.4), cam.pt(x0 + L / 2, D, 4.3), 'train', (40, 40, 40),
            0.08 * cam.scale(D))


# ---------------------------------------------------------------------------------------------
# scene
# ---------------------------------------------------------------------------------------------
def render_scene(style, rng, size):
    """Render one scene; returns (RGB uint8 HxWx3, Cityscapes label ids uint8 HxW)."""
    H, W = size
    st = style
    P = _Painter(st, rng)
    yh = H * rng.uniform(*st.horizon)
    cam = _Camera(H, W, yh, W * rng.uniform(0.42, 0.58), W * rng.uniform(*st.focal),
                  rng.uniform(*st.cam_height))
    cv = _Canvas(H, W)
    D_near = 0.3  # ground polygons start well below the bottom row
    D_bottom = cam.f * cam.hc / (H - yh)  # depth seen at the bottom row
    D_far = rng.uniform(55, 110)

    # street cross-section (X in metres; camera at X=0)
    lw = 3.3
    n_lanes = rng.randint(st.lanes[0], st.lanes[1] + 1)
    Rl = -rng.uniform(0.5, n_lanes * lw - 0.5)
    Rr = Rl + n_lanes * lw
    SWl, SWr = rng.uniform(*st.sidewalk), rng.uniform(*st.sidewalk)
    Sl, Sr = Rl - SWl, Rr + SWr
    Fl = Sl - (rng.uniform(*st.strip) if rng.rand() < st.strip_p else 0.0)
    Fr = Sr + (rng.uniform(*st.strip) if rng.rand() < st.strip_p else 0.0)

    # sky (vertical gradient) and ground (terrain)
    rows = np.clip(np.arange(H, dtype=np.float32) / max(yh, 1.0), 0, 1)[:, None]
    top, hor = np.asarray(P.base('sky_top', jitter=5)), np.asarray(P.base('sky_horizon', 5))
    cv.img[:] = (top[None, :] * (1 - rows) + hor[None, :] * rows)[:, None, :]
    cv.lab[:] = ID['sky']
    yg = int(np.ceil(yh))
    cv.img[yg:] = np.asarray(P.base('terrain'), np.float32)
    cv.lab[yg:] = ID['terrain']

    # skyline at the end of the street
    x = -cam.f * 40.0 / D_far
    xmax = cam.f * 40.0 / D_far
    while x < xmax:
        wdt = rng.uniform(8.0, 25.0)
        r = rng.rand()
        if r < 0.25:
            c = P.base('vegetation')
            for _ in range(4):
                cx = x + rng.uniform(0, wdt)
                zc = rng.uniform(3, 7)
                cc = cam.pt(cx, D_far, zc)
                cv.circle(cc[0], cc[1], rng.uniform(2.5, 5) * cam.scale(D_far), 'vegetation',
                          _shade(c, rng.uniform(0.8, 1.1)))
            a, b = cam.pt(x, D_far, 0.0), cam.pt(x + wdt, D_far, 3.5)
            cv.rect(a[0], b[1], b[0], a[1], 'vegetation', c)
        elif r < 0.9:
            hb = rng.uniform(6.0, 35.0)
            pts = cam.pts([(x, D_far, 0), (x + wdt, D_far, 0), (x + wdt, D_far, hb),
                           (x, D_far, hb)])
            col = P.base('building')
            cv.poly(pts, 'building', col)
            _windows(cv, cam, pts, 'front', D_far, _shade(P.base('window', 4), 0.95), rng)
        x += wdt

    # side blocks: buildings, tree groups or gaps, drawn far to near
    for sgn, Xf in ((-1, Fl), (1, Fr)):
        segs = []
        D = D_near
        while D < D_far:
            L = rng.uniform(8.0, 30.0)
            r = rng.rand()
            kind = 'gap' if r < st.p_gap_block else (
                'veg' if r < st.p_gap_block + st.p_veg_block else 'building')
            segs.append((D, min(D + L, D_far), kind, rng.uniform(6.0, 30.0)))
            D += L
        for D0, D1, kind, hb in reversed(segs):
            if kind == 'building':
                col = P.base('building')
                end = cam.pts([(Xf, D1, 0), (Xf + sgn * 12, D1, 0), (Xf + sgn * 12, D1, hb),
                               (Xf, D1, hb)])
                cv.poly(end, 'building', _shade(col, 0.8))
                face = cam.pts([(Xf, D0, 0), (Xf, D1, 0), (Xf, D1, hb), (Xf, D0, hb)])
                cv.poly(face, 'building', col)
                _windows(cv, cam, face, 'side', Xf, P.base('window', 4), rng)
            elif kind == 'veg':
                c = P.base('vegetation')
                hv = rng.uniform(2.0, 4.0)
                cv.poly(cam.pts([(Xf, D0, 0), (Xf, D1, 0), (Xf, D1, hv), (Xf, D0, hv)]),
                        'vegetation', c)
                for Dc in np.arange(D0 + 2.0, D1, rng.uniform(4.0, 7.0)):
                    R = rng.uniform(2.0, 3.5)
                    cc = cam.pt(Xf + sgn * rng.uniform(0.0, 2.0), Dc, hv + rng.uniform(0.5, 3.0))
                    cv.circle(cc[0], cc[1], R * cam.scale(Dc), 'vegetation',
                              _shade(c, rng.uniform(0.8, 1.15)))

    # ground: sidewalks (with kerb), road (with lane marks), all ending at the skyline
    def strip(X0, X1, cls, color, D0=D_near, D1=D_far):
        cv.poly(cam.pts([(X0, D0, 0), (X1, D0, 0), (X1, D1, 0), (X0, D1, 0)]), cls, color)

    swc = P.base('sidewalk')
    strip(Sl, Rl, 'sidewalk', swc)
    strip(Rr, Sr, 'sidewalk', swc)
    strip(Rl, Rr, 'road', P.base('road'))
    kerb = P.base('kerb', jitter=4)
    strip(Rl - 0.15, Rl, None, kerb)
    strip(Rr, Rr + 0.15, None, kerb)
    if rng.rand() < st.lane_marks:
        lane = P.base('lane', jitter=4)
        period, dash = rng.uniform(8.0, 12.0), rng.uniform(2.5, 4.0)
        off = rng.uniform(0, period)
        for i in range(1, n_lanes):
            Xl = Rl + i * lw
            d = D_near + off
            while d < D_far:
                strip(Xl - 0.07, Xl + 0.07, None, lane, d, min(d + dash, D_far))
                d += period
        if st.edge_lines:
            strip(Rl + 0.25, Rl + 0.4, None, lane)
            strip(Rr - 0.4, Rr - 0.25, None, lane)
    if st.tiles:  # paving tiles on sidewalks
        ys = np.arange(yg, H)
        Dg = cam.f * cam.hc / (ys + 0.5 - yh)
        Xg = (np.arange(W)[None, :] + 0.5 - cam.vx) * Dg[:, None] / cam.f
        t = rng.uniform(0.5, 0.8)
        grid = (np.mod(Xg, t) < 0.05 * t / 0.5) | (np.mod(Dg, t) < 0.05 * t / 0.5)[:, None]
        m = grid & (cv.lab[yg:] == ID['sidewalk'])
        cv.img[yg:][m] *= 0.85
    if rng.rand() < st.shadow_p:  # hard shadows of one side's buildings
        sgn = 1 if rng.rand() < 0.5 else -1
        Xs = Fr if sgn > 0 else Fl
        wsh = rng.uniform(3.0, 10.0)
        D = D_near
        shade = np.zeros((H, W), np.uint8)
        while D < D_far:
            L = rng.uniform(6.0, 25.0)
            if rng.rand() < 0.7:
                p = cv._ipts(cam.pts([(Xs, D, 0), (Xs - sgn * wsh, D, 0), (Xs - sgn * wsh, D + L, 0),
                                      (Xs, D + L, 0)]))
                cv2.fillPoly(shade, [p], 1)
            D += L
        ground = np.isin(cv.lab, [ID['road'], ID['sidewalk'], ID['terrain']])
        cv.img[(shade > 0) & ground] *= 0.55

    # walls and fences along the back of the sidewalks (or the facade line)
    for sgn, Xw in ((-1, Sl), (1, Sr)):
        for cls, p in (('wall', st.p_wall), ('fence', st.p_fence)):
            if rng.rand() >= p:
                continue
            D0 = _loguniform(rng, max(D_bottom, 2.0), D_far * 0.6)
            D1 = D0 + rng.uniform(5.0, 25.0)
            hw = rng.uniform(0.8, 2.4) if cls == 'wall' else rng.uniform(1.0, 1.8)
            pts = cam.pts([(Xw, D0, 0), (Xw, D1, 0), (Xw, D1, hw), (Xw, D0, hw)])
            if cls == 'wall':
                col = P.base('wall')
                cv.poly(pts, 'wall', col)
                cv.poly(cam.pts([(Xw, D0, hw - 0.12), (Xw, D1, hw - 0.12), (Xw, D1, hw),
                                 (Xw, D0, hw)]), None, _shade(col, 0.8))
            else:
                _fence_texture(cv, cam, pts, 'side', Xw, P.base('fence'), hw)

    # objects, drawn far to near
    objs = []

    def depth(lo=None, hi=45.0):
        return _loguniform(rng, max(D_bottom * 1.05, 3.0) if lo is None else lo, hi)

    D_veh = max(D_bottom * 1.3, 5.0)  # no bonnet-filling vehicles
    for _ in range(rng.poisson(st.n_lane_cars)):
        lane_i = rng.randint(n_lanes)
        X = Rl + (lane_i + 0.5) * lw + rng.uniform(-0.4, 0.4)
        objs.append((depth(lo=D_veh), 'vehicle', (X, 'car', X < Rl + n_lanes * lw / 2 - 0.1
                                                  and n_lanes > 1)))
    for _ in range(rng.poisson(st.n_parked_cars)):
        sgn = 1 if rng.rand() < 0.5 else -1
        X = (Rr - 1.1) if sgn > 0 else (Rl + 1.1)
        objs.append((depth(lo=D_veh), 'vehicle', (X + rng.uniform(-0.2, 0.2), 'car', False)))
    for kind, p in (('truck', st.p_truck), ('bus', st.p_bus)):
        if rng.rand() < p:
            X = Rl + (rng.randint(n_lanes) + 0.5) * lw
            objs.append((depth(lo=D_veh + 2.0), 'vehicle', (X, kind, False)))
    if rng.rand() < st.p_train:
        objs.append((rng.uniform(18.0, 40.0), 'tram', None))
    for _ in range(rng.poisson(st.n_persons)):
        if rng.rand() < st.p_crossing:
            X = rng.uniform(Rl + 0.3, Rr - 0.3)
        elif rng.rand() < 0.5:
            X = rng.uniform(Sl + 0.3, Rl - 0.3)
        else:
            X = rng.uniform(Rr + 0.3, Sr - 0.3)
        objs.append((depth(hi=35.0), 'person', X))
    for _ in range(rng.poisson(st.n_riders)):
        X = rng.uniform(Rl + 0.6, Rr - 0.6)
        kind = 'bicycle' if rng.rand() < st.p_bicycle else 'motorcycle'
        objs.append((depth(hi=35.0), 'two', (X, kind, True)))
    for _ in range(rng.poisson(st.n_parked_bikes)):
        sgn = 1 if rng.rand() < 0.5 else -1
        X = (Sr - 0.9) if sgn > 0 else (Sl + 0.9)
        kind = 'bicycle' if rng.rand() < 0.7 else 'motorcycle'
        objs.append((depth(hi=30.0), 'two', (X, kind, False)))
    for _ in range(rng.poisson(st.n_poles)):
        sgn = 1 if rng.rand() < 0.5 else -1
        X = (Rr + rng.uniform(0.3, 0.7)) if sgn > 0 else (Rl - rng.uniform(0.3, 0.7))
        what = ['sign', 'light', 'both', 'lamp', 'none'][
            rng.choice(5, p=[0.35, 0.25, 0.15, 0.15, 0.1])]
        objs.append((depth(), 'pole', (X, what)))
    for _ in range(rng.poisson(st.n_trees)):
        sgn = 1 if rng.rand() < 0.5 else -1
        X = (Sr - 0.7) if sgn > 0 else (Sl + 0.7)
        objs.append((depth(), 'tree', X))
    for _ in range(rng.poisson(st.n_static)):
        sgn = 1 if rng.rand() < 0.5 else -1
        X = (Sr - rng.uniform(0.4, 1.2)) if sgn > 0 else (Sl + rng.uniform(0.4, 1.2))
        objs.append((depth(hi=30.0), 'static', X))

    objs.sort(key=lambda o: -o[0])
    for D, kind, arg in objs:
        if kind == 'vehicle':
            _vehicle(cv, cam, P, arg[0], D, arg[1], arg[2])
        elif kind == 'tram':
            _tram(cv, cam, P, D)
        elif kind == 'person':
            _person(cv, cam, P, arg, D)
        elif kind == 'two':
            _two_wheeler(cv, cam, P, arg[0], D, arg[1], arg[2])
        elif kind == 'pole':
            _pole(cv, cam, P, arg[0], D, arg[1])
        elif kind == 'tree':
            _tree(cv, cam, P, arg, D)
        else:
            _static(cv, cam, P, arg, D)

    # ego-vehicle hood (target)
    if st.ego:
        he = H * rng.uniform(0.06, 0.1)
        xx = (np.arange(W, dtype=np.float32) - W * rng.uniform(0.45, 0.55)) / W
        ytop = H - he * (1.0 - 1.2 * xx ** 2)
        yy = np.arange(H, dtype=np.float32)[:, None]
        m = yy >= ytop[None, :]
        cv.lab[m] = ID['ego vehicle']
        hood = np.asarray(P.base('car', jitter=4), np.float32) * 0.35
        glare = np.clip(1.0 - np.abs(yy - (ytop[None, :] + 2.0)) / 3.0, 0, 1)[..., None]
        cv.img[m] = (hood[None, None, :] + glare * 60.0)[m]

    # textures: per-class fine and blotchy noise (vectorised through label look-up tables)
    fine = rng.standard_normal((H, W)).astype(np.float32)
    coarse = cv2.resize(rng.standard_normal((H // 8 + 2, W // 8 + 2)).astype(np.float32), (W, H),
                        interpolation=cv2.INTER_CUBIC)
    tex = fine * st.fine[cv.lab] + coarse * st.coarse[cv.lab]
    cv.img += tex[..., None]
    if st.clouds > 0:
        cl = cv2.resize(rng.standard_normal((H // 16 + 2, W // 16 + 2)).astype(np.float32),
                        (W, H), interpolation=cv2.INTER_CUBIC)
        a = (np.clip(cl - 0.3, 0, 1) * st.clouds * (cv.lab == ID['sky']))[..., None]
        cv.img = cv.img * (1 - a) + 245.0 * a

    # lighting
    gain = rng.uniform(*st.gain)
    grad = np.linspace(st.gradient[0], st.gradient[1], H, dtype=np.float32)[:, None, None]
    cast = np.asarray(st.cast, np.float32) * (1.0 + rng.normal(0, 0.02, 3)).astype(np.float32)
    img = np.clip(cv.img, 0, 255) * (gain * cast)[None, None, :] * grad
    if st.gamma != 1.0:
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** st.gamma
    if st.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), st.blur)
    if st.sensor_noise > 0:
        img = img + rng.standard_normal((H, W, 3)).astype(np.float32) * st.sensor_noise
    return np.clip(np.round(img), 0, 255).astype(np.uint8), cv.lab


# ---------------------------------------------------------------------------------------------
# dataset writing
# ---------------------------------------------------------------------------------------------
def _rng(seed, stream, index):
    return np.random.RandomState([int(seed), _STREAM[stream], int(index)])


def _write(path, rgb, lab):
    for p, a in ((path[0], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), (path[1], lab)):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if not cv2.imwrite(p, a):
            raise IOError('cannot write %s' % p)


def blend_styles(a, b, t):
    """A style `t` of the way from `a` to `b`: numbers, ranges and colours interpolated
    linearly (palette lists of other lengths pair colours by index, cycling), switches and
    names taken from the nearer end. t=0 is `a`, t=1 is `b`."""
    def mix(x, y):
        if isinstance(x, bool) or isinstance(x, str) or x is None:
            return y if t >= 0.5 else x
        if isinstance(x, dict):
            return {k: mix(x[k], y[k]) for k in y}
        if isinstance(x, list):
            n = max(len(x), len(y))
            return [mix(x[i % len(x)], y[i % len(y)]) for i in range(n)] if t not in (0, 1) \
                else list(y if t == 1 else x)
        if isinstance(x, tuple):
            return tuple(mix(u, v) for u, v in zip(x, y))
        return (1 - t) * np.asarray(x, np.float64) + t * np.asarray(y, np.float64) \
            if isinstance(x, np.ndarray) else (1 - t) * x + t * y
    return Style(**{k: mix(v, b.__dict__[k]) for k, v in a.__dict__.items()})


def generate(root, seed=0, num_source=DEFAULTS['num_source'],
             num_target_train=DEFAULTS['num_target_train'],
             num_target_val=DEFAULTS['num_target_val'], source_size=DEFAULTS['source_size'],
             target_size=DEFAULTS['target_size'], shift=1.0):
    """Write the source (GTA-5 layout) and target (Cityscapes layout) demo data under ``root``.

    `shift` sets how far the target's style is from the source's: 1 (default) is the target
    style documented above, 0 the source style, values between blend the two.

    Returns a dict of the paths written: ``root``, ``gta_root``, ``cityscapes_root``,
    ``gta_train_list``, ``cityscapes_train_list``, ``cityscapes_val_list``.
    Image ``N`` of each split depends only on (seed, split, N), not on the counts.
    """
    if seed < 0:
        raise ValueError('seed must be >= 0')
    if not 0.0 <= shift <= 1.0:
        raise ValueError('shift must be in [0, 1], got %r' % shift)
    target_style = TARGET_STYLE if shift == 1.0 else blend_styles(SOURCE_STYLE, TARGET_STYLE, shift)
    root = os.path.abspath(root)
    gta, cs = os.path.join(root, 'gta'), os.path.join(root, 'cityscapes')
    out = dict(root=root, gta_root=gta, cityscapes_root=cs,
               gta_train_list=os.path.join(gta, 'train.lst'),
               cityscapes_train_list=os.path.join(cs, 'train.lst'),
               cityscapes_val_list=os.path.join(cs, 'val.lst'))

    lines = []
    for i in range(1, num_source + 1):
        rel = ('images/%05d.png' % i, 'labels/%05d.png' % i)
        rgb, lab = render_scene(SOURCE_STYLE, _rng(seed, 'source', i), tuple(source_size))
        _write([os.path.join(gta, r) for r in rel], rgb, lab)
        lines.append('%s\t%s\n' % rel)
    _write_list(out['gta_train_list'], lines)

    for split, n, cities, key in (('train', num_target_train, TRAIN_CITIES,
                                   'cityscapes_train_list'),
                                  ('val', num_target_val, VAL_CITIES, 'cityscapes_val_list')):
        lines = []
        for i in range(1, n + 1):
            city = cities[(i - 1) % len(cities)]
            name = '%s_000000_%06d' % (city, i)
            rel = ('leftImg8bit/%s/%s/%s_leftImg8bit.png' % (split, city, name),
                   'gtFine/%s/%s/%s_gtFine_labelIds.png' % (split, city, name))
            rgb, lab = render_scene(target_style, _rng(seed, 'target_' + split, i),
                                    tuple(target_size))
            _write([os.path.join(cs, r) for r in rel], rgb, lab)
            lines.append('%s\t%s\n' % rel)
        _write_list(out[key], lines)
    return out


def _write_list(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', newline='\n') as f:
        f.writelines(lines)


def _size(text):
    try:
        h, w = text.lower().split('x')
        size = (int(h), int(w))
    except ValueError:
        raise argparse.ArgumentTypeError('expected HxW, e.g. 160x288, got %r' % text)
    if min(size) < 32:
        raise argparse.ArgumentTypeError('image size must be at least 32x32')
    return size


def main(argv=None):
    ap = argparse.ArgumentParser(description='Write the synthetic GTA-5 -> Cityscapes demo data.')
    ap.add_argument('--output', required=True, help='root folder (gta/ and cityscapes/ inside)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--shift', type=float, default=1.0,
                    help='target style: 1 = documented target, 0 = source style, between: blend')
    ap.add_argument('--num-source', type=int, default=DEFAULTS['num_source'])
    ap.add_argument('--num-target-train', type=int, default=DEFAULTS['num_target_train'])
    ap.add_argument('--num-target-val', type=int, default=DEFAULTS['num_target_val'])
    ap.add_argument('--source-size', type=_size, default=DEFAULTS['source_size'],
                    help='HxW (default 160x288)')
    ap.add_argument('--target-size', type=_size, default=DEFAULTS['target_size'],
                    help='HxW (default 128x256)')
    args = ap.parse_args(argv)
    if args.seed < 0 or min(args.num_source, args.num_target_train, args.num_target_val) < 0:
        ap.error('seed and counts must be >= 0')
    t0 = time.time()
    out = generate(args.output, seed=args.seed, shift=args.shift, num_source=args.num_source,
                   num_target_train=args.num_target_train, num_target_val=args.num_target_val,
                   source_size=args.source_size, target_size=args.target_size)
    print('wrote %d source + %d/%d target images under %s in %.1f s' % (
        args.num_source, args.num_target_train, args.num_target_val, out['root'],
        time.time() - t0))
    for k in ('gta_train_list', 'cityscapes_train_list', 'cityscapes_val_list'):
        print('  %s' % out[k])
    return 0


if __name__ == '__main__':
    sys.exit(main())
