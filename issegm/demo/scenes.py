"""One synthetic street scene, drawn layer by layer: render_scene(style, rng, size), a
pinhole-camera view down a straight street (docs/demo.md, "A scene"). The layers draw their
random numbers from the one stream `rng` in the order render_scene calls them: that order is
part of the output.
"""
import cv2
import numpy as np

from issegm.demo.drawing import Camera, Canvas, Painter, loguniform, paint_fence, \
    paint_windows, shade
from issegm.demo.objects import draw_person, draw_pole, draw_static, draw_tram, draw_tree, \
    draw_two_wheeler, draw_vehicle
from issegm.demo.styles import ID

LANE_WIDTH = 3.3  # metres
DEPTH_NEAR = 0.3  # ground polygons start here, well below the bottom row
# Persons, riders and two-wheelers stand within 20 m (poles within 30 m) of the camera: farther,
# they shrink below the narrow model's 8-pixel output cell (docs/demo.md, "The class balance").
NEAR_OBJECTS = 20.0


class _Street:
    """One scene being drawn: its style, random stream, colour sampler, camera, canvas, the
    depths it spans and the street's cross-section (X in metres, camera at X=0; left to right:
    facade_left <= sidewalk_left < road_left < road_right < sidewalk_right <= facade_right,
    where sidewalk_* are the sidewalks' back edges and facade_* the building lines)."""

    def __init__(self, style, rng, size):
        """Draws the camera (horizon, centre, focal length, height), the far end of the street
        and the cross-section (lanes, road position, sidewalk and terrain strip widths)."""
        self.height, self.width = size
        self.style, self.rng = style, rng
        self.painter = Painter(style, rng)
        horizon_y = self.height * rng.uniform(*style.horizon)
        self.camera = Camera(horizon_y, self.width * rng.uniform(0.42, 0.58),
                             self.width * rng.uniform(*style.focal), rng.uniform(*style.cam_height))
        self.canvas = Canvas(self.height, self.width)
        self.ground_top = int(np.ceil(horizon_y))  # first image row below the horizon
        self.depth_bottom = self.camera.focal * self.camera.height / (self.height - horizon_y)
        self.depth_far = rng.uniform(55, 110)
        self.lanes = rng.randint(style.lanes[0], style.lanes[1] + 1)
        self.road_left = -rng.uniform(0.5, self.lanes * LANE_WIDTH - 0.5)
        self.road_right = self.road_left + self.lanes * LANE_WIDTH
        sidewalk_width_left = rng.uniform(*style.sidewalk)
        sidewalk_width_right = rng.uniform(*style.sidewalk)
        self.sidewalk_left = self.road_left - sidewalk_width_left
        self.sidewalk_right = self.road_right + sidewalk_width_right
        self.facade_left = self.sidewalk_left - _terrain_strip_width(style, rng)
        self.facade_right = self.sidewalk_right + _terrain_strip_width(style, rng)


def render_scene(style, rng, size):
    """Render one scene; returns (RGB uint8 HxWx3, Cityscapes label ids uint8 HxW)."""
    street = _Street(style, rng, size)
    _paint_sky_and_terrain(street)
    _paint_skyline(street)
    for side in (-1, 1):
        _paint_side_blocks(street, side)
    _paint_road_and_sidewalks(street)
    _paint_lane_marks(street)
    if style.tiles:
        _paint_paving_tiles(street)
    _paint_building_shadows(street)
    _paint_walls_and_fences(street)
    objects = _place_vehicles(street) + _place_people(street) + _place_street_furniture(street)
    _draw_far_to_near(street, objects)
    if style.ego:
        _paint_ego_hood(street)
    _add_texture_noise(street)
    if style.clouds > 0:
        _add_clouds(street)
    return _expose(street), street.canvas.lab


def _terrain_strip_width(style, rng):
    """Width of the terrain strip between a sidewalk and the building line (often none)."""
    return rng.uniform(*style.strip) if rng.rand() < style.strip_p else 0.0


def _paint_sky_and_terrain(street):
    """Sky gradient (top colour to horizon colour) above the horizon, terrain below it."""
    canvas, painter = street.canvas, street.painter
    rows = np.clip(np.arange(street.height, dtype=np.float32) /
                   max(street.camera.horizon_y, 1.0), 0, 1)[:, None]
    top = np.asarray(painter.base('sky_top', jitter=5))
    horizon = np.asarray(painter.base('sky_horizon', 5))
    canvas.img[:] = (top[None, :] * (1 - rows) + horizon[None, :] * rows)[:, None, :]
    canvas.lab[:] = ID['sky']
    canvas.img[street.ground_top:] = np.asarray(painter.base('terrain'), np.float32)
    canvas.lab[street.ground_top:] = ID['terrain']


