"""The street objects of the demo scenes, each drawn at depth D (metres) into a Canvas.

Every ``draw_*`` function takes (canvas, camera, painter, ..., D=depth) and draws its random
numbers from ``painter.rng`` in a fixed order, so a scene depends only on its random stream.
"""
import collections

import numpy as np

from issegm.demo.drawing import shade

TYRE = (26, 26, 28)
TWO_WHEELER_TYRE = (24, 24, 26)
SIGN_WHITE = (235, 235, 235)
# Poles, signs, traffic lights and bicycle frames are drawn thicker than real ones (a 0.35 m
# mast, 1-1.5 m signs, 0.6 x 1.4 m light boxes, 12 cm tyres): at the demo's 128x256 frames and
# the narrow model's 1/8 output they must span an output cell to be learnable at all
# (docs/demo.md, "The class balance").
POLE_WIDTH = 0.35


class _VehicleBody(collections.namedtuple(
        '_VehicleBody', 'kind X D width length z_bottom z_top z_cabin color glass')):
    """A box vehicle: centre X, near face at depth D; heights of the body's bottom and top and
    of the car cabin's roof (z_cabin, 0 for trucks and buses)."""

    @property
    def left(self):
        return self.X - self.width / 2

    @property
    def right(self):
        return self.X + self.width / 2


def _vehicle_dimensions(kind, rng):
    """(width, length, z_bottom, z_top, z_cabin) in metres of a car, truck or bus."""
    if kind == 'car':
        return rng.uniform(1.7, 1.9), rng.uniform(3.9, 4.7), 0.3, 1.0, rng.uniform(1.4, 1.55)
    if kind == 'truck':
        return 2.5, rng.uniform(6.5, 9.0), 0.5, rng.uniform(3.2, 3.9), 0.0
    return 2.55, rng.uniform(10.5, 12.5), 0.3, rng.uniform(3.0, 3.3), 0.0


def draw_vehicle(canvas, camera, painter, X, D, kind, facing_camera):
    """Car, truck or bus: near face at depth D (the front when `facing_camera`, else the rear)
    plus the side face the camera sees; the label covers the whole box."""
    width, length, z_bottom, z_top, z_cabin = _vehicle_dimensions(kind, painter.rng)
    color = painter.instance(kind)
    body = _VehicleBody(kind, X, D, width, length, z_bottom, z_top, z_cabin, color,
                        painter.base('window', jitter=4))
    side = None
    if body.left > 0.3:
        side = body.left
    elif body.right < -0.3:
        side = body.right
    if side is not None:
        _vehicle_side_face(canvas, camera, body, side)
    _vehicle_near_face(canvas, camera, body, facing_camera)


def _wheel_side(canvas, camera, Xs, Dc, r, cls, color):
    """A wheel of radius r centred at depth Dc on the street-parallel plane Xs."""
    t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    canvas.poly(camera.points([(Xs, max(0.3, Dc + r * np.cos(a)), r + r * np.sin(a)) for a in t]),
                cls, color)


def _vehicle_side_face(canvas, camera, body, side):
    """The side face on the plane X=side: body, windows or stripe, wheels."""
    kind, D, L, zt = body.kind, body.D, body.length, body.z_top
    dark = shade(body.color, 0.72)
    canvas.poly(camera.side_quad(side, D, D + L, body.z_bottom, zt), kind, dark)
    if kind == 'car':
        zc = body.z_cabin
        canvas.poly(camera.points([(side, D + 0.9, zt), (side, D + L - 1.0, zt),
                                   (side, D + L - 1.5, zc), (side, D + 1.4, zc)]), kind, dark)
        canvas.poly(camera.points([(side, D + 1.05, zt + 0.04), (side, D + L - 1.15, zt + 0.04),
                                   (side, D + L - 1.55, zc - 0.06), (side, D + 1.5, zc - 0.06)]),
                    None, body.glass)
    elif kind == 'bus':
        canvas.poly(camera.side_quad(side, D + 0.4, D + L - 0.4, 1.3, zt - 0.5), None, body.glass)
        for k in np.arange(D + 1.5, D + L - 0.5, 1.6):  # window pillars
            canvas.poly(camera.side_quad(side, k, k + 0.12, 1.3, zt - 0.5), None, dark)
    else:  # truck: cab at the far end, stripe on the box
        canvas.poly(camera.side_quad(side, D + 0.3, D + L - 2.6, 1.1, 1.35), None,
                    shade(body.color, 0.5))
    r = 0.34 if kind == 'car' else 0.5
    for dc in (D + 0.9, D + L - 1.0) if kind == 'car' else (D + 1.3, D + 2.8, D + L - 1.6):
        _wheel_side(canvas, camera, side, dc, r, kind, TYRE)


