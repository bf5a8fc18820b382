"""CRST's label regulariser LR-ENT: soft pseudo-labels and the pixels they label, plain NumPy
(yzou2/CRST crst_seg.py, label_selection; docs/algorithm.md section 3b, "LR-ENT labels").
"""
import math

import numpy as np

from issegm.cbst import _check_prob, _label_thresholds, argmax_max

__all__ = ['SCORE_EPS', 'check_alpha', 'soft_labels', 'lrent_label_maps']

# yzou2/CRST crst_seg.py, label_selection: np.log(pred_prob + 1e-32), np.log(soft + 1e-32),
# np.log(cls_thresh + 1e-32).
SCORE_EPS = 1e-32

# Rows per block: float64 temporaries of 19 x 8 x 2048 (2.5 MB) each.
_BLOCK_ROWS = 8


def check_alpha(alpha):
    """alpha (--lr-weight-ent) as a float; ValueError unless it is positive and finite."""
    value = float(alpha)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError('the LR-ENT weight alpha must be a positive number, got %r' % (alpha,))
    return value


class _Blocks:
    """The per-block quantities shared by soft_labels and lrent_label_maps, computed into
    buffers reused from block to block (fresh multi-MB temporaries cost page faults)."""

    def __init__(self, prob, cls_thresh, alpha):
        self.prob = _check_prob(prob).astype(np.float32, copy=False)
        self.alpha = check_alpha(alpha)
        self.inv_alpha = 1.0 / self.alpha  # the original's exponent 1.0 / lr_weight_ent
        num_classes, height, width = self.prob.shape
        self.thr = _label_thresholds(cls_thresh, num_classes)[:, None, None]  # float32
        self.log_thr = np.log(self.thr.astype(np.float64))
        self.step = max(1, min(height, _BLOCK_ROWS))
        shape = (num_classes, self.step, width)
        self._p = np.empty(shape, np.float32)
        self._q = np.empty(shape, np.float32)
        self._y = np.empty(shape, np.float64)
        self._top = np.empty(shape[1:], np.float64)
        self._sum = np.empty(shape[1:], np.float64)
        self._log_p = self._log_y = self._log_t = None  # kept()'s buffers, made on first use

    def rows(self):
        height = self.prob.shape[1]
        for r0 in range(0, height, self.step):
            yield r0, min(height, r0 + self.step)

    def block(self, r0, r1):
        """(p, q, y) for rows [r0, r1): p clipped float32, q = p / t float32, y float64.
        Views of the buffers: valid until the next call."""
        n = r1 - r0
        p, q, y = self._p[:, :n], self._q[:, :n], self._y[:, :n]
        top, total = self._top[:n], self._sum[:n]
        np.maximum(self.prob[:, r0:r1], np.float32(0), out=p)
        np.divide(p, self.thr, out=q)  # float32 / float32, as the original's pred_prob / cls_thresh
        with np.errstate(divide='ignore'):
            np.log(q, out=y, dtype=np.float64)  # z = log q, -inf where p == 0
        y *= self.inv_alpha
        np.max(y, axis=0, out=top)
        dead = np.isneginf(top)
        if dead.any():  # every p is 0: the limit of equal p, y_k ~ t_k^(-1/alpha)
            y[:, dead] = -self.log_thr[:, 0] * self.inv_alpha
            top[dead] = y[:, dead].max(axis=0)
        y -= top
        np.exp(y, out=y)
        np.sum(y, axis=0, out=total)
        y /= total
        return p, q, y

    def kept(self, p, y):
        """The selection of yzou2/CRST crst_seg.py, label_selection, for one block's p and y:
        reg < sel, both float64 (see lrent_label_maps)."""
        n = p.shape[1]
        if self._log_p is None:
            self._log_p = np.empty(self._y.shape, np.float64)
            self._log_y = np.empty(self._y.shape, np.float64)
            self._log_t = np.log(self.thr.astype(np.float64) + SCORE_EPS)
        log_p, term = self._log_p[:, :n], self._log_y[:, :n]
        np.add(p, SCORE_EPS, out=log_p, dtype=np.float64)
        np.log(log_p, out=log_p)
        np.add(y, SCORE_EPS, out=term)
        np.log(term, out=term)
        term *= self.alpha
        term -= log_p
        term *= y
        reg = term.sum(axis=0)  # sum_k(-y_k log(p_k + eps) + alpha y_k log(y_k + eps))
        np.multiply(y, self._log_t, out=term)
        sel = term.sum(axis=0)
        np.negative(sel, out=sel)  # sum_k(-y_k log(t_k + eps))
        return reg < sel


def soft_labels(prob, cls_thresh, alpha, out=None):
    """LR-ENT soft pseudo-labels (C, H, W) float32 of a (C, H, W) probability map.

    y_k = (p_k / t_k)^(1/alpha) / sum_j (p_j / t_j)^(1/alpha) (yzou2/CRST crst_seg.py,
    label_selection), in log space; docs/algorithm.md section 3b says what t is, why p is
    clipped and what an all-zero pixel gets. Each pixel's y sums to 1. `out`: a float32
    (C, H, W) array to fill.
    """
    blocks = _Blocks(prob, cls_thresh, alpha)
    shape = blocks.prob.shape
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError('out must be a float32 array of shape %s, got %s %s'
                         % (shape, out.dtype, out.shape))
    for r0, r1 in blocks.rows():
        out[:, r0:r1] = blocks.block(r0, r1)[2]
    return out


def lrent_label_maps(prob, cls_thresh, alpha):
    """Return ``(pseudo, rw, kept)`` for LR-ENT: pseudo and rw uint8 (H, W), kept int64 (C,).

    rw = argmax_k p_k / t_k (float32 quotient, first index on ties), the class of the soft
    label; pseudo = rw where the pixel is kept, else 255, with the selection rule of yzou2/CRST
    crst_seg.py, label_selection:

        reg = sum_k(-y_k log(p_k + 1e-32) + alpha y_k log(y_k + 1e-32))
        sel = sum_k(-y_k log(t_k + 1e-32))
        kept where reg < sel (the original sets 255 where reg >= sel)

    evaluated in float64 from the float32 p (clipped at 0), t and y of :func:`soft_labels`
    (before its float32 rounding). kept[k] = number of kept pixels of class k (for the share of
    pseudo-labelled pixels per class in metrics.json).
    """
    blocks = _Blocks(prob, cls_thresh, alpha)
    num_classes, height, width = blocks.prob.shape
    if num_classes > 255:
        raise ValueError('uint8 label maps need at most 255 classes, got %d' % num_classes)
    rw = np.empty((height, width), np.uint8)
    pseudo = np.empty((height, width), np.uint8)
    kept = np.zeros(num_classes, np.int64)
    for r0, r1 in blocks.rows():
        p, q, y = blocks.block(r0, r1)
        cls = argmax_max(q)[0]
        rw[r0:r1] = cls
        cls[~blocks.kept(p, y)] = 255
        pseudo[r0:r1] = cls
        kept += np.bincount(cls.ravel(), minlength=256)[:num_classes]
    return pseudo, rw, kept
