"""The LR-ENT soft label of one training crop, recomputed from what phase val keeps, at exactly the
pixels the crop's hard label shows (docs/algorithm.md section 3b, "The soft label of a crop").
"""
import collections
import math

import numpy as np
from PIL import Image

from issegm.crst import lrent
from util.image import interp_filter

__all__ = ['IGNORE', 'NetMap', 'crop_pixel_index', 'probs_region', 'probs_at',
           'soft_label_crop', 'one_hot_labels']

IGNORE = 255

# Phase val's network-resolution class map of one image (issegm/testtime/one_image.py,
# Predictor.network_probs): the (C, h, w) probabilities at the prediction stride, the size of the
# scaled (unpadded) network input and the image size.
NetMap = collections.namedtuple('NetMap', 'probs pred_stride scaled_hw hw')

# Pillow's filter supports (in input pixels at scale 1): bicubic 2, bilinear 1, Lanczos 3.
_SUPPORT = {Image.BICUBIC: 2.0, Image.BILINEAR: 1.0, Image.LANCZOS: 3.0}


def crop_pixel_index(plan, image_hw, crop, stride=8):
    """(n, n) int64 with n = len(range(stride // 2, crop, stride)): for each cell of the crop's
    label grid, the flat index row * W + col of the image pixel it shows, -1 outside the image.

    plan: a sampling.CropPlan (window in image coordinates, flip); the same steps as the label
    of issegm/data_iter.py, crop_arrays: the window (util.image.resize_label's Pillow NEAREST
    resize, here on an int32 'I' image) to crop x crop, the grid [s // 2 :: s] in both
    directions, then the flip.
    """
    height, width = (int(v) for v in image_hw)
    if height * width > np.iinfo(np.int32).max:
        raise ValueError('image of %dx%d pixels is too large for an int32 index map'
                         % (height, width))
    top, left, side = int(plan.top), int(plan.left), int(plan.side)
    rows = np.arange(top, top + side)
    cols = np.arange(left, left + side)
    in_rows = (rows >= 0) & (rows < height)
    in_cols = (cols >= 0) & (cols < width)
    window = np.full((side, side), -1, np.int32)
    window[np.ix_(in_rows, in_cols)] = rows[in_rows, None] * width + cols[None, in_cols]
    resized = Image.fromarray(window, mode='I').resize((crop, crop), Image.NEAREST)
    half = stride // 2
    grid = np.asarray(resized)[half::stride, half::stride]
    if plan.flip:
        grid = grid[:, ::-1]
    return grid.astype(np.int64)


def _needed_span(lo, hi, in_size, out_size, resample):
    """Input indices [a, b) that a Pillow resize from in_size to out_size reads for the outputs
    [lo, hi): the filter window around (x + 0.5) * scale, with a pixel to spare each side."""
    scale = in_size / float(out_size)
    support = _SUPPORT[resample] * max(scale, 1.0)
    a = int(math.floor(lo * scale - support)) - 1
    b = int(math.ceil(hi * scale + support)) + 1
    return max(0, a), min(in_size, b)


def _resize_region(planes, out, size_hw, resample, box):
    """Resize each (h, w) float32 plane's `box` (Pillow's (x0, y0, x1, y1)) to size_hw into
    the (C, H, W) float32 array `out`."""
    h, w = size_hw
    for k in range(planes.shape[0]):
        out[k] = np.asarray(Image.fromarray(planes[k], mode='F').resize((w, h), resample,
                                                                        box=box))
    return out


