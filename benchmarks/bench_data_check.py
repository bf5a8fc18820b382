"""The up-front data check's cost beside one round's phase val, on Cityscapes-sized images.

What runs before round 0 / the first epoch is `issegm.datacheck.lists.quick_check`: the header of
every listed image and label (size, channels, bit depth, PNG end marker) and the values of 20
labels spread over the list. It is measured on a list of 3,000 lines of 2048x1024 PNG pairs:
--distinct real pairs (default 100) written once and listed over and over, so that every line's
two files are opened and their headers read (from the page cache: files just written; a cold
network disk adds a seek per file). Beside it: one round's phase val per image, measured by
running the per-round script's phase val on --val-images images with the narrow model
(cityscapes_rna-tiny_cls19_s8, test scale 2048, flipping, cb) on this CPU, as
bench_phase_val.py does. The ResNet-38 of a real run does far more work per image than the
narrow model, and a round also trains, so the printed share of a round is an upper bound.
Target: under 1% of a round. Also printed: the --full check (every file decoded) per image.

    python benchmarks/bench_data_check.py [--lines 3000] [--distinct 100] [--val-images 2]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from conftest import write_model_weights  # noqa: E402
from issegm.datacheck.lists import LABEL_SAMPLE, full_check, quick_check  # noqa: E402
from issegm.datasets import get_dataset, write_list, write_png  # noqa: E402

TARGET_SHARE = 0.01
H, W = 1024, 2048


def street_pair(rng):
    """A blocky label map of Cityscapes label ids and an image coloured by it, with a gradient
    (files of about a hundred kB, quick to write; the check reads headers, not pixels)."""
    ids = np.array([7, 8, 11, 17, 21, 23, 24, 26], np.uint8)
    label = np.kron(rng.choice(ids, (H // 64, W // 64)), np.ones((64, 64), np.uint8))
    colours = get_dataset('cityscapes').palette[label].astype(np.int16)
    ramp = np.linspace(-20, 20, W, dtype=np.float32).astype(np.int16)[None, :, None]
    return np.clip(colours + ramp, 0, 255).astype(np.uint8), label


def write_pairs(root, count, seed=0):
    rng = np.random.RandomState(seed)
    rows = []
    for i in range(count):
        image, label = street_pair(rng)
        rows.append(('leftImg8bit/val/b/b_000000_%06d_leftImg8bit.png' % i,
                     'gtFine/val/b/b_000000_%06d_gtFine_labelIds.png' % i))
        write_png(os.path.join(root, rows[-1][0]), image)
        write_png(os.path.join(root, rows[-1][1]), label)
    return rows


def best_of(runs, fn):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def phase_val_seconds_per_image(tmp, rows):
    """Wall seconds per image of the per-round script's phase val (network + the rest)."""
    lst = os.path.join(tmp, 'val_small.lst')
    write_list(lst, rows)
    weights = write_model_weights(os.path.join(tmp, 'gta_rna-tiny_cls19_s8_ep-0000.params'),
                                  'gta_rna-tiny_cls19_s8')
    out = os.path.join(tmp, 'out')
    cmd = [sys.executable, os.path.join(ROOT, 'issegm', 'self-paced-self-trained-segresnet.py'),
           '--phase', 'val', '--dataset-tgt', 'cityscapes', '--data-root-tgt', tmp,
           '--split-tgt', lst, '--output', out, '--model', 'cityscapes_rna-tiny_cls19_s8',
           '--weights', weights, '--gpus', 'cpu', '--test-scales', '2048', '--test-flipping',
           '--kc-policy', 'cb', '--no-progress']
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, '0', 'metrics.json')) as f:
        timing = json.load(f)['timing']
    return timing['network_s_per_image'] + timing['other_s_per_image']


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lines', type=int, default=3000, help='lines of the checked list')
    parser.add_argument('--distinct', type=int, default=100, help='distinct pairs written')
    parser.add_argument('--val-images', type=int, default=2, help='images of the phase val run')
    parser.add_argument('--repeat', type=int, default=3, help='check runs (the best counts)')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench_check_')
    try:
        t0 = time.time()
        rows = write_pairs(tmp, args.distinct)
        print('wrote %d distinct 2048x1024 PNG pairs in %.0f s (%.0f kB per image)' % (
            len(rows), time.time() - t0,
            np.mean([os.path.getsize(os.path.join(tmp, i)) for i, _ in rows]) / 1e3))
        listed = [(os.path.join(tmp, i), os.path.join(tmp, l))
                  for k in range(args.lines) for i, l in [rows[k % len(rows)]]]
        quick_s, problems = best_of(args.repeat, lambda: quick_check(listed, 'cityscapes'))
        assert problems == [], problems[:3]
        headers_s, _ = best_of(args.repeat, lambda: quick_check(listed, 'cityscapes', sample=1))
        full_n = min(20, len(rows))
        full_s, _ = best_of(1, lambda: full_check(listed[:full_n], 'cityscapes', workers=1))
        val_s = phase_val_seconds_per_image(tmp, rows[:args.val_images])
    finally:
        shutil.rmtree(tmp)
    per_1000 = quick_s * 1000 / args.lines
    round_val = val_s * args.lines
    print('quick check of %d lines (%d headers, %d labels decoded): %.2f s (best of %d), '
          '%.2f s per 1,000 images; headers alone %.2f s per 1,000'
          % (args.lines, 2 * args.lines, LABEL_SAMPLE, quick_s, args.repeat, per_1000,
             headers_s * 1000 / args.lines))
    print('full check (every file decoded, one process): %.3f s per image, %.0f s per 1,000'
          % (full_s / full_n, full_s / full_n * 1000))
    print('phase val per image (narrow model, CPU, scale 2048, flipping): %.2f s; for %d '
          'images %.0f s' % (val_s, args.lines, round_val))
    share = quick_s / round_val
    print('quick check / one round\'s phase val: %.4f%% (target under %.0f%% of a round: '
          '%.3fx the target)' % (100 * share, 100 * TARGET_SHARE, share / TARGET_SHARE))


if __name__ == '__main__':
    main()