def _vehicle_near_face(canvas, camera, body, facing_camera):
    """The face at depth D: wheels under the body, body, then per kind glass, lamps, plate."""
    kind, X, D, xl, xr = body.kind, body.X, body.D, body.left, body.right
    zb, zt, zc = body.z_bottom, body.z_top, body.z_cabin
    for xw in (xl + 0.1, xr - 0.5):  # wheels under the body
        canvas.upright_rect(camera, xw, xw + 0.4, D, 0.0, zb + 0.2, kind, TYRE)
    canvas.poly(camera.front_quad(xl, xr, D, zb, zt), kind, body.color)
    if kind == 'car':
        canvas.poly(camera.points([(xl + 0.05, D, zt), (xr - 0.05, D, zt), (xr - 0.2, D, zc),
                                   (xl + 0.2, D, zc)]), kind, body.color)
        canvas.poly(camera.points([(xl + 0.15, D, zt + 0.06), (xr - 0.15, D, zt + 0.06),
                                   (xr - 0.27, D, zc - 0.06), (xl + 0.27, D, zc - 0.06)]),
                    None, body.glass)
        lamp = (250, 248, 230) if facing_camera else (210, 30, 30)
        for x0 in (xl + 0.08, xr - 0.38):
            canvas.upright_rect(camera, x0, x0 + 0.3, D, 0.72, 0.88, None, lamp)
        canvas.upright_rect(camera, X - 0.25, X + 0.25, D, 0.38, 0.5, None,  # plate / grille
                            (230, 230, 225) if not facing_camera else (40, 40, 42))
    elif kind == 'bus':
        canvas.poly(camera.front_quad(xl + 0.15, xr - 0.15, D, 1.4 if facing_camera else 2.1,
                                      zt - 0.3), None, body.glass)
        canvas.upright_rect(camera, xl + 0.1, xr - 0.1, D, 0.5, 0.7, None, shade(body.color, 0.6))
    elif facing_camera:  # truck cab front with windscreen
        canvas.poly(camera.front_quad(xl + 0.15, xr - 0.15, D, 1.9, 2.7), None, body.glass)
    else:  # truck box doors
        canvas.line(camera.point(X, D, zb + 0.1), camera.point(X, D, zt - 0.1), None,
                    shade(body.color, 0.6), max(1, 0.05 * camera.scale(D)))


def draw_person(canvas, camera, painter, X, D):
    """A pedestrian facing the camera: legs in stride, torso, arms, head with hair."""
    rng = painter.rng
    h = rng.uniform(1.55, 1.9)
    s = camera.scale(D)
    skin = painter.base('skin', jitter=6)
    shirt, pants = painter.instance('clothes'), painter.instance('clothes')
    stride = rng.uniform(-0.18, 0.18)
    hip, shoulder = 0.5 * h, 0.82 * h
    for sgn, col in ((-1, pants), (1, shade(pants, 0.85))):  # legs
        foot = X + sgn * abs(stride) + 0.04 * sgn
        canvas.poly(camera.points([(X + sgn * 0.02, D, hip), (X + sgn * 0.13, D, hip),
                                   (foot + 0.07, D, 0.0), (foot - 0.07, D, 0.0)]), 'person', col)
    bw = 0.2 * h
    canvas.poly(camera.points([(X - bw / 2, D, hip - 0.05), (X + bw / 2, D, hip - 0.05),
                               (X + bw / 2 + 0.02, D, shoulder), (X - bw / 2 - 0.02, D, shoulder)]),
                'person', shirt)
    for sgn in (-1, 1):  # arms
        canvas.line(camera.point(X + sgn * (bw / 2 + 0.03), D, shoulder - 0.03),
                    camera.point(X + sgn * (bw / 2 + 0.07 + abs(stride) * 0.4), D, hip),
                    'person', shirt, 0.09 * s)
    hx, hy = camera.point(X, D, 0.92 * h)
    canvas.circle(hx, hy, 0.075 * h * s, 'person', skin)
    hx, hy = camera.point(X, D, 0.95 * h)
    canvas.circle(hx, hy, 0.06 * h * s, 'person', shade(skin, 0.45) if rng.rand() < 0.8 else skin)


def draw_two_wheeler(canvas, camera, painter, X, D, kind, ridden):
    """Side view crossing the street (plane at depth D); kind 'bicycle' or 'motorcycle', with
    a rider (class rider) when `ridden`."""
    direction = 1 if painter.rng.rand() < 0.5 else -1
    color = painter.instance('bike' if kind == 'bicycle' else 'moto')
    frame = _two_wheeler_frame(canvas, camera, X, D, kind, direction, color)
    if ridden:
        _rider(canvas, camera, painter, X, D, kind, direction, frame)


