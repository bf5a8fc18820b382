"""Class-balanced self-training's core (paper section 3.2; yzou2/CBST solve_ST.py _val_impl and
data.py parse_split_file; docs/algorithm.md sections 2 and 3), plain NumPy without files:
ConfidencePool (per-class confidences -> thresholds, policies 'cb' and 'global'),
mining_classes, pseudo_label_maps and select_source_subset. Oddities of yzou2/CBST solve_ST.py
kept on purpose are marked QUIRK (docs/upstream-quirks.md).
"""
import math

import numpy as np

from util.numpy1_sort import argsort_as_numpy1

__all__ = ['POLICIES', 'ConfidencePool', 'argmax_max', 'mining_classes', 'pseudo_label_maps',
           'select_source_subset']

POLICIES = ('cb', 'global')

# Rows per block in argmax_max: the per-block temporaries stay in cache (8 rows of a
# 2048-wide map are 16K pixels); measured fastest among 8..128 rows on 19x1024x2048 maps.
_BLOCK_ROWS = 8

# yzou2/CBST solve_ST.py _val_impl, confidence collection: keep every 4th pixel of each class
# (indices 0, 4, 8, ... within the class).
_SAMPLE_STEP = 4


def _check_prob(prob, num_classes=None):
    prob = np.asarray(prob)
    if prob.ndim != 3:
        raise ValueError('expected a probability map of shape (C, H, W), got shape %s'
                         % (prob.shape,))
    if num_classes is not None and prob.shape[0] != num_classes:
        raise ValueError('probability map has %d classes, expected %d'
                         % (prob.shape[0], num_classes))
    if not np.issubdtype(prob.dtype, np.floating):
        raise TypeError('probability map must be floating point, got %s' % prob.dtype)
    return prob


def argmax_max(prob):
    """Return ``(argmax, max)`` over axis 0 of a (C, H, W) map: uint8 (H, W) and (H, W).

    Same result as ``prob.argmax(0).astype(np.uint8), prob.max(0)`` (first index on ties, and
    also on NaN), about 3x faster: the max is a plain reduction, and the argmax is the lowest
    class whose value equals it, found in row blocks small enough to stay in cache.
    Needs C <= 256.
    """
    prob = _check_prob(prob)
    num_classes, height, width = prob.shape
    if not 1 <= num_classes <= 256:
        raise ValueError('argmax_max needs 1..256 classes, got %d' % num_classes)
    cls = np.empty((height, width), np.uint8)
    top = np.empty((height, width), prob.dtype)
    rows = max(1, min(height, _BLOCK_ROWS))
    buf = np.empty((rows, width), bool)
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        pb, cb, mb, bb = prob[:, r0:r1], cls[r0:r1], top[r0:r1], buf[:r1 - r0]
        np.max(pb, axis=0, out=mb)
        cb.fill(num_classes - 1)
        # Walk classes downwards so the lowest equal class wins, like np.argmax.
        for k in range(num_classes - 2, -1, -1):
            np.equal(pb[k], mb, out=bb)
            cb[bb] = k
    nan = np.isnan(top)
    if nan.any():  # np.argmax reports the first NaN; equality never matches NaN.
        cls[nan] = np.argmax(prob[:, nan], axis=0)
    return cls, top


