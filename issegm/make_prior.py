"""Build the spatial prior of a source dataset: `spatial_prior/DATASET/prior_array.mat`.

How: docs/algorithm.md, section 2b; the command: the README, "Data, list files, weights and
priors". issegm/prior.py reads a prior back.
"""
import os
import sys
import time

if __package__ in (None, ''):  # run by path without installation: the repo root holds `util`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
from tqdm import tqdm  # noqa: E402

from issegm.datasets import get_dataset, load_samples, read_label, write_png  # noqa: E402
from issegm.figures import class_share_figure, prior_figure, save_figure  # noqa: E402
from issegm.prior import PRIOR_KEY  # noqa: E402
from util.errors import UserError, cli_entry  # noqa: E402
from util.flags import FlagParser  # noqa: E402
from util.image import resize_label  # noqa: E402
from util.logs import setup_logging  # noqa: E402

__all__ = ['parse_size', 'gaussian_params', 'PriorCounter', 'smooth_and_normalise',
           'write_prior', 'prior_png_name', 'class_share', 'write_figures', 'main']

DEFAULT_SIZE = (1024, 2048)
DEFAULT_WINDOW = 70
PRIOR_FIGURE, CLASS_SHARE_FIGURE = 'prior.png', 'class_share.png'  # --figures, beside the .mat


def parse_size(text):
    """'1024x2048' -> (1024, 2048); anything else is a UserError."""
    try:
        h, w = (int(v) for v in str(text).lower().split('x'))
    except ValueError:
        raise UserError('bad --size %r: expected HxW, e.g. 1024x2048' % (text,))
    if h <= 0 or w <= 0:
        raise UserError('bad --size %r: both sides must be positive' % (text,))
    return h, w


def gaussian_params(window):
    """(odd kernel side, sigma) of the smoothing for a window, or None for no smoothing."""
    window = float(window)
    if window < 2:
        return None
    ksize = int(np.ceil(window))
    if ksize % 2 == 0:
        ksize += 1
    return ksize, window / 6.0


class PriorCounter:
    """Per-pixel class counts of train-id maps resized to `size_hw`.

    Counting touches only the classes present in a map (one comparison + add per present
    class) and adds into uint16 accumulators, flushed into the int64 totals every 65535 maps:
    about 20 ms per 1024x2048 map with 19 classes present.
    """

    _FLUSH_EVERY = 65535  # uint16 cannot overflow before this many maps

    def __init__(self, num_classes, size_hw):
        self.num_classes = int(num_classes)
        self.size_hw = tuple(int(v) for v in size_hw)
        self._total = np.zeros((self.num_classes,) + self.size_hw, np.int64)
        self._acc = np.zeros((self.num_classes,) + self.size_hw, np.uint16)
        self._mask = np.empty(self.size_hw, bool)
        self._pending = 0
        self.images = 0

    def add(self, train_ids):
        """Count one train-id map (any size; resized to the prior's size with nearest)."""
        train_ids = np.asarray(train_ids)
        if train_ids.ndim != 2:
            raise ValueError('expected an (H, W) train-id map, got shape %s'
                             % (train_ids.shape,))
        if train_ids.shape != self.size_hw:
            train_ids = resize_label(train_ids, self.size_hw)
        present = np.bincount(train_ids.ravel(), minlength=256)[:self.num_classes]
        mask = self._mask
        for k in np.flatnonzero(present):
            np.equal(train_ids, k, out=mask)
            self._acc[k] += mask.view(np.uint8)
        self.images += 1
        self._pending += 1
        if self._pending == self._FLUSH_EVERY:
            self._flush()

    def _flush(self):
        self._total += self._acc
        self._acc.fill(0)
        self._pending = 0

    @property
    def counts(self):
        """The int64 (C, H, W) counts so far."""
        return self._total + self._acc


def smooth_and_normalise(counts, window):
    """Gaussian-smoothed counts, normalised per pixel over the classes: float32 (C, H, W)."""
    prior = np.array(counts, np.float32)
    params = gaussian_params(window)
    if params is not None:
        ksize, sigma = params
        for k in range(prior.shape[0]):
            prior[k] = cv2.GaussianBlur(prior[k], (ksize, ksize), sigmaX=sigma, sigmaY=sigma,
                                        borderType=cv2.BORDER_REFLECT_101)
    np.maximum(prior, 0, out=prior)  # the blur of non-negative counts may round to -0/-eps
    total = prior.sum(axis=0)
    empty = total <= 0
    np.divide(prior, np.where(empty, 1, total)[None], out=prior)
    prior[:, empty] = 1.0 / prior.shape[0]
    return prior


