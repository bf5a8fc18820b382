"""Geometry of the training crops and small-class patch mining, as yzou2/CBST issegm/data.py and
data_src.py, FileIter._read (docs/algorithm.md section 3; the draws: docs/internals.md section
3). Plain NumPy: plan_crop draws a crop's window in image coordinates, with the random calls of
yzou2/CBST issegm/data.py in their order, and canvas_rect builds just that window.
"""
import collections
import dataclasses
from typing import Optional

import numpy as np

__all__ = ['SELF_TRAINING', 'SOURCE_ONLY', 'RULES', 'IGNORE', 'CropSettings', 'Geometry',
           'CropPlan', 'crop_side', 'target_size_range', 'crop_geometry',
           'canvas_rect', 'uniform_window', 'mining_region', 'mining_candidates', 'mine_window',
           'plan_crop']

SELF_TRAINING = 'self_training'
SOURCE_ONLY = 'source_only'
RULES = (SELF_TRAINING, SOURCE_ONLY)
IGNORE = 255

# rate: scale of the image; side: window side in the original image, int(C / rate);
# label_stride: stride / rate (a float); pad: d0, the image's offset on the canvas;
# canvas_side: side of the original's square canvas.
Geometry = collections.namedtuple('Geometry', 'rate side label_stride pad canvas_side')
# Window in image coordinates: rows [top, top + side), columns [left, left + side); flip: the
# crop is mirrored left-right after resizing; mined_class: the train id the window was centred
# on (None: uniform window).
CropPlan = collections.namedtuple('CropPlan', 'top left side flip target_size geometry '
                                              'mined_class')


@dataclasses.dataclass(frozen=True)
class CropSettings:
    """What every training crop of a run shares besides its sample and seed: the crop size
    (`crop`, the network crop C, is crop_size rounded up to the stride), the feature stride,
    the scale-rate range, small-class mining (the coin's probability, mine_id and
    mine_id_priority) and, for CRST, the label inputs a crop carries (`crst`, an
    issegm/crst/settings.py CrstSettings, None for plain CBST) with the number of classes of
    LR-ENT's soft labels."""
    crop_size: int
    stride: int = 8
    scale_rate_range: tuple = (0.7, 1.3)
    mine_port: float = 0.0
    mine_id: tuple = ()
    mine_id_priority: tuple = ()
    crst: object = None
    num_classes: Optional[int] = None

    @property
    def crop(self):
        return crop_side(self.crop_size, self.stride)