def _two_wheeler_frame(canvas, camera, X, D, kind, direction, color):
    """Wheels and frame (bicycle) or body (motorcycle); returns the seat and handlebar points."""
    s = camera.scale(D)
    d = direction
    wheelbase = 1.05 if kind == 'bicycle' else 1.4
    r = 0.34 if kind == 'bicycle' else 0.32
    xr, xf = X - d * wheelbase / 2, X + d * wheelbase / 2
    for xw in (xr, xf):
        c = camera.point(xw, D, r)
        if kind == 'bicycle':
            canvas.circle(c[0], c[1], r * s, kind, TWO_WHEELER_TYRE, thickness=max(1.0, 0.12 * s))
        else:
            canvas.circle(c[0], c[1], r * s, kind, TWO_WHEELER_TYRE)
            canvas.circle(c[0], c[1], 0.45 * r * s, None, (120, 120, 125))
    seat = (X - d * 0.15, D, 0.95 if kind == 'bicycle' else 0.8)
    bar = (xf - d * 0.15, D, 1.05)
    crank = (X, D, r)
    if kind == 'bicycle':
        for a, b in (((xr, D, r), seat), (seat, crank), ((xr, D, r), crank), (crank, bar),
                     (seat, bar), (bar, (xf, D, r))):
            canvas.line(camera.point(*a), camera.point(*b), kind, color, 0.1 * s)
    else:
        canvas.poly(camera.points([(xr + d * 0.1, D, 0.45), (xf - d * 0.25, D, 0.45),
                                   (xf - d * 0.3, D, 0.95), (X + d * 0.1, D, 1.0),
                                   (xr + d * 0.05, D, 0.8)]), kind, color)
        canvas.line(camera.point(xf, D, r), camera.point(*bar), kind, (60, 60, 64), 0.07 * s)
        canvas.poly(camera.points([(X - d * 0.1, D, 0.3), (X + d * 0.35, D, 0.3),
                                   (X + d * 0.3, D, 0.55), (X - d * 0.1, D, 0.55)]), kind,
                    (90, 90, 96))
    return seat, bar


def _rider(canvas, camera, painter, X, D, kind, direction, frame):
    """Seated torso leaning towards the handlebar, bent legs, head (helmet on motorbikes);
    frame: the (seat, handlebar) points of _two_wheeler_frame."""
    seat, bar = frame
    s = camera.scale(D)
    d = direction
    shirt, pants = painter.instance('clothes'), painter.instance('clothes')
    hipz = seat[2] + 0.05
    shx, shz = X + d * 0.15, hipz + 0.6
    canvas.poly(camera.points([(seat[0] - d * 0.12, D, hipz), (seat[0] + d * 0.15, D, hipz),
                               (shx + d * 0.12, D, shz), (shx - d * 0.16, D, shz)]),
                'rider', shirt)
    knee = (X + d * 0.25, D, hipz - 0.05 if kind == 'bicycle' else hipz - 0.15)
    canvas.line(camera.point(seat[0], D, hipz), camera.point(*knee), 'rider', pants, 0.15 * s)
    canvas.line(camera.point(*knee), camera.point(X + d * 0.1, D, 0.3 if kind == 'bicycle'
                                                  else 0.45), 'rider', pants, 0.12 * s)
    canvas.line(camera.point(shx, D, shz - 0.05), camera.point(*bar), 'rider', shirt, 0.08 * s)
    hx, hy = camera.point(shx + d * 0.05, D, shz + 0.16)
    if kind == 'motorcycle':
        canvas.circle(hx, hy, 0.15 * s, 'rider', painter.instance('moto'))
    else:
        canvas.circle(hx, hy, 0.12 * s, 'rider', painter.base('skin', jitter=6))


def draw_pole(canvas, camera, painter, X, D, what):
    """A pole carrying `what`: 'sign', 'light', 'both' (light and sign), 'lamp' or 'none'."""
    height = painter.rng.uniform(4.0, 6.5)
    color = painter.base('pole')
    canvas.upright_rect(camera, X - POLE_WIDTH / 2, X + POLE_WIDTH / 2, D, 0.0, height, 'pole',
                        color)
    if what == 'lamp':
        s = camera.scale(D)
        d = 1 if X < 0 else -1
        canvas.line(camera.point(X, D, height), camera.point(X + d * 1.2, D, height + 0.2),
                    'pole', color, 0.1 * s)
        canvas.circle(*camera.point(X + d * 1.2, D, height + 0.1), 0.15 * s, 'pole',
                      (220, 220, 200))
    if what in ('light', 'both'):
        _traffic_light(canvas, camera, painter, X, D, height)
    if what in ('sign', 'both'):
        z = painter.rng.uniform(2.2, 3.2) if what == 'both' else \
            height - painter.rng.uniform(0.2, 1.5)
        _traffic_sign(canvas, camera, painter, X, D, z)


