"""Phase val cost outside the network, per 2048x1024 target image, and disk kept per image.

Runs the real per-round script (phase val, narrow model, test scale 2048, flipping, cb) on
generated full-size Cityscapes-layout images and reads the timings it records. Also prints the
disk that upstream kept between the two passes (full-resolution float32 maps) for comparison.
Targets (issue #3): at most 0.5 s non-network time per image, at most 3 MB kept per image.
"""
import json
import os
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


def main():
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
           '--test-scales', '2048', '--test-flipping', '--kc-policy', 'cb', '--no-progress']
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, '0', 'metrics.json')) as f:
        timing = json.load(f)['timing']
    upstream_bytes = 19 * 1024 * 2048 * 4
    print('images: %d of 2048x1024, test scale 2048 with flipping, kc-policy cb' % NUM_IMAGES)
    print('non-network time per image: %.3f s (target <= 0.5 s); network (narrow model): %.3f s'
          % (timing['other_s_per_image'], timing['network_s_per_image']))
    print('kept between passes per image: ours %.2f MB, upstream %.1f MB, ratio %.0fx smaller '
          '(target <= 3 MB)' % (timing['cache_bytes_per_image'] / 1e6, upstream_bytes / 1e6,
                                upstream_bytes / timing['cache_bytes_per_image']))


if __name__ == '__main__':
    main()