def prior_png_name(class_name):
    return 'prior_%s.png' % class_name.replace(' ', '_').replace('/', '_')


def write_prior(path, prior, class_names):
    """Save `prior_array` to `path` (.mat, written atomically) and one PNG per class beside it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, '.%s.tmp.mat' % os.path.basename(path))
    try:
        scipy.io.savemat(tmp, {PRIOR_KEY: np.ascontiguousarray(prior, np.float32)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    pngs = []
    for k, name in enumerate(class_names):
        top = float(prior[k].max())
        grey = np.zeros(prior.shape[1:], np.uint8) if top <= 0 else \
            np.clip(np.rint(prior[k] * (255.0 / top)), 0, 255).astype(np.uint8)
        png = os.path.join(folder, prior_png_name(name))
        write_png(png, grey)
        pngs.append(png)
    return pngs


def class_share(counts, class_names):
    """{class name: its share of the counted (labelled) pixels} of (C, H, W) counts."""
    per_class = np.asarray(counts, np.int64).reshape(len(class_names), -1).sum(axis=1)
    total = max(int(per_class.sum()), 1)
    return {name: float(per_class[k]) / total for k, name in enumerate(class_names)}


def write_figures(folder, prior, counts, info, title):
    """--figures: FOLDER/prior.png (the prior, one panel per class) and FOLDER/class_share.png
    (the share of the labelled pixels per class, counted at the prior's size); their paths."""
    share = class_share(counts, info.class_names)
    return [save_figure(prior_figure(prior, info, 'spatial prior of ' + title),
                        os.path.join(folder, PRIOR_FIGURE)),
            save_figure(class_share_figure(info, share, 'class share of ' + title),
                        os.path.join(folder, CLASS_SHARE_FIGURE))]


def parse_args(argv):
    parser = FlagParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', required=True, help='root of the source dataset')
    parser.add_argument('--dataset', default='gta', help='gta, synthia, cityscapes, cityscapes16')
    parser.add_argument('--split', default='train', help='split name or path to a .lst file')
    parser.add_argument('--size', default='%dx%d' % DEFAULT_SIZE,
                        help='HxW of the target images (default 1024x2048)')
    parser.add_argument('--window', type=float, default=DEFAULT_WINDOW,
                        help='Gaussian smoothing window in pixels (kernel side rounded up to odd, '
                             'sigma = window / 6; below 2: no smoothing; default 70)')
    parser.add_argument('--output', default=None,
                        help='default spatial_prior/DATASET/prior_array.mat')
    parser.add_argument('--log-file', default=None)
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--figures', action='store_true',
                        help='also draw %s (the prior, one panel per class) and %s (the share '
                             'of the labelled pixels per class, counted at --size) beside '
                             '--output' % (PRIOR_FIGURE, CLASS_SHARE_FIGURE))
    return parser.parse_args(argv)


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    log = setup_logging(args.log_file)
    info = get_dataset(args.dataset)
    size_hw = parse_size(args.size)
    if args.window < 0:
        raise UserError('--window must be >= 0, got %g' % args.window)
    output = args.output or os.path.join('spatial_prior', args.dataset, 'prior_array.mat')
    samples = load_samples(args.data_root, args.split, args.dataset)
    counter = PriorCounter(len(info.class_names), size_hw)
    t0 = time.time()
    for _, label_path in tqdm(samples, desc='prior', unit='label', dynamic_ncols=True,
                              disable=args.no_progress):
        counter.add(info.label_to_train[read_label(label_path)])
    t1 = time.time()
    prior = smooth_and_normalise(counter.counts, args.window)
    pngs = write_prior(output, prior, info.class_names)
    if args.figures:
        pngs += write_figures(os.path.dirname(os.path.abspath(output)), prior, counter.counts,
                              info, '%s %s (%d label maps, %dx%d)' % (
                                  args.dataset, os.path.basename(args.split), counter.images,
                                  size_hw[0], size_hw[1]))
    log.info('spatial prior of %d %s label maps (%s), %dx%d, window %g: %s (+ %d PNGs); '
             'counting %.1f s, smoothing and writing %.1f s', counter.images, args.dataset,
             args.split, size_hw[0], size_hw[1], args.window, output, len(pngs), t1 - t0,
             time.time() - t1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