def _paint_skyline(street):
    """Tree groups, buildings and gaps side by side at the far end of the street. They cover
    X from -focal*40/depth_far to +focal*40/depth_far metres: a span that grows with the focal
    length in pixels rather than with the view's width; kept so that the data stay the same."""
    camera, rng = street.camera, street.rng
    x = -camera.focal * 40.0 / street.depth_far
    x_end = camera.focal * 40.0 / street.depth_far
    while x < x_end:
        block_width = rng.uniform(8.0, 25.0)
        r = rng.rand()
        if r < 0.25:
            _skyline_trees(street, x, block_width)
        elif r < 0.9:
            _skyline_building(street, x, block_width)
        x += block_width


def _skyline_trees(street, x, block_width):
    """Four tree crowns over a hedge, at the far end of the street."""
    canvas, camera, painter, rng = street.canvas, street.camera, street.painter, street.rng
    D = street.depth_far
    color = painter.base('vegetation')
    for _ in range(4):
        cx = x + rng.uniform(0, block_width)
        zc = rng.uniform(3, 7)
        cc = camera.point(cx, D, zc)
        canvas.circle(cc[0], cc[1], rng.uniform(2.5, 5) * camera.scale(D), 'vegetation',
                      shade(color, rng.uniform(0.8, 1.1)))
    canvas.upright_rect(camera, x, x + block_width, D, 0.0, 3.5, 'vegetation', color)


def _skyline_building(street, x, block_width):
    """A building front with windows at the far end of the street."""
    camera, painter, D = street.camera, street.painter, street.depth_far
    front = camera.front_quad(x, x + block_width, D, 0, street.rng.uniform(6.0, 35.0))
    street.canvas.poly(front, 'building', painter.base('building'))
    paint_windows(street.canvas, camera, front, 'front', D,
                  shade(painter.base('window', 4), 0.95), street.rng)


def _paint_side_blocks(street, side):
    """Blocks along one side's building line (side -1 left, +1 right), drawn far to near:
    buildings (facade and the end wall facing the camera), tree groups or gaps."""
    X = street.facade_right if side > 0 else street.facade_left
    for D0, D1, kind, building_height in reversed(_side_block_plan(street)):
        if kind == 'building':
            _side_building(street, side, X, D0, D1, building_height)
        elif kind == 'veg':
            _side_tree_group(street, side, X, D0, D1)


def _side_block_plan(street):
    """[(D0, D1, 'gap' | 'veg' | 'building', building height)] from near to the far end."""
    style, rng = street.style, street.rng
    blocks = []
    D = DEPTH_NEAR
    while D < street.depth_far:
        length = rng.uniform(8.0, 30.0)
        r = rng.rand()
        kind = 'gap' if r < style.p_gap_block else (
            'veg' if r < style.p_gap_block + style.p_veg_block else 'building')
        blocks.append((D, min(D + length, street.depth_far), kind, rng.uniform(6.0, 30.0)))
        D += length
    return blocks


def _side_building(street, side, X, D0, D1, building_height):
    """A facade with windows from D0 to D1 on the building line X, and its end wall at D1."""
    canvas, camera, painter = street.canvas, street.camera, street.painter
    color = painter.base('building')
    end_wall = camera.front_quad(X, X + side * 12, D1, 0, building_height)
    canvas.poly(end_wall, 'building', shade(color, 0.8))
    facade = camera.side_quad(X, D0, D1, 0, building_height)
    canvas.poly(facade, 'building', color)
    paint_windows(canvas, camera, facade, 'side', X, painter.base('window', 4), street.rng)


def _side_tree_group(street, side, X, D0, D1):
    """A hedge along the building line with tree crowns every few metres."""
    canvas, camera, rng = street.canvas, street.camera, street.rng
    color = street.painter.base('vegetation')
    hedge_height = rng.uniform(2.0, 4.0)
    canvas.poly(camera.side_quad(X, D0, D1, 0, hedge_height), 'vegetation', color)
    for Dc in np.arange(D0 + 2.0, D1, rng.uniform(4.0, 7.0)):
        R = rng.uniform(2.0, 3.5)
        cc = camera.point(X + side * rng.uniform(0.0, 2.0), Dc,
                          hedge_height + rng.uniform(0.5, 3.0))
        canvas.circle(cc[0], cc[1], R * camera.scale(Dc), 'vegetation',
                      shade(color, rng.uniform(0.8, 1.15)))