def _traffic_light(canvas, camera, painter, X, D, pole_height):
    """A box of three lamps hanging from near the pole's top, one of them lit."""
    z0 = pole_height - painter.rng.uniform(0.0, 1.2)
    canvas.upright_rect(camera, X - 0.6 / 2, X + 0.6 / 2, D, z0 - 1.4, z0, 'traffic light',
                        painter.base('light_box', jitter=4))
    on = painter.rng.randint(3)
    for k, lamp in enumerate(((230, 40, 30), (240, 180, 30), (40, 220, 90))):
        c = camera.point(X, D, z0 - 0.25 - 0.45 * k)
        canvas.circle(c[0], c[1], 0.16 * camera.scale(D), None,
                      lamp if k == on else shade(lamp, 0.3))


def _traffic_sign(canvas, camera, painter, X, D, z):
    """A round, triangular, rectangular or diamond sign centred at height z."""
    s = camera.scale(D)
    r = painter.rng.uniform(0.5, 0.75)
    color = painter.base('sign', jitter=6)
    cx, cy = camera.point(X, D, z)
    shape = painter.rng.randint(4)
    if shape == 0:
        canvas.circle(cx, cy, r * s, 'traffic sign', color)
        canvas.circle(cx, cy, 0.65 * r * s, None, SIGN_WHITE)
    elif shape == 1:
        canvas.poly([(cx - r * s, cy + 0.6 * r * s), (cx + r * s, cy + 0.6 * r * s),
                     (cx, cy - r * s)], 'traffic sign', color)
    elif shape == 2:
        canvas.rect(cx - r * s, cy - 0.7 * r * s, cx + r * s, cy + 0.7 * r * s, 'traffic sign',
                    color)
        canvas.rect(cx - 0.7 * r * s, cy - 0.15 * r * s, cx + 0.7 * r * s, cy + 0.15 * r * s,
                    None, SIGN_WHITE)
    else:
        canvas.poly([(cx - r * s, cy), (cx, cy - r * s), (cx + r * s, cy), (cx, cy + r * s)],
                    'traffic sign', color)


def draw_tree(canvas, camera, painter, X, D):
    """A street tree: trunk and a crown of seven overlapping discs (all labelled vegetation)."""
    rng = painter.rng
    s = camera.scale(D)
    base = painter.base('vegetation')
    canvas.upright_rect(camera, X - 0.15, X + 0.15, D, 0.0, 3.0, 'vegetation', (70, 56, 44))
    zc, R = rng.uniform(4.0, 5.5), rng.uniform(1.5, 2.5)
    for _ in range(7):
        dx, dz, rr = rng.uniform(-0.6, 0.6) * R, rng.uniform(-0.5, 0.5) * R, R * rng.uniform(
            0.45, 0.7)
        c = camera.point(X + dx, D, zc + dz)
        canvas.circle(c[0], c[1], rr * s, 'vegetation', shade(base, rng.uniform(0.75, 1.15)))


def draw_static(canvas, camera, painter, X, D):
    """A box of street furniture (class static, void in training)."""
    w, h = painter.rng.uniform(0.4, 1.6), painter.rng.uniform(0.5, 1.1)
    canvas.upright_rect(camera, X - w / 2, X + w / 2, D, 0.0, h, 'static', painter.base('static'))


def draw_tram(canvas, camera, painter, D):
    """A tram (class train) crossing the street at depth D: body, windows, pantograph."""
    rng = painter.rng
    L = rng.uniform(18, 30)
    x0 = rng.uniform(-L, 0.0)
    color = painter.instance('train')
    canvas.poly(camera.front_quad(x0, x0 + L, D, 0.3, 3.4), 'train', color)
    canvas.poly(camera.front_quad(x0 + 0.5, x0 + L - 0.5, D, 1.3, 2.6), None,
                painter.base('window', jitter=4))
    for k in np.arange(x0 + 2.0, x0 + L - 1.0, 2.2):
        canvas.poly(camera.front_quad(k, k + 0.15, D, 1.3, 2.6), None, shade(color, 0.7))
    canvas.line(camera.point(x0 + L / 2 - 1, D, 3.4), camera.point(x0 + L / 2, D, 4.3), 'train',
                (40, 40, 40), 0.08 * camera.scale(D))
