"""Geometry of the training crops and small-class patch mining (SPEC 6, steps 1-3). Pure NumPy.

All randomness comes from the `np.random.RandomState` handed in, drawn in this order per
sample: target size, [mining coin (only when mine_port > 0), mined class, mined pixel]
or [window row, window column], flip coin.

Coordinates: the image (H x W) is thought of as centred on a square canvas of side
L = max(side, H, W) + 2 (so a border of at least one mean-coloured / ignored pixel surrounds it)
at offset (top, left) = ((L - H) // 2, (L - W) // 2). The crop window is a `side` x `side`
square inside that canvas. `plan_crop` returns it in original-image coordinates, where it may
extend past the image (negative or beyond H/W); the canvas itself is never built.
"""
import collections

import numpy as np

__all__ = ['CANVAS_BORDER', 'Canvas', 'CropPlan', 'crop_side', 'draw_target_size',
           'window_side', 'canvas_layout', 'uniform_window', 'mining_region',
           'choose_mining_class', 'mine_window', 'plan_crop']

CANVAS_BORDER = 1

Canvas = collections.namedtuple('Canvas', 'size top left')
# Window in original-image coordinates: rows [top, top + side), columns [left, left + side).
# mined_class is the train id the window was centred on (None: uniform window).
CropPlan = collections.namedtuple('CropPlan', 'top left side flip target_size mined_class')


def crop_side(crop_size, stride=8):
    """The network crop C: crop_size rounded up to a multiple of the stride (500 -> 504)."""
    crop_size, stride = int(crop_size), int(stride)
    if crop_size <= 0 or stride <= 0:
        raise ValueError('crop size and stride must be positive, got %d, %d' % (crop_size, stride))
    return -(-crop_size // stride) * stride


def draw_target_size(rng, origin_size, scale_rate_range):
    """Uniform integer in [int(lo * origin), int(hi * origin)] (both ends included)."""
    lo, hi = scale_rate_range
    low, high = int(lo * origin_size), int(hi * origin_size)
    if low <= 0 or high < low:
        raise ValueError('bad scale range %s for origin size %s' % (scale_rate_range, origin_size))
    return rng.randint(low, high + 1)


def window_side(crop, target_size, max_shape):
    """Side of the crop window in the original image: int(C / rate), rate = target / max side."""
    rate = target_size / float(max(max_shape))
    return int(crop / rate)


def canvas_layout(image_hw, side, border=CANVAS_BORDER):
    """Square canvas holding the image centred with a border of >= `border` pixels."""
    h, w = int(image_hw[0]), int(image_hw[1])
    size = max(side, h, w) + 2 * border
    return Canvas(size, (size - h) // 2, (size - w) // 2)


def uniform_window(rng, canvas, side):
    """Top-left corner (canvas coordinates) of a window placed uniformly inside the canvas."""
    top = rng.randint(0, canvas.size - side + 1)
    left = rng.randint(0, canvas.size - side + 1)
    return top, left


def mining_region(canvas, side, image_hw):
    """Image rows [r0, r1) and columns [c0, c1) of the pixels a window can be centred on.

    A window centred on canvas pixel c (top-left c - side // 2) fits in the canvas when
    side // 2 <= c <= canvas.size - side + side // 2; the region is that range intersected
    with the image. It may be empty (r0 >= r1 or c0 >= c1).
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    half = side // 2
    last = canvas.size - side + half  # last admissible centre, canvas coordinates
    r0, r1 = max(0, half - canvas.top), min(h, last - canvas.top + 1)
    c0, c1 = max(0, half - canvas.left), min(w, last - canvas.left + 1)
    return r0, r1, c0, c1


def _as_ids(ids):
    if ids is None:
        return []
    return [int(k) for k in np.asarray(ids).ravel()]


def choose_mining_class(rng, present, mine_id, mine_id_priority):
    """Class to mine given `present` (bool per train id, at least 256 long), or None.

    Present classes of mine_id_priority win; otherwise the present classes of mine_id. One of
    the candidates (in list order, duplicates removed) is drawn uniformly.
    """
    def candidates(ids):
        seen = []
        for k in _as_ids(ids):
            if 0 <= k < len(present) and present[k] and k not in seen:
                seen.append(k)
        return seen

    cands = candidates(mine_id_priority) or candidates(mine_id)
    if not cands:
        return None
    return cands[rng.randint(len(cands))]


def mine_window(rng, label, canvas, side, mine_id, mine_id_priority, label_to_train=None):
    """Small-class patch mining: (top, left, class) in canvas coordinates, or None.

    `label` holds train ids, or label ids when the `label_to_train` table is given (only the
    mining region is mapped then). A uniformly drawn pixel of the chosen class becomes the
    window centre, clamped so the window stays inside the canvas.
    """
    r0, r1, c0, c1 = mining_region(canvas, side, label.shape)
    if r0 >= r1 or c0 >= c1:
        return None
    region = label[r0:r1, c0:c1]
    if label_to_train is not None:
        region = np.asarray(label_to_train)[region]
    present = np.bincount(region.ravel(), minlength=256) > 0
    cls = choose_mining_class(rng, present, mine_id, mine_id_priority)
    if cls is None:
        return None
    ys, xs = np.nonzero(region == cls)
    k = rng.randint(len(ys))
    half = side // 2
    hi = canvas.size - side
    top = min(max(int(ys[k]) + r0 + canvas.top - half, 0), hi)
    left = min(max(int(xs[k]) + c0 + canvas.left - half, 0), hi)
    return top, left, cls


def plan_crop(rng, label, crop, origin_size, max_shape, scale_rate_range=(0.7, 1.3),
              mine_port=0.0, mine_id=(), mine_id_priority=(), label_to_train=None):
    """Draw the crop of one sample (SPEC 6 steps 1-3).

    label: (H, W) train ids, or label ids with `label_to_train` (the image has the same size).
    crop: the network crop C (already a multiple of the stride, see crop_side).
    Returns a CropPlan in original-image coordinates.
    """
    target_size = draw_target_size(rng, origin_size, scale_rate_range)
    side = window_side(crop, target_size, max_shape)
    if side <= 0:
        raise ValueError('crop window of side %d (crop %d, target size %d, max shape %s)'
                         % (side, crop, target_size, max_shape))
    canvas = canvas_layout(label.shape, side)
    placed = None
    if mine_port > 0 and rng.rand() < mine_port:
        placed = mine_window(rng, label, canvas, side, mine_id, mine_id_priority, label_to_train)
    if placed is None:
        top, left = uniform_window(rng, canvas, side)
        mined = None
    else:
        top, left, mined = placed
    flip = bool(rng.rand() < 0.5)
    return CropPlan(top - canvas.top, left - canvas.left, side, flip, target_size, mined)
