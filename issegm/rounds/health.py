"""A round's health (docs/internals.md section 11), plain NumPy (and OpenCV's histogram) without
files: per-image counts of the pseudo-labels against the ground truth, and of the label-free
signals on a sampling grid (confidence, agreement with the previous round's pseudo-labels),
entropy sums of the network maps (image_health, grid_confidence, entropy_sums); summed over
images (RoundHealth) into metrics.json's keys (health_metrics) and the pseudo_quality.md table
(quality_table).
"""
import collections

import cv2
import numpy as np

from issegm.cbst import argmax_max

__all__ = ['GRID_STRIDE', 'GRID_OFFSET', 'ImageHealth', 'RoundHealth', 'grid_sample',
           'grid_shape', 'label_histogram', 'class_counts', 'grid_confidence', 'entropy_sums',
           'image_health', 'health_metrics', 'quality_table']

# The label-free signals per pixel (confidence, agreement) are counted at one pixel of each 8x8
# cell, its centre (rows and columns 4, 12, 20, ...): the stride of the network's outputs, which
# the full-size maps interpolate; 32,768 pixels of a 2048x1024 image. The ground-truth counts
# (precision, recall, kept share, confusion) and the kept pixels per class take every pixel.
GRID_STRIDE, GRID_OFFSET = 8, 4
# cv2.calcHist counts in float32, exact up to 2**24: that many pixels at most per call.
_EXACT_COUNT = 1 << 24


class ImageHealth(collections.namedtuple('ImageHealth',
                                         'kept quality grid_kept confidence agreement')):
    """One image's counts: kept pixels per class (every pixel), the label_histogram
    [gt][pseudo] (None without ground truth), the grid's kept pixels per class and their sum
    of p_c (grid_confidence), the grid's label_histogram [previous round][pseudo] (None
    without the previous round's pseudo-labels)."""


def grid_sample(array):
    """The pixels of an (..., H, W) map at the grid's points (GRID_STRIDE, GRID_OFFSET): a
    view."""
    return array[..., GRID_OFFSET::GRID_STRIDE, GRID_OFFSET::GRID_STRIDE]


def grid_shape(hw):
    """The shape of grid_sample of an (H, W) map."""
    return tuple(len(range(GRID_OFFSET, int(side), GRID_STRIDE)) for side in hw)


def label_histogram(labels, pseudo, label_to_train, num_classes):
    """int64 (C + 1, C + 1) pixel counts [label_to_train[labels]][pseudo class] of two uint8
    maps of one size, every id without a class (255, ids past the table) in index C: `labels`
    label ids, `pseudo` train ids (255 = not kept; pass an identity table for train ids). The
    256 x 256 byte pairs are counted by cv2.calcHist (2-3x faster than np.bincount of a
    combined index) in slabs of rows under 2**24 pixels, then folded into classes."""
    labels, pseudo = np.asarray(labels, np.uint8), np.asarray(pseudo, np.uint8)
    if labels.shape != pseudo.shape or labels.ndim != 2:
        raise ValueError('label maps %s and pseudo-labels %s differ in size'
                         % (labels.shape, pseudo.shape))
    pairs = _byte_histogram([labels, pseudo])
    bins = num_classes + 1
    index = _class_codes(label_to_train, num_classes)[:, None] * bins + \
        _class_codes(np.arange(256), num_classes)[None, :]
    # float64 weights hold counts exactly (below 2**53)
    folded = np.bincount(index.ravel(), weights=pairs.ravel(), minlength=bins * bins)
    return np.rint(folded).astype(np.int64).reshape(bins, bins)


def class_counts(labels, num_classes):
    """int64 (C,): pixels of each class 0 .. C-1 in a uint8 (H, W) map of train ids (np.bincount
    of the map, by cv2.calcHist: 4x faster)."""
    return _byte_histogram([np.asarray(labels, np.uint8)])[:num_classes]