class ConfidencePool:
    """Per-class pools of sampled prediction confidences, and the thresholds they give.

    ``policy`` is ``'cb'`` (class-balanced: one threshold per class) or ``'global'`` (one
    threshold shared by all classes, i.e. plain self-training).

    Memory: 4 bytes per sampled confidence (float32 chunks, one per image and class) plus list
    overhead; :meth:`thresholds` merges the chunks of one pool at a time in place, so its peak
    is the pool size plus a little (cb), never two copies of everything.
    """

    def __init__(self, num_classes, policy):
        if policy not in POLICIES:
            raise ValueError('unknown threshold policy %r (expected one of %s)'
                             % (policy, ', '.join(repr(p) for p in POLICIES)))
        num_classes = int(num_classes)
        if not 1 <= num_classes <= 255:
            # 255 is the "unlabeled" train id of the uint8 label maps.
            raise ValueError('num_classes must be in 1..255, got %d' % num_classes)
        self.num_classes = num_classes
        self.policy = policy
        self.num_images = 0
        self._counts = np.zeros(num_classes, np.int64)
        # 'cb': one chunk list per class. 'global': the per-class split is never needed (only
        # the counts), so all chunks share one list.
        n_lists = num_classes if policy == 'cb' else 1
        self._chunks = [[] for _ in range(n_lists)]

    @property
    def num_samples(self):
        """Number of sampled confidences per class (int64 array of length C, a copy)."""
        return self._counts.copy()

    def add(self, prob):
        """Sample the confidences of one image (docs/algorithm.md section 2, step 5).

        ``prob`` is the (C, H, W) class-probability map, after the spatial prior if used. It is
        handled as float32 (cast if given another float type; the pipeline's maps are float32).
        With c = argmax over classes and m = max: for each class k, the pixels with c == k are
        taken in row-major order and every 4th of them (indices 0, 4, 8, ...) contributes its
        m to pool k. The count restarts for every image.
        """
        prob = _check_prob(prob, self.num_classes).astype(np.float32, copy=False)
        self.add_argmax_max(*argmax_max(prob))

    def add_argmax_max(self, cls, top):
        """`add` for a map whose ``argmax_max`` the caller already has (phase val needs the
        argmax anyway for its label PNGs, so it is computed once per image)."""
        cls = np.asarray(cls, np.uint8).ravel()
        top = np.asarray(top, np.float32)
        top = top.ravel()
        # A stable sort of the uint8 class map (a radix sort in NumPy, linear time) groups the
        # pixels by class and keeps them in row-major order inside each class; every 4th
        # position of a group is then exactly "indices 0, 4, 8, ... within that class".
        # Measured ~2x faster than one `np.flatnonzero(cls == k)[::4]` per class.
        order = np.argsort(cls, kind='stable')
        counts = np.bincount(cls, minlength=self.num_classes)
        start = 0
        for k in range(self.num_classes):
            stop = start + int(counts[k])
            if stop > start:
                vals = top[order[start:stop:_SAMPLE_STEP]]  # fresh float32 array, no view
                self._chunks[k if self.policy == 'cb' else 0].append(vals)
                self._counts[k] += vals.size
            start = stop
        self.num_images += 1

    @staticmethod
    def _merge(chunks):
        """Concatenate a chunk list into one float32 array, in place, freeing chunks as it goes.

        The list is left holding the single merged array, so the peak is the pool plus one
        chunk instead of two copies of the pool.
        """
        if len(chunks) == 1:
            return chunks[0]
        total = sum(c.size for c in chunks)
        out = np.empty(total, np.float32)
        pos = 0
        for i in range(len(chunks)):
            chunk, chunks[i] = chunks[i], None
            out[pos:pos + chunk.size] = chunk
            pos += chunk.size
            del chunk
        chunks[:] = [out]
        return out

    @staticmethod
    def _kth_largest_with_zeros(values, num_zeros, t):
        """The t-th largest (1-based) element of ``values`` plus ``num_zeros`` extra 0.0s.

        Selection (``ndarray.partition``, linear time), in place: it reorders ``values``, which
        is harmless since a pool is a multiset. Returns a float64 (exact float32 value or 0.0).
        """
        n_vals = values.size
        if n_vals and values.min() < 0:
            # Not reachable with probabilities; kept exact for any input by materialising the
            # zeros (costs a copy, only on this path).
            full = np.concatenate([values, np.zeros(num_zeros, np.float32)])
            full.partition(full.size - t)
            return float(full[full.size - t])
        # All values >= 0: the zeros sort last (ties with value 0 give the same value).
        if t > n_vals:
            return 0.0
        kth = n_vals - t  # ascending index of the t-th largest
        values.partition(kth)
        return float(values[kth])

    def thresholds(self, portion):
        """Return ``(cls_thresh, cls_size)``, float64 arrays of length C, for ``portion``.

        ``'cb'``: for each class with at least one sample, n = samples + 1 (QUIRK: the original
        started every class pool with a 0.0 element, which counts in n and in the ranking),
        t = floor(n * portion); threshold = the t-th largest (1-based) of the pool including
        that zero if t > 0, else 0; cls_size = n. Classes never predicted: size 0, threshold 0.

        ``'global'``: one pool of all samples plus (C + 1) extra zeros (QUIRK: the zeros of the
        original's per-class pools and of its global pool); n = its length; every class gets
        the threshold of rank floor(n * portion) (0 if that is 0) and cls_size = n.

        Thresholds are the exact float32 sample values (as float64) or 0.0. The product
        n * portion is formed in float64, as in the original. Can be called several times and
        between calls to :meth:`add`.
        """
        portion = float(portion)
        if not 0.0 <= portion <= 1.0:
            raise ValueError('portion must be in [0, 1], got %r' % portion)
        cls_thresh = np.zeros(self.num_classes, np.float64)
        cls_size = np.zeros(self.num_classes, np.float64)
        if self.policy == 'cb':
            for k in range(self.num_classes):
                if self._counts[k] == 0:
                    continue  # never predicted: size 0, threshold 0
                values = self._merge(self._chunks[k])
                n = values.size + 1
                t = int(math.floor(n * portion))
                cls_size[k] = n
                if t > 0:
                    cls_thresh[k] = self._kth_largest_with_zeros(values, 1, t)
        else:
            chunks = self._chunks[0]
            values = self._merge(chunks) if chunks else np.zeros(0, np.float32)
            num_zeros = self.num_classes + 1
            n = values.size + num_zeros
            t = int(math.floor(n * portion))
            cls_size[:] = n
            if t > 0:
                cls_thresh[:] = self._kth_largest_with_zeros(values, num_zeros, t)
        return cls_thresh, cls_size


