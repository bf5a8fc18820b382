"""A round's health (docs/internals.md section 11), plain NumPy without files: per-image counts of
the pseudo-labels against the ground truth and the previous round's, confidence and entropy
sums (image_health), summed over images (RoundHealth) into metrics.json's keys
(health_metrics), and the pseudo_quality.md table (quality_table).
"""
import collections

import numpy as np

from issegm.cbst import _label_thresholds, argmax_max

__all__ = ['ImageHealth', 'RoundHealth', 'label_histogram', 'confidence_sums', 'entropy_sums',
           'image_health', 'health_metrics', 'quality_table']

# Rows per block (of a 2048-wide map): bincount's int64 / float64 copies of a block stay in cache.
_BLOCK_ROWS = 64
# confidence_sums adds pixel x of a row into lane x % _LANES of its class: neighbours, mostly of
# one class, then add into different sums, which the CPU can do at once (measured 1.5x faster).
_LANES = 8


class ImageHealth(collections.namedtuple('ImageHealth', 'kept confidence quality agreement')):
    """One image's counts: kept pixels per class, their sum of max_k p_k / t_k, the
    label_histogram [gt][pseudo] and [previous round][pseudo] (None without them)."""


def label_histogram(pseudo, num_classes, label_to_train, label_maps):
    """int64 pixel counts [train id of label_maps[0]] ... [train id of label_maps[-1]][pseudo
    class], every axis C + 1 long (index C: no class, 255): the label maps (one or two) are label
    ids (uint8) mapped by `label_to_train`, `pseudo` train ids (uint8, 255 = not kept). One
    bincount of the maps' values combined (of label ids, folded into train ids afterwards)."""
    pseudo = np.asarray(pseudo, np.uint8)
    maps = [np.asarray(m, np.uint8) for m in label_maps]
    if not maps or any(m.shape != pseudo.shape for m in maps):
        raise ValueError('label maps %s and pseudo-labels %s differ in size'
                         % ([m.shape for m in maps], pseudo.shape))
    sizes = [int(m.max()) + 1 for m in maps] + [num_classes + 1]
    total = int(np.prod(sizes))
    counts = np.zeros(total, np.int64)
    for r0 in range(0, pseudo.shape[0], _BLOCK_ROWS):
        block = slice(r0, r0 + _BLOCK_ROWS)
        index = maps[0][block].astype(np.uint16 if total <= 1 << 16 else np.uint32)
        for m, size in zip(maps[1:], sizes[1:]):
            index *= size
            index += m[block]
        index *= sizes[-1]
        index += np.minimum(pseudo[block], num_classes)  # 255 (not kept) -> C
        counts += np.bincount(index.ravel(), minlength=total)
    counts = counts.reshape(sizes)
    codes = np.asarray(label_to_train)
    codes = np.where(codes < num_classes, codes, num_classes)
    for axis, size in enumerate(sizes[:-1]):
        counts = _fold(counts, axis, codes[:size], num_classes + 1)
    return counts


def _fold(counts, axis, codes, length):
    """Sum the entries of `counts` along `axis` into `length` bins: entry i into bin codes[i]
    (a product with the one-hot matrix of `codes`)."""
    onehot = np.zeros((len(codes), length), np.int64)
    onehot[np.arange(len(codes)), codes] = 1
    return np.moveaxis(np.tensordot(onehot, np.moveaxis(counts, axis, 0), axes=(0, 0)), 0, axis)


