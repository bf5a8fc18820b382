"""Phase val cost outside the network, per 2048x1024 target image, and disk kept per image.

Runs the real per-round script (phase val, narrow model, test scale 2048, flipping, cb) on
generated full-size Cityscapes-layout images and reads the timings it records (wall time of
the phase minus the time in the network). Also prints the disk that upstream kept between the
two passes (full-resolution float32 maps) for comparison.
Targets: at most 0.6 s non-network time per image (Pillow's bicubic x8 on the class maps, twice
per image: both passes), at most 3 MB kept per image.

    python benchmarks/bench_phase_val.py [--repeat 3] [--test-steps 1]

The machine has 2 cores: run it when nothing else runs; --repeat prints every run, the best
and the median.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from conftest import write_model_weights  # noqa: E402
from issegm.datasets import write_list, write_png  # noqa: E402

# Per-run costs (thresholds, moving the outputs in place) are shared by all images of a split
# (500 for Cityscapes val); 8 images keep them from dominating. BENCH_IMAGES=N to change.
NUM_IMAGES = int(os.environ.get('BENCH_IMAGES', 8))


def street_like(rng, h=1024, w=2048):
    """A blocky label map (like real scenes, not noise) and a matching noisy image."""
    ids = np.array([7, 8, 11, 21, 23, 26, 24, 17], np.uint8)
    coarse = rng.choice(ids, (h // 64, w // 64))
    label = np.kron(coarse, np.ones((64, 64), np.uint8))
    image = (rng.rand(h, w, 3) * 60 + label[:, :, None] * 5).astype(np.uint8)
    return image, label


TARGET_S = 0.6
TARGET_MB = 3.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=1, help='runs of phase val on the data')
    parser.add_argument('--test-steps', type=int, default=1)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench_val_')
    rng = np.random.RandomState(0)
    rows = []
    for i in range(NUM_IMAGES):
        image, label = street_like(rng)
        img = 'leftImg8bit/val/b/b_000000_%06d_leftImg8bit.png' % i
        lab = 'gtFine/val/b/b_000000_%06d_gtFine_labelIds.png' % i
        write_png(os.path.join(tmp, img), image)
        write_png(os.path.join(tmp, lab), label)
        rows.append((img, lab))
    write_list(os.path.join(tmp, 'val.lst'), rows)
    weights = write_model_weights(os.path.join(tmp, 'gta_rna-tiny_cls19_s8_ep-0000.params'),
                                  'gta_rna-tiny_cls19_s8')
    out = os.path.join(tmp, 'out')
    cmd = [sys.executable, os.path.join(ROOT, 'issegm', 'self-paced-self-trained-segresnet.py'),
           '--phase', 'val', '--dataset-tgt', 'cityscapes', '--data-root-tgt', tmp,
           '--split-tgt', os.path.join(tmp, 'val.lst'), '--output', out,
           '--model', 'cityscapes_rna-tiny_cls19_s8', '--weights', weights, '--gpus', 'cpu',
           '--test-scales', '2048', '--test-flipping', '--kc-policy', 'cb', '--no-progress',
           '--test-steps', str(args.test_steps)]
    print('images: %d of 2048x1024, test scale 2048 with flipping, test steps %d, kc-policy cb'
          % (NUM_IMAGES, args.test_steps))
    others = []
    for run in range(args.repeat):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(out, '0', 'metrics.json')) as f:
            timing = json.load(f)['timing']
        others.append(timing['other_s_per_image'])
        print('run %d: non-network %.3f s per image (target %.1f s: %.2fx the target); '
              'network (narrow model) %.3f s' % (run + 1, others[-1], TARGET_S,
                                                 others[-1] / TARGET_S,
                                                 timing['network_s_per_image']))
    if args.repeat > 1:
        print('non-network per image: best %.3f s, median %.3f s; target %.1f s'
              % (min(others), float(np.median(others)), TARGET_S))
    kept_mb = timing['cache_bytes_per_image'] / 1e6
    upstream_mb = 19 * 1024 * 2048 * 4 / 1e6
    print('kept between passes per image: ours %.2f MB, target %.1f MB, upstream %.1f MB '
          '(%.0fx ours)' % (kept_mb, TARGET_MB, upstream_mb, upstream_mb / kept_mb))
    shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
