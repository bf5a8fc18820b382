"""How much of a training crop is image: the port, the restated original, the old centred rule.

For each dataset setting, C = 504 (crop 500 rounded up to the stride 8), scale rates 0.7..1.3
and uniform windows (no mining: a mined window always lies inside the image), draws many crops
and prints side by side the mean share of the crop area that shows the image and the share of
crops that contain any padding, for

* port: issegm.sampling.plan_crop (the rule of yzou2/CBST issegm/data.py for self-training,
  issegm/data_src.py for train_src), one RandomState per crop;
* original: the same rule restated here from the original code (float bounds passed to
  randint as the original does), with RandomStates of the same seeds -- the two must agree
  exactly, it checks the port;
* old centred: the previous port's rule (commit cc12cc2, issegm/sampling.py): the image centred
  on a canvas of side max(window, h, w) + 2 and the window anywhere on it.

    python benchmarks/bench_crop_stats.py [--draws 20000]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from issegm import sampling  # noqa: E402
from issegm.sampling import SELF_TRAINING, SOURCE_ONLY  # noqa: E402

C = sampling.crop_side(500, 8)
STRIDE = 8
RATES = (0.7, 1.3)
# (name, image (h, w), origin size, max shape, rule)
SETTINGS = [
    ('Cityscapes, self-training target', (1024, 2048), 2048, (1024, 2048), SELF_TRAINING),
    ('Cityscapes, train_src', (1024, 2048), 2048, (1024, 2048), SOURCE_ONLY),
    ('GTA-5, self-training source', (1052, 1914), 2048, (1024, 2048), SELF_TRAINING),
    ('GTA-5, train_src', (1052, 1914), 1914, (1052, 1914), SOURCE_ONLY),
    ('SYNTHIA, self-training source', (760, 1280), 1280, (760, 1280), SELF_TRAINING),
    ('SYNTHIA, train_src', (760, 1280), 1280, (760, 1280), SOURCE_ONLY),
]


def image_share(top, left, side, hw):
    """Share of a side x side window at (top, left) (image coordinates) inside the image."""
    h, w = hw
    rows = max(0, min(top + side, h) - max(top, 0))
    cols = max(0, min(left + side, w) - max(left, 0))
    return rows * cols / float(side * side)


def port_window(seed, hw, origin, max_shape, rule):
    label = np.broadcast_to(np.uint8(0), hw)  # read for its shape only (no mining)
    plan = sampling.plan_crop(np.random.RandomState(seed), label,
                              sampling.CropSettings(C, STRIDE, RATES), origin, max_shape, rule)
    return plan.top, plan.left, plan.side


def original_window(seed, hw, origin, max_shape, rule):
    """yzou2/CBST FileIter._read (issegm/data.py or data_src.py), restated, no mining."""
    rng = np.random.RandomState(seed)
    h, w = hw
    low, high = [int(r * origin) for r in RATES]
    target = rng.randint(low, high + 1)
    rate = 1. * target / (max(h, w) if rule == SOURCE_ONLY else max(max_shape))
    side = int(C / rate)
    ls = STRIDE / rate
    d0 = max(1, int(ls // 2))
    if rule == SELF_TRAINING:
        rng.rand(1)  # the mining coin, drawn for every sample (mine_port 0 here)
    sy = rng.randint(0, max(1, ls, d0 + h - side + 1), 1)[0]
    sx = rng.randint(0, max(1, ls, d0 + w - side + 1), 1)[0]
    rng.randint(2)  # flip
    return sy - d0, sx - d0, side


def old_centred_window(seed, hw, origin, max_shape, rule):
    """The previous port (cc12cc2 issegm/sampling.py plan_crop), no mining: rate against the
    dataset max shape for both trainings, image centred on a canvas of side
    max(window, h, w) + 2, window uniform over the canvas."""
    rng = np.random.RandomState(seed)
    h, w = hw
    low, high = int(RATES[0] * origin), int(RATES[1] * origin)
    target = rng.randint(low, high + 1)
    side = int(C / (target / float(max(max_shape))))
    size = max(side, h, w) + 2
    canvas_top, canvas_left = (size - h) // 2, (size - w) // 2
    top = rng.randint(0, size - side + 1)
    left = rng.randint(0, size - side + 1)
    return top - canvas_top, left - canvas_left, side


def stats(windows, hw):
    shares = np.array([image_share(t, l, s, hw) for t, l, s in windows])
    return shares.mean(), (shares < 1.0).mean()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--draws', type=int, default=20000, help='crops per setting and rule')
    args = parser.parse_args(argv)
    rules = [('port', port_window), ('original', original_window),
             ('old centred', old_centred_window)]
    print('C = %d, scale rates %.1f..%.1f, %d uniform windows per setting (no mining)'
          % (C, RATES[0], RATES[1], args.draws))
    print('%-34s %-12s %10s %12s %12s' % ('setting', 'rule', 'window', 'image share',
                                          'any padding'))
    all_equal = True
    for name, hw, origin, max_shape, rule in SETTINGS:
        windows = {key: [fn(seed, hw, origin, max_shape, rule) for seed in range(args.draws)]
                   for key, fn in rules}
        same = windows['port'] == windows['original']
        all_equal &= same
        for key, _ in rules:
            sides = [s for _, _, s in windows[key]]
            share, padded = stats(windows[key], hw)
            print('%-34s %-12s %4d..%-5d %11.3f%% %11.3f%%'
                  % (name if key == 'port' else '', key, min(sides), max(sides), 100 * share,
                     100 * padded))
        print('%-34s port and original windows identical: %s' % ('', 'yes' if same else 'NO'))
    if not all_equal:
        raise SystemExit('the port and the restated original disagree')


if __name__ == '__main__':
    main()