def probs_region(net_probs, pred_stride, scaled_hw, original_hw, rows, cols):
    """Rows [r0, r1) x columns [c0, c1) of phase val's full-size class map: the same values as
    issegm/testtime/one_image.py upsample_probs(net_probs, pred_stride, scaled_hw,
    original_hw)[:, r0:r1, c0:c1] (bit for bit or to a few ulps, docs/algorithm.md section 3b),
    computed for that region only. Returns (C, r1 - r0, c1 - c0) float32."""
    net = np.ascontiguousarray(net_probs, dtype=np.float32)
    num_classes, h, w = net.shape
    ps = int(pred_stride)
    sh, sw = (int(v) for v in scaled_hw)
    oh, ow = (int(v) for v in original_hw)
    r0, r1 = (int(v) for v in rows)
    c0, c1 = (int(v) for v in cols)
    if not (0 <= r0 < r1 <= oh and 0 <= c0 < c1 <= ow):
        raise ValueError('region rows %s, columns %s outside a %dx%d map' % (rows, cols, oh, ow))
    if sh > h * ps or sw > w * ps:
        raise ValueError('scaled size %dx%d exceeds the %dx%d upsampled map'
                         % (sh, sw, h * ps, w * ps))

    def upsampled(a0, a1, b0, b1):
        # rows [a0, a1), columns [b0, b1) of the bicubic upsampling; cropping it to the scaled
        # size keeps the top-left corner, so these are also the scaled map's
        out = np.empty((num_classes, a1 - a0, b1 - b0), np.float32)
        return _resize_region(net, out, (a1 - a0, b1 - b0), Image.BICUBIC,
                              (b0 / ps, a0 / ps, b1 / ps, a1 / ps))

    if (sh, sw) == (oh, ow):  # upsample_probs skips the last resize
        return upsampled(r0, r1, c0, c1)
    resample = interp_filter((sh, sw), (oh, ow))
    a0, a1 = _needed_span(r0, r1, sh, oh, resample)
    b0, b1 = _needed_span(c0, c1, sw, ow, resample)
    part = upsampled(a0, a1, b0, b1)
    sy, sx = sh / float(oh), sw / float(ow)
    out = np.empty((num_classes, r1 - r0, c1 - c0), np.float32)
    return _resize_region(part, out, (r1 - r0, c1 - c0), resample,
                          (c0 * sx - b0, r0 * sy - a0, c1 * sx - b0, r1 * sy - a0))


def _upsampled_grid(net, ps, out_rows, out_cols):
    """The bicubic upsampling by ps of (C, h, w) net at rows out_rows x columns out_cols (sorted
    unique int arrays): (C, len(out_rows), len(out_cols)) float32, the same values as the full
    Pillow resize.

    Pillow resizes in two passes, horizontal then vertical, through a float32 intermediate; a
    row of the horizontal pass depends only on its input row, a column of the vertical pass only
    on its column. So: one horizontal pass over the net rows the wanted rows read, all classes
    stacked into one image; keep the wanted columns; then one vertical resize per wanted row,
    all classes side by side, with a one-row box. Every box coordinate is a multiple of 1 / ps
    (exact in Pillow's float32 box for a power-of-two ps), so Pillow computes the same filter
    windows and coefficients as in the full resize (tests/test_soft_labels.py checks it bit for
    bit).
    """
    num_classes, h, w = net.shape
    support = _SUPPORT[Image.BICUBIC]  # upsampling: the filter is not widened
    n0 = max(0, int(math.floor((out_rows[0] + 0.5) / ps - support)) - 1)
    n1 = min(h, int(math.ceil((out_rows[-1] + 0.5) / ps + support)) + 1)
    c0, c1 = int(out_cols[0]), int(out_cols[-1]) + 1
    rows_in = n1 - n0
    stacked = np.ascontiguousarray(net[:, n0:n1]).reshape(num_classes * rows_in, w)
    horizontal = Image.fromarray(stacked, mode='F').resize(
        (c1 - c0, num_classes * rows_in), Image.BICUBIC,
        box=(c0 / ps, 0, c1 / ps, num_classes * rows_in))
    wanted = np.asarray(horizontal).reshape(num_classes, rows_in, c1 - c0)[:, :, out_cols - c0]
    num_cols = len(out_cols)
    side_by_side = np.ascontiguousarray(wanted.transpose(1, 0, 2)).reshape(
        rows_in, num_classes * num_cols)
    image = Image.fromarray(side_by_side, mode='F')
    out = np.empty((num_classes, len(out_rows), num_cols), np.float32)
    for i, y in enumerate(out_rows):
        row = image.resize((num_classes * num_cols, 1), Image.BICUBIC,
                           box=(0, y / ps - n0, num_classes * num_cols, (y + 1) / ps - n0))
        out[:, i] = np.asarray(row).reshape(num_classes, num_cols)
    return out