def crop_side(crop_size, stride=8):
    """The network crop C: crop_size rounded up to a multiple of the stride (500 -> 504)."""
    crop_size, stride = int(crop_size), int(stride)
    if crop_size <= 0 or stride <= 0:
        raise ValueError('crop size and stride must be positive, got %d, %d' % (crop_size, stride))
    return -(-crop_size // stride) * stride


def target_size_range(origin_size, scale_rate_range):
    """(int(lo * origin), int(hi * origin)): the target size is drawn by randint(low, high + 1)
    (both ends included)."""
    lo, hi = scale_rate_range
    low, high = int(lo * origin_size), int(hi * origin_size)
    if low <= 0 or high < low:
        raise ValueError('bad scale range %s for origin size %s' % (scale_rate_range, origin_size))
    return low, high


def crop_geometry(rule, crop, stride, target_size, min_target_size, image_hw, max_shape):
    """Window side, label stride, pad and canvas side of one sample (yzou2/CBST issegm/data.py
    and data_src.py, FileIter._read).

    rate = target / max(max_shape) (SELF_TRAINING) or target / max(h, w) (SOURCE_ONLY, which
    requires h <= max_h and w <= max_w); side = int(C / rate); label stride ls = stride / rate;
    pad d0 = max(1, int(ls // 2)); d1 = max(0, int(ls - d0)); the largest window
    max_side = int(C / (min_target_size / max(max_shape))); canvas side
    max(max_side, h, w) + d1 + d0 (SELF_TRAINING) or max(max_side, max_h, max_w) + d1 + d0.
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    max_h, max_w = int(max_shape[0]), int(max_shape[1])
    longest = max(max_h, max_w)
    if rule == SELF_TRAINING:
        rate = target_size / float(longest)
        base = max(h, w)
    elif rule == SOURCE_ONLY:
        # QUIRK kept (yzou2/CBST issegm/data_src.py, FileIter._read): the rate comes from the
        # image's own longer side, the canvas from the dataset's max shape.
        if h > max_h or w > max_w:
            raise ValueError('image of %dx%d exceeds the max shape %dx%d' % (h, w, max_h, max_w))
        rate = target_size / float(max(h, w))
        base = max(max_h, max_w)
    else:
        raise ValueError('unknown crop rule %r (allowed: %s)' % (rule, ', '.join(RULES)))
    side = int(crop / rate)
    if side <= 0:
        raise ValueError('crop window of side %d (crop %d, rate %s)' % (side, crop, rate))
    label_stride = stride / rate
    pad = max(1, int(label_stride // 2))  # the original: "make sure there is an all-zero border"
    pad_after = max(0, int(label_stride - pad))
    max_side = int(crop / (min_target_size / float(longest)))
    return Geometry(rate, side, label_stride, pad, max(max_side, base) + pad_after + pad)


def canvas_rect(array, top, left, height, width, fill, table=None):
    """Rows [top, top + height) x columns [left, left + width) of `array` in its coordinates,
    `fill` where they fall outside it (the original's canvas, built only where it is read).

    array: (H, W) or (H, W, C); with `table`, the pasted part is mapped through it (label id ->
    train id) and `fill` is not (as the original fills the canvas with 255 after mapping).
    """
    out = np.empty((max(0, height), max(0, width)) + array.shape[2:], array.dtype)
    out[...] = fill
    h, w = array.shape[:2]
    y0, y1 = max(top, 0), min(top + height, h)
    x0, x1 = max(left, 0), min(left + width, w)
    if y0 < y1 and x0 < x1:
        part = array[y0:y1, x0:x1]
        out[y0 - top:y1 - top, x0 - left:x1 - left] = part if table is None else table[part]
    return out


def _bound(geometry, value):
    # QUIRK kept: yzou2/CBST issegm/data.py bounds its draws and the mining region by
    # max(1, real_label_stride, value), where real_label_stride is a float. NumPy's randint
    # truncates a float upper bound (checked in NumPy 1.23.5: randint(0, 8.7) == randint(0, 8)
    # seed by seed) and the NumPy < 1.12 of the original truncated float slice bounds, so both
    # become int(...) here.
    return int(max(1, geometry.label_stride, value))


def uniform_window(rng, geometry, image_hw):
    """Top-left (canvas coordinates) of a uniform window: row randint(0, bound(pad + h - side +
    1), 1), then column likewise with w (yzou2/CBST issegm/data.py, FileIter._read)."""
    h, w = int(image_hw[0]), int(image_hw[1])
    pad, side = geometry.pad, geometry.side
    top = rng.randint(0, _bound(geometry, pad + h - side + 1), 1)[0]
    left = rng.randint(0, _bound(geometry, pad + w - side + 1), 1)[0]
    return int(top), int(left)


def mining_region(geometry, image_hw):
    """Canvas rows [r0, r1) and columns [c0, c1) whose pixels a mined window can be centred on:
    r0 = pad + side // 2, r1 = bound(pad + h - side // 2 - 1) (columns alike with w). Empty
    when r0 >= r1 or c0 >= c1 (yzou2/CBST issegm/data.py, FileIter._read)."""
    h, w = int(image_hw[0]), int(image_hw[1])
    half = geometry.side // 2
    r0 = c0 = geometry.pad + half
    r1 = _bound(geometry, geometry.pad + h - half - 1)
    c1 = _bound(geometry, geometry.pad + w - half - 1)
    return r0, r1, c0, c1


def _as_ids(ids):
    if ids is None:
        return []
    return [int(k) for k in np.asarray(ids).ravel()]


def mining_candidates(present, mine_id, mine_id_priority):
    """Classes a window may be mined for, given `present` (bool per id 0..255).

    The entries of mine_id_priority that are present, in its order (duplicates kept, as the
    original's list comprehension); if there is none, those of mine_id. Ids outside 0..255 are
    never present; 255 (ignore) is refused: the original always finds it (the canvas outside
    the mining region is 255) and would centre windows on padding.
    """
    def kept(ids):
        ids = _as_ids(ids)
        if IGNORE in ids:
            raise ValueError('mining class ids must be train ids below %d, got %d'
                             % (IGNORE, IGNORE))
        return [k for k in ids if 0 <= k < len(present) and present[k]]

    return kept(mine_id_priority) or kept(mine_id)


def mine_window(rng, label, geometry, mine_id, mine_id_priority, label_to_train=None):
    """Small-class patch mining (yzou2/CBST issegm/data.py, FileIter._read): (top, left, class)
    of the window in canvas coordinates, or None when no candidate class is in the region.

    label: (H, W) label ids mapped through `label_to_train`, or train ids (table None). QUIRK
    kept: the candidates are the classes present in a 255-filled copy of the region and the
    class is candidates[int(floor(uniform(0, n)))], not randint; its pixels in the mining region in
    row-major order, one drawn by randint(0, count, 1), is the window centre: the window starts
    side // 2 above and left of it.
    """
    r0, r1, c0, c1 = mining_region(geometry, label.shape)
    pad = geometry.pad
    region = canvas_rect(label, r0 - pad, c0 - pad, r1 - r0, c1 - c0, IGNORE,
                         None if label_to_train is None else np.asarray(label_to_train))
    present = np.bincount(region.ravel(), minlength=256) > 0
    cands = mining_candidates(present, mine_id, mine_id_priority)
    if not cands:
        return None
    cls = cands[int(np.floor(rng.uniform(0, len(cands))))]
    ys, xs = np.nonzero(region == cls)  # row-major, as np.where over the original's canvas
    k = rng.randint(0, len(ys), 1)[0]
    half = geometry.side // 2
    return int(ys[k]) + r0 - half, int(xs[k]) + c0 - half, cls


def plan_crop(rng, label, settings, origin_size, max_shape, rule=SELF_TRAINING,
              label_to_train=None):
    """Draw the crop of one sample as yzou2/CBST issegm/data.py FileIter._read (docs/algorithm.md
    section 3).

    label: (H, W) label ids (mapped through `label_to_train`) or train ids; read only for
    mining (the image has the same size). settings: the CropSettings of the run (its crop,
    stride, scale range and mining). Returns a CropPlan in image coordinates.
    """
    low, high = target_size_range(origin_size, settings.scale_rate_range)
    target_size = rng.randint(low, high + 1)
    geometry = crop_geometry(rule, settings.crop, settings.stride, target_size, low, label.shape,
                             max_shape)
    placed = None
    if rule == SELF_TRAINING:
        # QUIRK kept: the coin is drawn for every sample, also when mine_port is 0.
        if rng.rand(1)[0] < settings.mine_port:
            placed = mine_window(rng, label, geometry, settings.mine_id,
                                 settings.mine_id_priority, label_to_train)
    if placed is None:
        top, left = uniform_window(rng, geometry, label.shape)
        mined = None
    else:
        top, left, mined = placed
    flip = bool(rng.randint(2) == 0)
    side, size = geometry.side, geometry.canvas_side
    if not (0 <= top <= size - side and 0 <= left <= size - side):
        # the original's slice would come out short and its assert fail; only possible when
        # the label stride stride / rate is below 2 pixels
        raise ValueError('crop window (%d, %d) of side %d leaves the canvas of side %d'
                         % (top, left, side, size))
    return CropPlan(top - geometry.pad, left - geometry.pad, side, flip, target_size, geometry,
                    mined)
