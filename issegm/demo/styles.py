"""The two domains of the demo data: class ids, per-domain style tables and their blend (the
domain shift: docs/demo.md, "The domain shift").
"""
import numpy as np
from cityscapesscripts.helpers.labels import name2label

_CLASS_NAMES = ['unlabeled', 'ego vehicle', 'static', 'road', 'sidewalk', 'building', 'wall',
                'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain', 'sky',
                'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle']
#: Cityscapes label ids of the classes drawn here (from cityscapesscripts, never hand-typed).
ID = {n: name2label[n].id for n in _CLASS_NAMES}


class Style:
    """Parameters of one domain (docs/demo.md, "The domain shift", says how they differ)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _class_table(values):
    """A 256-entry float32 look-up table indexed by label id, from {class name: value}."""
    table = np.zeros(256, np.float32)
    for name, value in values.items():
        table[ID[name]] = value
    return table


SOURCE_STYLE = Style(
    name='source',
    horizon=(0.36, 0.44), cam_height=(1.4, 1.7), focal=(0.55, 0.65), lanes=(2, 4),
    sidewalk=(1.8, 3.2), strip_p=0.4, strip=(1.0, 4.0),
    n_lane_cars=2.2, n_parked_cars=1.8, n_persons=2.5, n_riders=1.0, p_bicycle=0.5,
    n_parked_bikes=0.6, p_truck=0.16, p_bus=0.07, p_train=0.01, n_poles=3.0, n_trees=0.8,
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
    fine=_class_table({'road': 6, 'sidewalk': 4, 'building': 4, 'wall': 5, 'fence': 3,
                       'vegetation': 12, 'terrain': 10, 'sky': 1, 'car': 2, 'truck': 2, 'bus': 2,
                       'train': 2, 'person': 3, 'rider': 3, 'pole': 2, 'static': 4}),
    coarse=_class_table({'road': 5, 'sidewalk': 4, 'building': 6, 'wall': 6, 'vegetation': 16,
                         'terrain': 14, 'sky': 0}),
    clouds=0.6, shadow_p=0.6, lane_marks=1.0, edge_lines=True, tiles=False,
    gain=(0.9, 1.15), cast=(1.05, 1.0, 0.93), gradient=(1.0, 1.0), gamma=1.0,
    sensor_noise=2.0, blur=0.0, ego=False,
)

TARGET_STYLE = Style(
    name='target',
    horizon=(0.36, 0.44), cam_height=(1.4, 1.7), focal=(0.55, 0.65), lanes=(2, 3),
    sidewalk=(3.0, 5.5), strip_p=0.5, strip=(1.0, 3.0),
    n_lane_cars=1.1, n_parked_cars=1.2, n_persons=4.5, n_riders=1.5, p_bicycle=0.75,
    n_parked_bikes=1.2, p_truck=0.07, p_bus=0.07, p_train=0.01, n_poles=3.0, n_trees=2.0,
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
    fine=_class_table({'road': 4, 'sidewalk': 5, 'building': 5, 'wall': 6, 'fence': 4,
                       'vegetation': 18, 'terrain': 12, 'sky': 2, 'car': 3, 'truck': 3, 'bus': 3,
                       'train': 3, 'person': 4, 'rider': 4, 'pole': 3, 'static': 5,
                       'ego vehicle': 3}),
    coarse=_class_table({'road': 7, 'sidewalk': 5, 'building': 8, 'wall': 8, 'vegetation': 22,
                         'terrain': 16, 'sky': 9}),
    clouds=0.0, shadow_p=0.0, lane_marks=0.7, edge_lines=False, tiles=True,
    gain=(0.84, 0.96), cast=(0.95, 1.0, 1.05), gradient=(1.04, 0.9), gamma=1.0,
    sensor_noise=4.0, blur=0.5, ego=True,
)



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