def _ground_strip(street, X0, X1, cls, color, D0=DEPTH_NEAR, D1=None):
    """The ground rectangle X0..X1 by D0..D1 (to the far end by default)."""
    D1 = street.depth_far if D1 is None else D1
    street.canvas.poly(street.camera.ground_quad(X0, X1, D0, D1), cls, color)


def _paint_road_and_sidewalks(street):
    """Both sidewalks (one colour), the road and the two kerb lines (colour only)."""
    painter, road_left, road_right = street.painter, street.road_left, street.road_right
    sidewalk = painter.base('sidewalk')
    _ground_strip(street, street.sidewalk_left, road_left, 'sidewalk', sidewalk)
    _ground_strip(street, road_right, street.sidewalk_right, 'sidewalk', sidewalk)
    _ground_strip(street, road_left, road_right, 'road', painter.base('road'))
    kerb = painter.base('kerb', jitter=4)
    _ground_strip(street, road_left - 0.15, road_left, None, kerb)
    _ground_strip(street, road_right, road_right + 0.15, None, kerb)


def _paint_lane_marks(street):
    """Dashed lines between the lanes and (source) solid edge lines; colour only, the pixels
    stay road. Some target images have none."""
    style, rng, road_left, road_right = street.style, street.rng, street.road_left, \
        street.road_right
    if rng.rand() >= style.lane_marks:
        return
    color = street.painter.base('lane', jitter=4)
    period, dash = rng.uniform(8.0, 12.0), rng.uniform(2.5, 4.0)
    offset = rng.uniform(0, period)
    for i in range(1, street.lanes):
        X = road_left + i * LANE_WIDTH
        d = DEPTH_NEAR + offset
        while d < street.depth_far:
            _ground_strip(street, X - 0.07, X + 0.07, None, color, d,
                          min(d + dash, street.depth_far))
            d += period
    if style.edge_lines:
        _ground_strip(street, road_left + 0.25, road_left + 0.4, None, color)
        _ground_strip(street, road_right - 0.4, road_right - 0.25, None, color)


def _paint_paving_tiles(street):
    """Darker joints of a square tile grid (metric, on the ground plane) on the sidewalks."""
    canvas, camera, top = street.canvas, street.camera, street.ground_top
    ys = np.arange(top, street.height)
    D = camera.focal * camera.height / (ys + 0.5 - camera.horizon_y)
    X = (np.arange(street.width)[None, :] + 0.5 - camera.centre_x) * D[:, None] / camera.focal
    tile = street.rng.uniform(0.5, 0.8)
    joints = (np.mod(X, tile) < 0.05 * tile / 0.5) | (np.mod(D, tile) < 0.05 * tile / 0.5)[:, None]
    on_sidewalk = joints & (canvas.lab[top:] == ID['sidewalk'])
    canvas.img[top:][on_sidewalk] *= 0.85


def _paint_building_shadows(street):
    """(Source) hard shadows cast by one side's buildings across road, sidewalk and terrain."""
    canvas, rng = street.canvas, street.rng
    if rng.rand() >= street.style.shadow_p:
        return
    side = _random_side(rng)
    X = street.facade_right if side > 0 else street.facade_left
    shadow_width = rng.uniform(3.0, 10.0)
    D = DEPTH_NEAR
    in_shadow = np.zeros((street.height, street.width), np.uint8)
    while D < street.depth_far:
        length = rng.uniform(6.0, 25.0)
        if rng.rand() < 0.7:
            corners = street.camera.ground_quad(X, X - side * shadow_width, D, D + length)
            cv2.fillPoly(in_shadow, [canvas.pixel_points(corners)], 1)
        D += length
    ground = np.isin(canvas.lab, [ID['road'], ID['sidewalk'], ID['terrain']])
    canvas.img[(in_shadow > 0) & ground] *= 0.55


