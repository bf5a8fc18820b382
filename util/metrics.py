"""Segmentation metrics (yzou2/CBST solve_ST.py ScoreUpdater; docs/algorithm.md section 5):
confusion matrix, accuracies, IoU, tables. Plain NumPy, no files. Labels are train ids; rows of
the confusion matrix are ground truth; `miss_column=True` keeps the official Cityscapes
evaluator's misses (docs/algorithm.md section 5).
"""
import numpy as np

__all__ = ['confusion_matrix', 'ConfusionMeter', 'scores', 'subset_miou', 'image_iou',
           'row_normalised', 'metrics_dict', 'format_table']


def _check_labels(gt, pred):
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError('ground truth and prediction shapes differ: %s vs %s'
                         % (gt.shape, pred.shape))
    for name, a in (('ground truth', gt), ('prediction', pred)):
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError('%s must hold integer labels, got dtype %s' % (name, a.dtype))
    return gt.ravel(), pred.ravel()


def _in_range(a, n):
    """Boolean mask of the entries of the integer array `a` lying in [0, n)."""
    if np.issubdtype(a.dtype, np.unsignedinteger):
        return a < n
    return (a >= 0) & (a < n)


def confusion_matrix(gt, pred, num_classes, miss_column=False):
    """Confusion matrix of integer train-id maps `gt` and `pred` (same shape, any ndim).

    Returns an int64 array of shape ``(num_classes, num_classes)`` -- or
    ``(num_classes, num_classes + 1)`` with `miss_column` -- where entry
    ``[i, j]`` counts the pixels with ground truth ``i`` predicted as ``j``.
    Pixels whose ground truth is outside ``[0, num_classes)`` are ignored; see
    docs/algorithm.md section 5 for predictions outside the classes.
    """
    n = int(num_classes)
    if n < 1:
        raise ValueError('num_classes must be positive, got %r' % (num_classes,))
    g, p = _check_labels(gt, pred)
    width = n + 1 if miss_column else n
    dump = n * width                   # one extra bin collects the ignored pixels
    itype = np.int16 if dump < 2 ** 15 else np.int64
    # flat bin index width*gt + pred, in a small integer type (bincount is the
    # cost that matters; masking/compressing the arrays first would double it)
    idx = g.astype(itype)
    idx *= width
    np.add(idx, p, out=idx, casting='unsafe')
    valid_g = _in_range(g, n)
    valid_p = _in_range(p, n)
    if not valid_p.all():
        bad = valid_g & ~valid_p
        if bad.any():
            if not miss_column:
                vals = np.unique(p[bad])
                raise ValueError(
                    '%d valid pixels are predicted outside [0, %d) (values %s); pass '
                    'miss_column=True to count them as misses like the official Cityscapes '
                    'evaluation' % (int(bad.sum()), n, ', '.join(str(v) for v in vals[:10])))
            idx[bad] = g[bad].astype(itype) * width + n
    if not valid_g.all():
        idx[~valid_g] = dump
    counts = np.bincount(idx, minlength=dump + 1)[:dump]
    return counts.reshape(n, width).astype(np.int64, copy=False)


class ConfusionMeter:
    """Accumulates a confusion matrix over images: ``update(gt, pred)`` per image or batch."""

    def __init__(self, num_classes, miss_column=False):
        self.num_classes = int(num_classes)
        self.miss_column = bool(miss_column)
        self.reset()

    def reset(self):
        width = self.num_classes + (1 if self.miss_column else 0)
        self._matrix = np.zeros((self.num_classes, width), np.int64)

    def update(self, gt, pred):
        return self.add(confusion_matrix(gt, pred, self.num_classes, self.miss_column))

    def add(self, matrix):
        """Add a confusion matrix of the meter's shape (e.g. one image's, kept by the caller)."""
        self._matrix += matrix
        return self

    @property
    def matrix(self):
        """The accumulated int64 confusion matrix (a copy)."""
        return self._matrix.copy()

    def scores(self):
        return scores(self._matrix)


def _split(conf):
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[1] not in (conf.shape[0], conf.shape[0] + 1):
        raise ValueError('confusion matrix must be (n, n) or (n, n+1), got shape %s'
                         % (conf.shape,))
    conf = conf.astype(np.int64, copy=False)
    n = conf.shape[0]
    tp = np.diag(conf[:, :n])
    gt = conf.sum(axis=1)            # all valid pixels of the class, misses included
    pred = conf[:, :n].sum(axis=0)   # predictions of the class on valid pixels
    return n, tp, gt, pred


