"""Where a scene's objects stand (issegm/demo/scenes.py, render_scene): vehicles in lanes and at
the kerbs, people, street furniture, each a (depth, draw function, its keyword arguments), drawn
from the farthest to the nearest. They draw from the scene's one random stream, in the order
render_scene calls them (docs/demo.md, "A scene").
"""
from issegm.demo.drawing import loguniform
from issegm.demo.objects import draw_person, draw_pole, draw_static, draw_tram, draw_tree, \
    draw_two_wheeler, draw_vehicle

LANE_WIDTH = 3.3  # metres
# Persons, riders and two-wheelers stand within 20 m (poles within 30 m) of the camera: farther,
# they shrink below the narrow model's 8-pixel output cell (docs/demo.md, "The class balance").
NEAR_OBJECTS = 20.0


def random_side(rng):
    """-1 (left) or +1 (right), evenly."""
    return 1 if rng.rand() < 0.5 else -1


def _object_depth(street, lo=None, hi=45.0):
    """A log-uniform depth for an object, by default from just beyond the bottom row."""
    return loguniform(street.rng, max(street.depth_bottom * 1.05, 3.0) if lo is None else lo, hi)


def place_vehicles(street):
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
        X = (road_right - 1.1) if random_side(rng) > 0 else (road_left + 1.1)
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


def place_people(street):
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
        X = (street.sidewalk_right - 0.9) if random_side(rng) > 0 else \
            (street.sidewalk_left + 0.9)
        kind = 'bicycle' if rng.rand() < 0.7 else 'motorcycle'
        placed.append((_object_depth(street, hi=NEAR_OBJECTS), draw_two_wheeler,
                       dict(X=X, kind=kind, ridden=False)))
    return placed


def place_street_furniture(street):
    """Poles at the kerb (signs, lights, lamps), street trees and static boxes at the back."""
    style, rng = street.style, street.rng
    placed = []
    for _ in range(rng.poisson(style.n_poles)):
        X = (street.road_right + rng.uniform(0.3, 0.7)) if random_side(rng) > 0 else \
            (street.road_left - rng.uniform(0.3, 0.7))
        what = ['sign', 'light', 'both', 'lamp', 'none'][
            rng.choice(5, p=[0.35, 0.25, 0.15, 0.15, 0.1])]
        placed.append((_object_depth(street, hi=NEAR_OBJECTS + 10.0), draw_pole,
                       dict(X=X, what=what)))
    for _ in range(rng.poisson(style.n_trees)):
        X = (street.sidewalk_right - 0.7) if random_side(rng) > 0 else \
            (street.sidewalk_left + 0.7)
        placed.append((_object_depth(street), draw_tree, dict(X=X)))
    for _ in range(rng.poisson(style.n_static)):
        X = (street.sidewalk_right - rng.uniform(0.4, 1.2)) if random_side(rng) > 0 else \
            (street.sidewalk_left + rng.uniform(0.4, 1.2))
        placed.append((_object_depth(street, hi=30.0), draw_static, dict(X=X)))
    return placed


def draw_far_to_near(street, placed):
    """Draw the placed objects from the farthest to the nearest (ties in placing order)."""
    for D, draw, arguments in sorted(placed, key=lambda o: -o[0]):
        draw(street.canvas, street.camera, street.painter, D=D, **arguments)