def _paint_walls_and_fences(street):
    """Maybe a wall and maybe a fence along the back of each sidewalk."""
    canvas, camera, painter, rng = street.canvas, street.camera, street.painter, street.rng
    for X in (street.sidewalk_left, street.sidewalk_right):
        for cls, probability in (('wall', street.style.p_wall), ('fence', street.style.p_fence)):
            if rng.rand() >= probability:
                continue
            D0 = loguniform(rng, max(street.depth_bottom, 2.0), street.depth_far * 0.6)
            D1 = D0 + rng.uniform(5.0, 25.0)
            top = rng.uniform(0.8, 2.4) if cls == 'wall' else rng.uniform(1.0, 1.8)
            corners = camera.side_quad(X, D0, D1, 0, top)
            if cls == 'wall':
                color = painter.base('wall')
                canvas.poly(corners, 'wall', color)
                canvas.poly(camera.side_quad(X, D0, D1, top - 0.12, top), None,
                            shade(color, 0.8))  # coping
            else:
                paint_fence(canvas, camera, corners, 'side', X, painter.base('fence'), top)


def _random_side(rng):
    """-1 (left) or +1 (right), evenly."""
    return 1 if rng.rand() < 0.5 else -1


def _object_depth(street, lo=None, hi=45.0):
    """A log-uniform depth for an object, by default from just beyond the bottom row."""
    return loguniform(street.rng, max(street.depth_bottom * 1.05, 3.0) if lo is None else lo, hi)


def _place_vehicles(street):
    """[(depth, draw function, its keyword arguments)] of cars in lanes and parked at the kerbs,
    trucks, buses and the tram."""
    style, rng, road_left, road_right = street.style, street.rng, street.road_left, \
        street.road_right
    lanes = street.lanes
    nearest = max(street.depth_bottom * 1.3, 5.0)  # no bonnet-filling vehicles
    placed = []
    for _ in range(rng.poisson(style.n_lane_cars)):
        lane = rng.randint(lanes)
        X = road_left + (lane + 0.5) * LANE_WIDTH + rng.uniform(-0.4, 0.4)
        oncoming = X < road_left + lanes * LANE_WIDTH / 2 - 0.1 and lanes > 1
        placed.append((_object_depth(street, lo=nearest), draw_vehicle,
                       dict(X=X, kind='car', facing_camera=oncoming)))
    for _ in range(rng.poisson(style.n_parked_cars)):
        X = (road_right - 1.1) if _random_side(rng) > 0 else (road_left + 1.1)
        placed.append((_object_depth(street, lo=nearest), draw_vehicle,
                       dict(X=X + rng.uniform(-0.2, 0.2), kind='car', facing_camera=False)))
    for kind, probability in (('truck', style.p_truck), ('bus', style.p_bus)):
        if rng.rand() < probability:
            X = road_left + (rng.randint(lanes) + 0.5) * LANE_WIDTH
            placed.append((_object_depth(street, lo=nearest + 2.0), draw_vehicle,
                           dict(X=X, kind=kind, facing_camera=False)))
    if rng.rand() < style.p_train:
        placed.append((rng.uniform(18.0, 40.0), draw_tram, {}))
    return placed


def _place_people(street):
    """Persons (on a sidewalk or crossing), riders on the road, parked two-wheelers."""
    style, rng, road_left, road_right = street.style, street.rng, street.road_left, \
        street.road_right
    placed = []
    for _ in range(rng.poisson(style.n_persons)):
        if rng.rand() < style.p_crossing:
            X = rng.uniform(road_left + 0.3, road_right - 0.3)
        elif rng.rand() < 0.5:
            X = rng.uniform(street.sidewalk_left + 0.3, road_left - 0.3)
        else:
            X = rng.uniform(road_right + 0.3, street.sidewalk_right - 0.3)
        placed.append((_object_depth(street, hi=NEAR_OBJECTS), draw_person, dict(X=X)))
    for _ in range(rng.poisson(style.n_riders)):
        X = rng.uniform(road_left + 0.6, road_right - 0.6)
        kind = 'bicycle' if rng.rand() < style.p_bicycle else 'motorcycle'
        placed.append((_object_depth(street, hi=NEAR_OBJECTS), draw_two_wheeler,
                       dict(X=X, kind=kind, ridden=True)))
    for _ in range(rng.poisson(style.n_parked_bikes)):
        X = (street.sidewalk_right - 0.9) if _random_side(rng) > 0 else \
            (street.sidewalk_left + 0.9)
        kind = 'bicycle' if rng.rand() < 0.7 else 'motorcycle'
        placed.append((_object_depth(street, hi=NEAR_OBJECTS), draw_two_wheeler,
                       dict(X=X, kind=kind, ridden=False)))
    return placed


