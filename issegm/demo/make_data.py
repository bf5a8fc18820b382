"""Deterministic synthetic street scenes for the CBST demo (a tiny GTA-5 -> Cityscapes stand-in):
generate(root, seed=0, ...) writes a source domain in the GTA-5 layout and a target domain in
the Cityscapes layout, with list files; `python -m issegm.demo.make_data --output DIR`
(docs/demo.md, "The data").
"""
import argparse
import os
import sys
import time

import cv2
import numpy as np

from issegm.demo.scenes import render_scene
from issegm.demo.styles import ID, SOURCE_STYLE, TARGET_STYLE, blend_styles

__all__ = ['generate', 'generate_source_val', 'blend_styles', 'render_scene', 'SOURCE_STYLE', 'TARGET_STYLE', 'ID',
           'TRAIN_CITIES', 'VAL_CITIES', 'main']

TRAIN_CITIES = ('dummstadt', 'fakeburg')
VAL_CITIES = ('mockingen',)

DEFAULTS = dict(num_source=200, num_target_train=100, num_target_val=50,
                source_size=(160, 288), target_size=(128, 256))

_STREAM = {'source': 1, 'target_train': 2, 'target_val': 3, 'source_val': 4}


def _rng(seed, stream, index):
    """The random stream of image `index` (from 1) of `stream` ('source', 'target_train',
    'target_val', 'source_val')."""
    return np.random.RandomState([int(seed), _STREAM[stream], int(index)])


def _write(path, rgb, lab):
    """Write the RGB image and the label map to the two paths of `path` (folders made)."""
    for p, a in ((path[0], cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), (path[1], lab)):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if not cv2.imwrite(p, a):
            raise IOError('cannot write %s' % p)


def generate(root, seed=0, num_source=DEFAULTS['num_source'],
             num_target_train=DEFAULTS['num_target_train'],
             num_target_val=DEFAULTS['num_target_val'], source_size=DEFAULTS['source_size'],
             target_size=DEFAULTS['target_size'], shift=1.0):
    """Write the source (GTA-5 layout) and target (Cityscapes layout) demo data under ``root``.

    `shift` sets how far the target's style is from the source's: 1 (default) is the target
    style (styles.TARGET_STYLE), 0 the source style, values between blend the two.

    Returns a dict of the paths written: ``root``, ``gta_root``, ``cityscapes_root``,
    ``gta_train_list``, ``cityscapes_train_list``, ``cityscapes_val_list``.
    Image ``N`` of each split depends only on (seed, split, N), not on the counts.
    """
    if seed < 0:
        raise ValueError('seed must be >= 0')
    if not 0.0 <= shift <= 1.0:
        raise ValueError('shift must be in [0, 1], got %r' % shift)
    target_style = TARGET_STYLE if shift == 1.0 else \
        blend_styles(SOURCE_STYLE, TARGET_STYLE, shift)
    root = os.path.abspath(root)
    gta, cs = os.path.join(root, 'gta'), os.path.join(root, 'cityscapes')
    out = dict(root=root, gta_root=gta, cityscapes_root=cs,
               gta_train_list=os.path.join(gta, 'train.lst'),
               cityscapes_train_list=os.path.join(cs, 'train.lst'),
               cityscapes_val_list=os.path.join(cs, 'val.lst'))

    _write_split(gta, out['gta_train_list'], SOURCE_STYLE, seed, 'source', source_size,
                 [('images/%05d.png' % i, 'labels/%05d.png' % i) for i in range(1, num_source + 1)])
    for split, n, cities in (('train', num_target_train, TRAIN_CITIES),
                             ('val', num_target_val, VAL_CITIES)):
        _write_split(cs, out['cityscapes_%s_list' % split], target_style, seed, 'target_' + split,
                     target_size, [_cityscapes_paths(split, cities, i) for i in range(1, n + 1)])
    return out


