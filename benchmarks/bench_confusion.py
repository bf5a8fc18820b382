"""Confusion matrix on one 2048x1024 Cityscapes-sized map: bincount vs upstream-style sets.

The upstream-style reference keeps, per class, Python sets of flat pixel
indices (ground truth == k, prediction == k) and gets every number from set
intersections and lengths: the full 19x19 confusion matrix from one
intersection per (gt class, predicted class) pair, and TP / GT / Pred per class.
Both must give identical numbers; the script prints both times and the speed-up.

    python benchmarks/bench_confusion.py [--repeat 5] [--seed 0]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from util.metrics import confusion_matrix, scores  # noqa: E402

NUM_CLASSES = 19
HEIGHT, WIDTH = 1024, 2048
TARGET_SPEEDUP = 100.0


def structured_maps(seed):
    """Ground truth of blocky regions (+5% ignore 255) and a prediction that mostly follows it."""
    rng = np.random.RandomState(seed)

    def blocks(block, p=None):
        small = rng.choice(NUM_CLASSES, (HEIGHT // block + 1, WIDTH // block + 1), p=p)
        return np.kron(small, np.ones((block, block), np.int64))[:HEIGHT, :WIDTH].astype(np.uint8)

    freq = rng.dirichlet(np.full(NUM_CLASSES, 0.7))  # class imbalance, as in street scenes
    gt = blocks(32, freq)
    gt[blocks(64) < 1] = 255                          # ~5% ignored regions
    pred = gt.copy()
    confused = blocks(16) < 6                         # whole regions confused with other classes
    pred[confused] = blocks(8)[confused]
    noise = rng.rand(HEIGHT, WIDTH) < 0.05            # salt-and-pepper errors
    pred[noise] = rng.randint(0, NUM_CLASSES, int(noise.sum()))
    pred[pred == 255] = 0
    return gt, pred


def upstream_style(gt, pred, n):
    """Confusion matrix and per-class TP/GT/Pred from Python sets of flat pixel indices."""
    g = gt.ravel()
    p = pred.ravel()
    gt_sets = [set(np.flatnonzero(g == k).tolist()) for k in range(n)]
    pred_sets = [set(np.flatnonzero(p == k).tolist()) for k in range(n)]
    valid = set().union(*gt_sets)
    conf = np.zeros((n, n), np.int64)
    for i in range(n):
        for j in range(n):
            conf[i, j] = len(gt_sets[i] & pred_sets[j])
    tp = np.array([len(gt_sets[k] & pred_sets[k]) for k in range(n)], np.int64)
    gt_count = np.array([len(gt_sets[k]) for k in range(n)], np.int64)
    pred_count = np.array([len(pred_sets[k] & valid) for k in range(n)], np.int64)
    return conf, tp, gt_count, pred_count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeat', type=int, default=5, help='timed runs of the bincount version (best is kept)')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)

    gt, pred = structured_maps(a.seed)
    print('maps %dx%d, %d classes, %.1f%% ignored, %.1f%% correct'
          % (WIDTH, HEIGHT, NUM_CLASSES, 100.0 * np.mean(gt == 255),
             100.0 * np.mean(gt[gt != 255] == pred[gt != 255])))

    t0 = time.perf_counter()
    ref_conf, tp, gt_count, pred_count = upstream_style(gt, pred, NUM_CLASSES)
    t_ref = time.perf_counter() - t0

    confusion_matrix(gt, pred, NUM_CLASSES)  # warm-up
    t_ours = float('inf')
    for _ in range(max(1, a.repeat)):
        t0 = time.perf_counter()
        conf = confusion_matrix(gt, pred, NUM_CLASSES)
        t_ours = min(t_ours, time.perf_counter() - t0)

    assert np.array_equal(conf, ref_conf), 'confusion matrices differ'
    assert np.array_equal(np.diag(conf), tp)
    assert np.array_equal(conf.sum(axis=1), gt_count)
    assert np.array_equal(conf.sum(axis=0), pred_count)
    ref_iou = np.array([t / float(g + q - t) if g + q - t else 0.0
                        for t, g, q in zip(tp.tolist(), gt_count.tolist(), pred_count.tolist())])
    s = scores(conf)
    assert np.array_equal(s['iou'], ref_iou), 'IoU differs'
    print('identical confusion matrix and TP/GT/Pred; mIoU %.4f, pixel acc %.4f'
          % (s['miou'], s['pixel_acc']))

    speedup = t_ref / t_ours
    print('upstream-style sets : %9.1f ms' % (1000 * t_ref))
    print('bincount (ours)     : %9.1f ms (best of %d)' % (1000 * t_ours, max(1, a.repeat)))
    print('speed-up            : %9.0fx (target >= %.0fx)' % (speedup, TARGET_SPEEDUP))
    if speedup < TARGET_SPEEDUP:
        print('WARNING: speed-up below target')
    return 0


if __name__ == '__main__':
    sys.exit(main())