def _place_street_furniture(street):
    """Poles at the kerb (signs, lights, lamps), street trees and static boxes at the back."""
    style, rng = street.style, street.rng
    placed = []
    for _ in range(rng.poisson(style.n_poles)):
        X = (street.road_right + rng.uniform(0.3, 0.7)) if _random_side(rng) > 0 else \
            (street.road_left - rng.uniform(0.3, 0.7))
        what = ['sign', 'light', 'both', 'lamp', 'none'][
            rng.choice(5, p=[0.35, 0.25, 0.15, 0.15, 0.1])]
        placed.append((_object_depth(street, hi=NEAR_OBJECTS + 10.0), draw_pole,
                       dict(X=X, what=what)))
    for _ in range(rng.poisson(style.n_trees)):
        X = (street.sidewalk_right - 0.7) if _random_side(rng) > 0 else \
            (street.sidewalk_left + 0.7)
        placed.append((_object_depth(street), draw_tree, dict(X=X)))
    for _ in range(rng.poisson(style.n_static)):
        X = (street.sidewalk_right - rng.uniform(0.4, 1.2)) if _random_side(rng) > 0 else \
            (street.sidewalk_left + rng.uniform(0.4, 1.2))
        placed.append((_object_depth(street, hi=30.0), draw_static, dict(X=X)))
    return placed


def _draw_far_to_near(street, placed):
    """Draw the placed objects from the farthest to the nearest (ties in placing order)."""
    for D, draw, arguments in sorted(placed, key=lambda o: -o[0]):
        draw(street.canvas, street.camera, street.painter, D=D, **arguments)


def _paint_ego_hood(street):
    """(Target) the ego vehicle's bonnet: a dark curved band at the bottom with a glare line,
    labelled ego vehicle."""
    canvas, rng, height, width = street.canvas, street.rng, street.height, street.width
    hood_height = height * rng.uniform(0.06, 0.1)
    xx = (np.arange(width, dtype=np.float32) - width * rng.uniform(0.45, 0.55)) / width
    ytop = height - hood_height * (1.0 - 1.2 * xx ** 2)
    yy = np.arange(height, dtype=np.float32)[:, None]
    hood = yy >= ytop[None, :]
    canvas.lab[hood] = ID['ego vehicle']
    color = np.asarray(street.painter.base('car', jitter=4), np.float32) * 0.35
    glare = np.clip(1.0 - np.abs(yy - (ytop[None, :] + 2.0)) / 3.0, 0, 1)[..., None]
    canvas.img[hood] = (color[None, None, :] + glare * 60.0)[hood]


def _smooth_noise(rng, height, width, cell):
    """Unit normal noise on a grid of `cell`-pixel cells, cubic-upsampled to height x width."""
    return cv2.resize(rng.standard_normal((height // cell + 2, width // cell + 2)).astype(
        np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def _add_texture_noise(street):
    """Per-class fine and blotchy noise (strengths from the style's label look-up tables)."""
    canvas, style = street.canvas, street.style
    fine = street.rng.standard_normal((street.height, street.width)).astype(np.float32)
    coarse = _smooth_noise(street.rng, street.height, street.width, 8)
    texture = fine * style.fine[canvas.lab] + coarse * style.coarse[canvas.lab]
    canvas.img += texture[..., None]


def _add_clouds(street):
    """(Source) white cloud blotches over the sky pixels."""
    canvas = street.canvas
    noise = _smooth_noise(street.rng, street.height, street.width, 16)
    alpha = (np.clip(noise - 0.3, 0, 1) * street.style.clouds *
             (canvas.lab == ID['sky']))[..., None]
    canvas.img = canvas.img * (1 - alpha) + 245.0 * alpha


def _expose(street):
    """The final uint8 RGB image: gain, colour cast and vertical gradient, optional gamma and
    blur, sensor noise."""
    style, rng, height, width = street.style, street.rng, street.height, street.width
    gain = rng.uniform(*style.gain)
    gradient = np.linspace(style.gradient[0], style.gradient[1], height,
                           dtype=np.float32)[:, None, None]
    cast = np.asarray(style.cast, np.float32) * (1.0 + rng.normal(0, 0.02, 3)).astype(np.float32)
    img = np.clip(street.canvas.img, 0, 255) * (gain * cast)[None, None, :] * gradient
    if style.gamma != 1.0:
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** style.gamma
    if style.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), style.blur)
    if style.sensor_noise > 0:
        img = img + rng.standard_normal((height, width, 3)).astype(np.float32) * style.sensor_noise
    return np.clip(np.round(img), 0, 255).astype(np.uint8)