def generate_source_val(root, seed=0, count=50, size=DEFAULTS['source_size']):
    """Write `count` held-out source images (``gta/images/val_00001.png``, ..., their own random
    stream) and the list ``gta/val.lst`` under ``root``: what the source-only model learnt is
    measured on them. Returns the list's path."""
    gta = os.path.join(os.path.abspath(root), 'gta')
    path = os.path.join(gta, 'val.lst')
    _write_split(gta, path, SOURCE_STYLE, seed, 'source_val', size,
                 [('images/val_%05d.png' % i, 'labels/val_%05d.png' % i)
                  for i in range(1, count + 1)])
    return path


def _cityscapes_paths(split, cities, index):
    """(image, label) paths of target sample `index` (from 1), relative to the dataset root;
    the cities take turns."""
    city = cities[(index - 1) % len(cities)]
    name = '%s_000000_%06d' % (city, index)
    return ('leftImg8bit/%s/%s/%s_leftImg8bit.png' % (split, city, name),
            'gtFine/%s/%s/%s_gtFine_labelIds.png' % (split, city, name))


def _write_split(dataset_root, list_path, style, seed, stream, size, samples):
    """Render sample i = 1, 2, ... of `stream`, write it to the (image, label) paths
    samples[i - 1] (relative to dataset_root), then write the list file."""
    lines = []
    for i, rel in enumerate(samples, 1):
        rgb, lab = render_scene(style, _rng(seed, stream, i), tuple(size))
        _write([os.path.join(dataset_root, r) for r in rel], rgb, lab)
        lines.append('%s\t%s\n' % rel)
    _write_list(list_path, lines)


def _write_list(path, lines):
    """Write the list file's lines with Unix line ends (folders made)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', newline='\n') as f:
        f.writelines(lines)


def _size(text):
    """argparse type of --source-size/--target-size: 'HxW' -> (H, W), both at least 32."""
    try:
        h, w = text.lower().split('x')
        size = (int(h), int(w))
    except ValueError:
        raise argparse.ArgumentTypeError('expected HxW, e.g. 160x288, got %r' % text)
    if min(size) < 32:
        raise argparse.ArgumentTypeError('image size must be at least 32x32')
    return size


def main(argv=None):
    """The command line: flags as docs/demo.md shows them; prints what it wrote."""
    ap = argparse.ArgumentParser(description='Write the synthetic GTA-5 -> Cityscapes demo data.')
    ap.add_argument('--output', required=True, help='root folder (gta/ and cityscapes/ inside)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--shift', type=float, default=1.0,
                    help='target style: 1 = documented target, 0 = source style, between: blend')
    ap.add_argument('--num-source', type=int, default=DEFAULTS['num_source'])
    ap.add_argument('--num-source-val', type=int, default=0,
                    help='held-out source images (gta/val.lst; default none)')
    ap.add_argument('--num-target-train', type=int, default=DEFAULTS['num_target_train'])
    ap.add_argument('--num-target-val', type=int, default=DEFAULTS['num_target_val'])
    ap.add_argument('--source-size', type=_size, default=DEFAULTS['source_size'],
                    help='HxW (default 160x288)')
    ap.add_argument('--target-size', type=_size, default=DEFAULTS['target_size'],
                    help='HxW (default 128x256)')
    args = ap.parse_args(argv)
    if args.seed < 0 or min(args.num_source, args.num_source_val, args.num_target_train,
                            args.num_target_val) < 0:
        ap.error('seed and counts must be >= 0')
    if not 0.0 <= args.shift <= 1.0:
        ap.error('--shift must be in [0, 1], got %r' % args.shift)
    t0 = time.time()
    out = generate(args.output, seed=args.seed, shift=args.shift, num_source=args.num_source,
                   num_target_train=args.num_target_train, num_target_val=args.num_target_val,
                   source_size=args.source_size, target_size=args.target_size)
    if args.num_source_val:
        out['gta_val_list'] = generate_source_val(args.output, args.seed, args.num_source_val,
                                                  args.source_size)
    print('wrote %d source + %d/%d target images under %s in %.1f s' % (
        args.num_source, args.num_target_train, args.num_target_val, out['root'],
        time.time() - t0))
    for k in ('gta_train_list', 'gta_val_list', 'cityscapes_train_list', 'cityscapes_val_list'):
        if k in out:
            print('  %s' % out[k])
    return 0


if __name__ == '__main__':
    sys.exit(main())