def _ratio(num, den):
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.zeros(np.broadcast(num, den).shape, np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def scores(conf):
    """Scores of a confusion matrix (rows = ground truth), as ScoreUpdater.scores.

    Returns a dict of

    * ``pixel_acc``: trace / total valid pixels (0.0 for an empty matrix);
    * ``mean_acc``: mean over all classes of TP / GT pixels, where a class
      without ground truth counts one pixel (so it contributes 0);
    * ``class_acc``: that per-class accuracy as an array;
    * ``iou``: per-class TP / (GT + Pred - TP), 0 where the denominator is 0;
    * ``miou``: mean of ``iou`` over all classes of the dataset (19 or 16);
    * ``present``: boolean mask of the classes with ground-truth pixels.
    """
    n, tp, gt, pred = _split(conf)
    total = gt.sum()
    class_acc = tp / np.maximum(gt, 1).astype(np.float64)
    iou = _ratio(tp, gt + pred - tp)
    return {
        'pixel_acc': float(tp.sum() / total) if total else 0.0,
        'mean_acc': float(class_acc.mean()),
        'class_acc': class_acc,
        'iou': iou,
        'miou': float(iou.mean()),
        'present': gt > 0,
    }


def subset_miou(iou, class_names, excluded):
    """Mean of the per-class `iou` over the classes not named in `excluded` (names of
    `class_names`, which name the entries of `iou`); an undefined IoU counts 0, as in scores()."""
    names = list(class_names)
    unknown = [name for name in excluded if name not in names]
    if unknown or len(names) != len(iou):
        raise ValueError('cannot leave out %s of the %d classes %s' % (list(excluded), len(iou),
                                                                       names))
    keep = [k for k, name in enumerate(names) if name not in excluded]
    return float(np.asarray(iou, np.float64)[keep].mean())


def image_iou(conf):
    """IoU per class of one image's confusion matrix, NaN for a class neither in its ground
    truth nor predicted on its pixels with ground truth; and their mean over the classes that
    are (its mIoU; NaN when none is). Returns (iou array, miou)."""
    _, tp, gt, pred = _split(conf)
    union = gt + pred - tp
    iou = np.full(len(tp), np.nan)
    np.divide(tp, union, out=iou, where=union > 0)
    return iou, float(iou[union > 0].mean()) if (union > 0).any() else float('nan')


def row_normalised(conf):
    """The (n, n) confusion matrix with each row divided by its sum (the share of the ground
    truth class's pixels given each prediction); NaN rows for classes without ground truth."""
    n, _, gt, _ = _split(conf)
    out = np.full((n, n), np.nan)
    np.divide(np.asarray(conf, np.float64)[:, :n], gt[:, None], out=out, where=gt[:, None] > 0)
    return out


def metrics_dict(conf, class_names):
    """JSON-ready ``{"iou": {name: ..}, "miou": .., "pixel_acc": .., "mean_acc": ..}``
    (fractions)."""
    s = scores(conf)
    names = list(class_names)
    if len(names) != len(s['iou']):
        raise ValueError('%d class names for a %d-class confusion matrix'
                         % (len(names), len(s['iou'])))
    return {
        'iou': {name: float(v) for name, v in zip(names, s['iou'])},
        'miou': s['miou'],
        'pixel_acc': s['pixel_acc'],
        'mean_acc': s['mean_acc'],
    }


def format_table(rows, class_names, case_header='case', extra_columns=()):
    """Paper-style markdown table: one column per class, then mIoU, values in percent (1 decimal).

    `rows` is a sequence of ``(case name, per-class IoU array, mIoU)`` with IoU as
    fractions in [0, 1]; a mIoU of None is computed as the mean of the row's IoU.
    `extra_columns`: (header, one fraction per row) pairs, columns after mIoU.
    """
    names = list(class_names)
    extra = [header for header, _ in extra_columns]
    lines = ['| %s | %s |' % (case_header, ' | '.join(names + ['mIoU'] + extra)),
             '|' + '---|' * (len(names) + 2 + len(extra))]
    for r, (case, iou, miou) in enumerate(rows):
        iou = np.asarray(iou, np.float64).ravel()
        if iou.size != len(names):
            raise ValueError('row %r has %d IoU values for %d classes'
                             % (case, iou.size, len(names)))
        if miou is None:
            miou = iou.mean()
        cells = ['%.1f' % (100.0 * float(v)) for v in
                 list(iou) + [miou] + [values[r] for _, values in extra_columns]]
        lines.append('| %s | %s |' % (case, ' | '.join(cells)))
    return '\n'.join(lines) + '\n'