def mining_classes(cls_size, mine_id_number, mine_thresh):
    """Return ``(mine_id, mine_id_priority)`` (int64 arrays) for small-class patch mining.

    ratio = cls_size / sum(cls_size) in float64 (all 0 when the sum is 0, without a warning);
    ``mine_id_priority`` = classes with ratio < mine_thresh; ``mine_id`` = the first
    ``mine_id_number`` entries of ``np.argsort(ratio)`` as NumPy 1.x orders them.

    QUIRK kept on purpose: yzou2/CBST issegm/solve_ST.py, _val_impl ("chosen mine_id") takes
    ``np.argsort(cls_size / np.sum(cls_size))`` with NumPy's default sort kind (on NumPy
    1.14.6), so ties are broken as NumPy 1.x's introsort breaks them: under 'global' every
    ratio ties and the first three are classes 0, 16, 15 of 19; under 'cb' unpredicted classes
    tie at 0. NumPy >= 1.25 (AVX-512) and 2.x break these ties otherwise, hence the
    restatement util.numpy1_sort.argsort_as_numpy1 instead of np.argsort (same order as
    NumPy 1.23.5, the pinned one). Not a stable sort either: it would not match the original.
    """
    cls_size = np.asarray(cls_size, dtype=np.float64)
    total = cls_size.sum()
    if total == 0:
        ratio = np.zeros_like(cls_size)
    else:
        ratio = cls_size / total
    mine_id_priority = np.nonzero(ratio < mine_thresh)[0].astype(np.int64)
    mine_id = argsort_as_numpy1(ratio)[:int(mine_id_number)]
    return mine_id, mine_id_priority


def _label_thresholds(cls_thresh, num_classes):
    """The thresholds the map is divided by: 0 -> 1.0, then float32.

    yzou2/CBST issegm/solve_ST.py, _val_impl (pseudo-label assignment): each float32 class map
    is divided by one element of the float64 ``cls_thresh`` array, a NumPy float64 SCALAR. Under
    NumPy 1.x value-based casting a float32 array divided by a float64 scalar runs the float32
    loop: the scalar is rounded to float32 and the quotient is a float32 division. Dividing by
    the float32-rounded thresholds here gives the same bits (thresholds from
    ConfidencePool.thresholds are float32 values anyway, so the rounding is exact for them).
    """
    thr = np.array(cls_thresh, dtype=np.float64).ravel()
    if thr.size != num_classes:
        raise ValueError('%d thresholds for a %d-class map' % (thr.size, num_classes))
    if num_classes > 255:
        raise ValueError('uint8 label maps need at most 255 classes, got %d' % num_classes)
    # QUIRK kept (solve_ST.py _val_impl): a threshold of 0 ("never selected by its own rank")
    # becomes 1.0, and the division runs in float32 (the docstring above).
    thr[thr == 0] = 1.0
    return thr.astype(np.float32)


def pseudo_label_maps(prob, cls_thresh):
    """Return ``(pseudo, rw)``, both uint8 (H, W), for a (C, H, W) probability map.

    Thresholds equal to 0 become 1.0; q_k = p_k / threshold_k in float32 (QUIRK kept, as
    yzou2/CBST solve_ST.py _val_impl: see :func:`_label_thresholds`); ``rw`` = argmax_k q_k (the unthresholded "reweighted" label,
    'rwlabelIds'); ``pseudo`` = rw where max_k q_k >= 1 (compared in float32), else 255.
    Works in row blocks, so the full q map is never held in memory.
    """
    prob = _check_prob(prob).astype(np.float32, copy=False)
    num_classes, height, width = prob.shape
    thr = _label_thresholds(cls_thresh, num_classes)[:, None, None]
    rw = np.empty((height, width), np.uint8)
    pseudo = np.empty((height, width), np.uint8)
    rows = max(1, min(height, 16))  # q is computed one block of rows at a time
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        q = prob[:, r0:r1] / thr  # float32 / float32
        cls, top = argmax_max(q)
        rw[r0:r1] = cls
        cls[~(top >= 1)] = 255
        pseudo[r0:r1] = cls
    return pseudo, rw


def select_source_subset(num_source, num_selected, seed):
    """Indices of the source samples used in a round (yzou2/CBST data.py parse_split_file), an
    int64 array.

    Same numbers as the original ``np.random.seed(seed); np.random.choice(num_source,
    num_selected, replace=False)`` (legacy Mersenne-Twister generator) but from a local
    ``RandomState``, so NumPy's global random state is left alone. The legacy choice without
    replacement is a prefix of a seeded permutation, so with a fixed seed a larger
    ``num_selected`` gives a superset, in the same order ("cumulative" policy).
    """
    return np.random.RandomState(seed).choice(int(num_source), int(num_selected),
                                              replace=False)
