"""Benchmark: class-balanced thresholds, ConfidencePool vs an upstream-style implementation.

32 deterministic probability maps of shape (19, 512, 1024), float32 (softmax of random logits
with blocky spatial structure and a class-frequency bias), generated one at a time.

(a) ours: issegm.cbst.ConfidencePool(19, 'cb'): add() per map, then thresholds(portion).
(b) upstream style, written here: per image per class pool_k = np.append(pool_k, values),
    starting from np.array([0.0]); at the end Python sorted(pool, reverse=True) per class and
    the same rank rule (n = len(pool), t = floor(n * portion), threshold = sorted[t - 1]).

Checks that both give identical thresholds and sizes, prints both times, the speed-up, and the
memory of (a) per sampled confidence measured with tracemalloc in a separate, untimed pass.
Run from the repository root: python benchmarks/bench_thresholds.py
"""
import math
import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from issegm.cbst import ConfidencePool  # noqa: E402

NUM_MAPS = 32
NUM_CLASSES = 19
HEIGHT, WIDTH = 512, 1024
CELL = 32            # size of the constant-logit blocks (spatial structure)
PORTION = 0.2        # the timed portion
CHECK_PORTIONS = (0.0, 0.001, 0.15, 0.5, 0.8, 1.0)  # also compared, untimed


def make_map(index):
    """Deterministic (C, H, W) float32 softmax map number `index`."""
    rng = np.random.default_rng(20180908 + index)
    coarse = rng.standard_normal((NUM_CLASSES, HEIGHT // CELL, WIDTH // CELL), np.float32) * 2.5
    logits = np.repeat(np.repeat(coarse, CELL, axis=1), CELL, axis=2)
    logits += rng.standard_normal(logits.shape, np.float32)
    # Imbalanced class frequencies, as in street scenes (class 0 common, the last ones rare).
    logits += np.linspace(1.5, -1.5, NUM_CLASSES, dtype=np.float32)[:, None, None]
    logits -= logits.max(axis=0, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0, keepdims=True)
    return logits


class UpstreamStylePools:
    """The original's way: float64 pools grown with np.append, full Python sorts."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.pools = {}

    def add(self, prob):
        pred = np.argmax(prob, axis=0)
        conf = np.max(prob, axis=0)
        for k in range(self.num_classes):
            vals = conf[pred == k][0::4]  # row-major order; indices 0, 4, 8, ...
            if vals.size == 0:
                continue
            pool = self.pools.get(k, np.array([0.0]))
            self.pools[k] = np.append(pool, vals)

    def sort(self):
        self.sorted = {k: sorted(pool, reverse=True) for k, pool in self.pools.items()}

    def thresholds(self, portion):
        cls_thresh = np.zeros(self.num_classes)
        cls_size = np.zeros(self.num_classes)
        for k, arr in self.sorted.items():
            n = len(arr)
            t = int(math.floor(n * portion))
            cls_size[k] = n
            if t > 0:
                cls_thresh[k] = arr[t - 1]
        return cls_thresh, cls_size


def timed_pass():
    ours = ConfidencePool(NUM_CLASSES, 'cb')
    upstream = UpstreamStylePools(NUM_CLASSES)
    t_ours_add = t_up_add = t_gen = 0.0
    for i in range(NUM_MAPS):
        t0 = time.perf_counter()
        prob = make_map(i)
        t1 = time.perf_counter()
        ours.add(prob)
        t2 = time.perf_counter()
        upstream.add(prob)
        t3 = time.perf_counter()
        t_gen += t1 - t0
        t_ours_add += t2 - t1
        t_up_add += t3 - t2
        del prob
    t0 = time.perf_counter()
    ours_result = ours.thresholds(PORTION)
    t1 = time.perf_counter()
    upstream.sort()
    up_result = upstream.thresholds(PORTION)
    t2 = time.perf_counter()
    for name, a, b in (('thresholds', ours_result[0], up_result[0]),
                       ('sizes', ours_result[1], up_result[1])):
        if not np.array_equal(a, b):
            raise AssertionError('%s differ at portion %r:\n%r\n%r' % (name, PORTION, a, b))
    for portion in CHECK_PORTIONS:
        a, b = ours.thresholds(portion), upstream.thresholds(portion)
        if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
            raise AssertionError('results differ at portion %r' % portion)
    return dict(gen=t_gen, ours_add=t_ours_add, ours_thr=t1 - t0, up_add=t_up_add,
                up_sort=t2 - t1, samples=int(ours.num_samples.sum()), thresh=ours_result[0])


def memory_pass():
    """Peak traced bytes attributable to ConfidencePool, over the whole add+thresholds run."""
    pool = ConfidencePool(NUM_CLASSES, 'cb')
    tracemalloc.start()
    held = 0            # bytes kept by the pool between calls
    peak_add = 0        # held + transient working memory, maximum over add() calls
    for i in range(NUM_MAPS):
        prob = make_map(i)
        cur0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        pool.add(prob)
        cur1, peak = tracemalloc.get_traced_memory()
        peak_add = max(peak_add, held + peak - cur0)
        held += cur1 - cur0
        del prob
    cur0 = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    pool.thresholds(PORTION)
    peak_thr = held + tracemalloc.get_traced_memory()[1] - cur0
    tracemalloc.stop()
    return dict(held=held, peak_add=peak_add, peak_thr=peak_thr,
                samples=int(pool.num_samples.sum()))


def main():
    t_start = time.perf_counter()
    print('maps: %d x (%d, %d, %d) float32, generated one at a time; policy cb, portion %g'
          % (NUM_MAPS, NUM_CLASSES, HEIGHT, WIDTH, PORTION))
    r = timed_pass()
    ours = r['ours_add'] + r['ours_thr']
    upstream = r['up_add'] + r['up_sort']
    print('sampled confidences: %d (all %d maps on both sides)' % (r['samples'], NUM_MAPS))
    print('thresholds identical (portion %g and %s): yes'
          % (PORTION, ', '.join('%g' % p for p in CHECK_PORTIONS)))
    print('ours      add+thresholds: %.2f s (add %.2f s, thresholds %.3f s)'
          % (ours, r['ours_add'], r['ours_thr']))
    print('upstream  add+thresholds: %.2f s (np.append %.2f s, sorted+index %.2f s)'
          % (upstream, r['up_add'], r['up_sort']))
    print('speed-up: %.1fx (target >= 3x)' % (upstream / ours))
    m = memory_pass()
    n = m['samples']
    print('ours memory, retained after all adds: %.2f bytes per sampled confidence'
          % (m['held'] / n))
    print('ours memory, peak during thresholds:  %.2f bytes per sampled confidence '
          '(target about 4 + small overhead)' % (m['peak_thr'] / n))
    print('ours memory, peak incl. per-image add buffers: %.2f bytes per sampled confidence '
          '(buffers are per image, not per sample)' % (max(m['peak_add'], m['peak_thr']) / n))
    print('(map generation %.1f s, not counted; total run %.1f s)'
          % (r['gen'], time.perf_counter() - t_start))


if __name__ == '__main__':
    main()