def confidence_sums(pseudo, top, num_classes):
    """float64 (C,): per class c, the sum of `top` (max_k p_k / t_k, float32 (H, W)) over the
    pixels `pseudo` labels c; in row blocks, each class summed in _LANES lanes."""
    pseudo, top = np.asarray(pseudo, np.uint8), np.asarray(top, np.float32)
    if pseudo.shape != top.shape or pseudo.ndim != 2:
        raise ValueError('pseudo-labels %s and confidences %s must be (H, W) maps of one size'
                         % (pseudo.shape, top.shape))
    lane = (np.arange(pseudo.shape[1]) % _LANES).astype(np.uint16)
    sums = np.zeros(256 * _LANES, np.float64)
    for r0 in range(0, pseudo.shape[0], _BLOCK_ROWS):
        block = slice(r0, r0 + _BLOCK_ROWS)
        index = pseudo[block].astype(np.uint16)
        index *= _LANES
        index += lane
        sums += np.bincount(index.ravel(), weights=top[block].ravel(), minlength=sums.size)
    return sums.reshape(256, _LANES).sum(axis=1)[:num_classes]


def entropy_sums(probs):
    """(entropy summed per argmax class, pixels per argmax class) of a (C, h, w) softmax map:
    float64 (C,) of -sum_k p_k log p_k (nats; 0 log 0 = 0) and int64 (C,)."""
    probs = np.asarray(probs, np.float32)
    num_classes = probs.shape[0]
    logs = np.log(np.maximum(probs, np.finfo(np.float32).tiny))
    logs *= probs
    entropy = -logs.sum(axis=0)  # float32 per pixel; summed over pixels in float64 below
    cls = argmax_max(probs.reshape(num_classes, 1, -1))[0].ravel()  # one block: faster
    return (np.bincount(cls, weights=entropy.ravel(), minlength=num_classes)[:num_classes],
            np.bincount(cls, minlength=num_classes)[:num_classes].astype(np.int64))


def image_health(pseudo, top, label_to_train, num_classes, gt=None, previous=None):
    """The ImageHealth of one image: `pseudo` (train ids, 255 = not kept), `top` (max_k p_k / t_k
    of pass 2), the ground truth and the previous round's pseudo-labels as label ids (or None).
    Its `kept` is np.bincount(pseudo)[:C], taken from the label histogram when there is one
    (one bincount less)."""
    quality = agreement = None
    if gt is not None or previous is not None:
        joint = label_histogram(pseudo, num_classes, label_to_train,
                                [m for m in (gt, previous) if m is not None])
        both = gt is not None and previous is not None  # joint is [gt][previous][pseudo]
        quality = None if gt is None else joint.sum(axis=1) if both else joint
        agreement = None if previous is None else joint.sum(axis=0) if both else joint
        kept = joint.reshape(-1, num_classes + 1).sum(axis=0)[:num_classes]
    else:
        kept = np.bincount(np.ravel(pseudo), minlength=256)[:num_classes].astype(np.int64)
    return ImageHealth(kept, confidence_sums(pseudo, top, num_classes), quality, agreement)


class RoundHealth:
    """ImageHealth and entropy_sums summed over the images of a round, in the order they are
    added (the float sums, hence metrics.json, do not depend on thread timing). `has_gt`: every
    image has ground truth; previous_images: the images with a previous round's pseudo-labels."""

    def __init__(self, num_classes, has_gt):
        self.num_classes, self.has_gt = int(num_classes), bool(has_gt)
        self.num_images = self.previous_images = 0
        self.total = ImageHealth(
            np.zeros(num_classes, np.int64), np.zeros(num_classes),
            np.zeros((num_classes + 1,) * 2, np.int64) if has_gt else None,
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


def health_metrics(health, class_names, cls_thresh):
    """metrics.json's health keys of a RoundHealth (keys and meanings: docs/internals.md section
    11). Mean confidence of class c = t_c x the mean of max_k p_k / t_k, t the thresholds pass 2
    divided by (cls_thresh, 0 -> 1, float32): the p_c that was compared with t_c."""
    names, total, n = list(class_names), health.total, health.num_classes
    out = {}
    if health.has_gt:
        out.update(_quality_metrics(total.quality, names))
    scaled = total.confidence * _label_thresholds(cls_thresh, n).astype(np.float64)
    out['mean_confidence'] = _per_class(names, _ratios(scaled, total.kept))
    out['mean_confidence_total'] = _ratios([scaled.sum()], [total.kept.sum()])[0]
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