def _byte_histogram(maps):
    """int64 counts of the byte values (one map: (256,)) or byte pairs (two maps of one size:
    (256, 256)) of uint8 (H, W) maps, by cv2.calcHist in slabs of rows under 2**24 pixels."""
    dims = len(maps)
    counts = np.zeros((256,) * dims, np.int64)
    if maps[0].size == 0:
        return counts
    rows = max(1, _EXACT_COUNT // max(1, maps[0].shape[1]))
    for r0 in range(0, maps[0].shape[0], rows):
        slabs = [np.ascontiguousarray(m[r0:r0 + rows]) for m in maps]
        counts += cv2.calcHist(slabs, list(range(dims)), None, [256] * dims,
                               [0, 256] * dims).astype(np.int64).reshape(counts.shape)
    return counts


def _class_codes(table, num_classes):
    """int64 (256,): table[i] where it is a class (< C), else C; C past the table's end."""
    codes = np.full(256, num_classes, np.int64)
    table = np.asarray(table)[:256].astype(np.int64)
    codes[:len(table)] = np.where(table < num_classes, table, num_classes)
    return codes


def grid_confidence(pseudo, probs, num_classes):
    """(int64 (C,) grid pixels kept per class, float64 (C,) their sum of p_c) of one image: at
    the grid's points, p_c is the probability of the pseudo class c in `probs` (C, H, W), the
    map pass 2 thresholded. Reads only those values of the map."""
    sample = grid_sample(pseudo)
    rows, cols = np.nonzero(sample < num_classes)
    cls = sample[rows, cols]
    chosen = probs[cls, GRID_OFFSET + GRID_STRIDE * rows, GRID_OFFSET + GRID_STRIDE * cols]
    return (np.bincount(cls, minlength=num_classes).astype(np.int64),
            np.bincount(cls, weights=chosen.astype(np.float64), minlength=num_classes))


def entropy_sums(probs):
    """(entropy summed per argmax class, pixels per argmax class) of a (C, h, w) softmax map:
    float64 (C,) of -sum_k p_k log p_k (nats; 0 log 0 = 0) and int64 (C,)."""
    probs = np.asarray(probs, np.float32)
    num_classes = probs.shape[0]
    flat = probs.reshape(num_classes, -1)
    logs = np.maximum(flat, np.finfo(np.float32).tiny)
    np.log(logs, out=logs)
    entropy = -np.einsum('kn,kn->n', flat, logs)  # float32 per pixel, summed in float64 below
    cls = argmax_max(flat.reshape(num_classes, 1, -1))[0].ravel()  # one block: faster
    return (np.bincount(cls, weights=entropy, minlength=num_classes)[:num_classes],
            np.bincount(cls, minlength=num_classes)[:num_classes].astype(np.int64))


def image_health(pseudo, confidence, label_to_train, gt=None, previous=None):
    """The ImageHealth of one image: `pseudo` (train ids, 255 = not kept), its grid_confidence,
    the ground truth as label ids and the previous round's pseudo-labels on the grid as train
    ids (grid_sample of the map; or None). Its `kept` is np.bincount(pseudo)[:C], taken from
    the ground-truth histogram when there is one (one pass over the pixels less)."""
    num_classes = len(confidence[0])
    quality = agreement = None
    if gt is not None:
        quality = label_histogram(gt, pseudo, label_to_train, num_classes)
        kept = quality.sum(axis=0)[:num_classes]
    else:
        kept = class_counts(pseudo, num_classes)
    if previous is not None:
        agreement = label_histogram(previous, grid_sample(pseudo), np.arange(256), num_classes)
    return ImageHealth(kept, quality, confidence[0], confidence[1], agreement)


class RoundHealth:
    """ImageHealth and entropy_sums summed over the images of a round, in the order they are
    added (the float sums, hence metrics.json, do not depend on thread timing). `has_gt`: every
    image has ground truth; previous_images: the images with a previous round's pseudo-labels."""

    def __init__(self, num_classes, has_gt):
        self.num_classes, self.has_gt = int(num_classes), bool(has_gt)
        self.num_images = self.previous_images = 0
        self.total = ImageHealth(
            np.zeros(num_classes, np.int64),
            np.zeros((num_classes + 1,) * 2, np.int64) if has_gt else None,
            np.zeros(num_classes, np.int64), np.zeros(num_classes),
            np.zeros((num_classes + 1,) * 2, np.int64))
        self.entropy = np.zeros(num_classes)
        self.entropy_pixels = np.zeros(num_classes, np.int64)

    def add_entropy(self, sums, pixels):
        """Add one image's entropy_sums."""
        self.entropy += sums
        self.entropy_pixels += pixels

    def add(self, image):
        """Add one ImageHealth (its quality histogram is needed when has_gt)."""
        if self.has_gt and image.quality is None:
            raise ValueError('an image without ground truth in a split that has it')
        for name in ImageHealth._fields:
            part = getattr(image, name)
            if part is not None and getattr(self.total, name) is not None:
                getattr(self.total, name)[...] += part
        self.num_images += 1
        self.previous_images += image.agreement is not None


def _ratios(num, den):
    """num / den elementwise as a list of floats, None where den is 0."""
    return [float(n) / float(d) if d else None for n, d in zip(np.ravel(num), np.ravel(den))]


def _per_class(names, values):
    return dict(zip(names, values))


def health_metrics(health, class_names):
    """metrics.json's health keys of a RoundHealth (keys and meanings: docs/internals.md section
    11)."""
    names, total, n = list(class_names), health.total, health.num_classes
    out = {}
    if health.has_gt:
        out.update(_quality_metrics(total.quality, names))
    out['mean_confidence'] = _per_class(names, _ratios(total.confidence, total.grid_kept))
    out['mean_confidence_total'] = _ratios([total.confidence.sum()], [total.grid_kept.sum()])[0]
    out['mean_entropy'] = _per_class(names, _ratios(health.entropy, health.entropy_pixels))
    out['mean_entropy_total'] = _ratios([health.entropy.sum()], [health.entropy_pixels.sum()])[0]
    both = total.agreement[:n, :n]
    if health.previous_images:
        out['agreement'] = _ratios([np.trace(both)], [both.sum()])[0]
        out['agreement_per_class'] = _per_class(names, _ratios(np.diag(both), both.sum(axis=0)))
    else:
        out['agreement'] = None
        out['agreement_per_class'] = _per_class(names, [None] * n)
    return out


def _quality_metrics(hist, names):
    """The pseudo_* keys of a label_histogram [gt][pseudo] summed over the round."""
    n = len(names)
    confusion = hist[:n, :n]  # kept pixels with valid gt
    right = np.diag(confusion)
    gt_pixels = hist[:n, :].sum(axis=1)  # valid-gt pixels per class, kept or not
    return {
        'pseudo_precision': _per_class(names, _ratios(right, confusion.sum(axis=0))),
        'pseudo_recall': _per_class(names, _ratios(right, gt_pixels)),
        'pseudo_kept_share': _per_class(names, _ratios(confusion.sum(axis=1), gt_pixels)),
        'pseudo_precision_total': _ratios([right.sum()], [confusion.sum()])[0],
        'pseudo_recall_total': _ratios([right.sum()], [gt_pixels.sum()])[0],
        'pseudo_kept_share_total': _ratios([confusion.sum()], [gt_pixels.sum()])[0],
        'pseudo_confusion': confusion.tolist(),
    }


QUALITY_COLUMNS = (  # (header, per-class key, "all" row key, format)
    ('threshold', 'cls_thresh', None, '%.4f'),
    ('selected', 'selected_share', 'selected_total', '%.3f'),
    ('mean confidence', 'mean_confidence', 'mean_confidence_total', '%.3f'),
    ('mean entropy (nats)', 'mean_entropy', 'mean_entropy_total', '%.3f'),
    ('agreement', 'agreement_per_class', 'agreement', '%.3f'),
    ('kept share', 'pseudo_kept_share', 'pseudo_kept_share_total', '%.3f'),
    ('precision', 'pseudo_precision', 'pseudo_precision_total', '%.3f'),
    ('recall', 'pseudo_recall', 'pseudo_recall_total', '%.3f'),
)


def _cell(fmt, value):
    return '-' if value is None else fmt % value


def quality_table(report, class_names):
    """pseudo_quality.md: a markdown table of a round's metrics.json `report`, one row per class
    and an "all" row; the last three columns only when the report has the pseudo_* keys. What
    each column means: the lines under the table."""
    columns = [c for c in QUALITY_COLUMNS if c[1] in report]
    lines = ['# Round %s: pseudo-label health' % report.get('round', '?'), '',
             '| class | %s |' % ' | '.join(c[0] for c in columns),
             '|---|' + '---:|' * len(columns)]
    for i, name in enumerate(class_names):
        values = [report[key][i] if key == 'cls_thresh' else report[key][name]
                  for _, key, _, _ in columns]
        lines.append('| %s | %s |' % (name, ' | '.join(
            _cell(c[3], v) for c, v in zip(columns, values))))
    lines.append('| all | %s |' % ' | '.join(
        _cell(c[3], report[c[2]]) if c[2] else '' for c in columns))
    lines += ['', QUALITY_NOTE if 'pseudo_precision' in report else QUALITY_NOTE_NO_GT]
    return '\n'.join(lines) + '\n'


QUALITY_NOTE_NO_GT = (
    'selected: share of all target pixels pseudo-labelled with the class; mean confidence: '
    'mean over them of the probability compared with the threshold; mean entropy: of the '
    'network\'s softmax (stride-8 maps) over pixels whose argmax is the class; agreement: share '
    'of the pixels pseudo-labelled in this and the previous round with the same class ("-": '
    'none, e.g. round 0).')
QUALITY_NOTE = QUALITY_NOTE_NO_GT + (
    ' Against the ground truth: kept share = share of the class\'s pixels given any '
    'pseudo-label; precision = share of its pseudo-labels that are right; recall = share of its '
    'pixels pseudo-labelled right.')