def probs_at(net_probs, pred_stride, scaled_hw, original_hw, rows, cols):
    """Phase val's full-size class probabilities at the pixels (rows[i], cols[i]): (C, m)
    float32, the values of issegm/testtime/one_image.py upsample_probs(...)[:, rows, cols].

    When the scaled size is the original size (upsample_probs then only upsamples), only the
    grid of the wanted rows and columns is computed, bit for bit (see _upsampled_grid);
    otherwise the bounding box of the pixels, with probs_region.
    """
    net = np.ascontiguousarray(net_probs, dtype=np.float32)
    rows = np.asarray(rows, np.int64).ravel()
    cols = np.asarray(cols, np.int64).ravel()
    oh, ow = (int(v) for v in original_hw)
    if rows.size == 0:
        return np.zeros((net.shape[0], 0), np.float32)
    if rows.shape != cols.shape or rows.min() < 0 or rows.max() >= oh or cols.min() < 0 \
            or cols.max() >= ow:
        raise ValueError('pixels outside a %dx%d map' % (oh, ow))
    if tuple(int(v) for v in scaled_hw) == (oh, ow):
        ps = int(pred_stride)
        if net.shape[1] * ps < oh or net.shape[2] * ps < ow:
            raise ValueError('scaled size %dx%d exceeds the %dx%d upsampled map'
                             % (oh, ow, net.shape[1] * ps, net.shape[2] * ps))
        out_rows, row_of = np.unique(rows, return_inverse=True)
        out_cols, col_of = np.unique(cols, return_inverse=True)
        return _upsampled_grid(net, ps, out_rows, out_cols)[:, row_of, col_of]
    r0, c0 = int(rows.min()), int(cols.min())
    region = probs_region(net, pred_stride, scaled_hw, original_hw, (r0, int(rows.max()) + 1),
                          (c0, int(cols.max()) + 1))
    return region[:, rows - r0, cols - c0]


def soft_label_crop(netmap, cls_thresh, alpha, plan, crop, hard_label, stride=8, prior=None):
    """The LR-ENT soft label (C, n, n) float32 of one target crop, n = the label grid side.

    netmap: the image's NetMap; cls_thresh, alpha: the round's thresholds and --lr-weight-ent;
    plan, crop, stride: the crop (sampling.CropPlan, as for issegm/data_iter.py crop_arrays);
    hard_label: that crop's (n, n) label (train ids, 255 = none); prior: phase val's (C, H, W)
    spatial prior, or None. Cells whose hard label is 255 get zeros; the others
    y = issegm/crst/lrent.py soft_labels of p at the pixel they show.
    """
    net = np.asarray(netmap.probs)
    original_hw = netmap.hw
    index = crop_pixel_index(plan, original_hw, crop, stride)
    hard = np.asarray(hard_label)
    if hard.shape != index.shape:
        raise ValueError('hard label of shape %s for a label grid of %s'
                         % (hard.shape, index.shape))
    labelled = hard != IGNORE
    out = np.zeros((net.shape[0],) + index.shape, np.float32)
    if not labelled.any():
        return out
    flat = index[labelled]
    if flat.min() < 0:
        raise ValueError('hard label holds classes outside the image')
    rows, cols = np.divmod(flat, int(original_hw[1]))
    probs = probs_at(net, netmap.pred_stride, netmap.scaled_hw, original_hw, rows, cols)
    if prior is not None:
        probs *= prior[:, rows, cols]  # float32, as phase val's `probs *= prior`
    out[:, labelled] = lrent.soft_labels(probs[:, None, :], cls_thresh, alpha)[:, 0, :]
    return out


def one_hot_labels(label, num_classes):
    """(C, n, n) float32 one-hot of an (n, n) hard label, zeros where it is 255: the soft label
    of a source crop (yzou2/CRST deeplab/datasets.py, SoftSrcSTDataSet)."""
    label = np.asarray(label)
    out = np.zeros((int(num_classes),) + label.shape, np.float32)
    for k in range(int(num_classes)):
        out[k] = label == k
    return out
