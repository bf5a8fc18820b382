"""Training crops per second: our crop pipeline vs an upstream-style one, and the model step.

Writes a few Cityscapes-sized (2048x1024) RGB + label-id PNGs to a temporary directory and
times, one sample at a time in one thread (OpenCV limited to one thread; PIL is single-threaded
anyway), crop 504 at scale rates 0.7..1.3 of origin 2048:

(a) ours: issegm.data_iter.make_train_crop (read, plan, build only the crop window, Pillow
    resize of the window and its label, label grid, flip, normalise);
(b) upstream-style: the original's FileIter._read (yzou2/CBST issegm/data.py) written plainly:
    PIL open, the whole square float32 mean-coloured canvas and 255 label canvas with the image
    pasted at (d0, d0), window cast to uint8, PIL resize (get_interp_method rule) and PIL nearest
    label resize, label grid, flip, float normalisation. Both give the same crop (checked on
    two crops before timing).

Both include decoding the PNGs. The two are timed crop by crop, interleaved, and compared by
the CPU time of this process (wall-clock rates beside it), so other load on the machine skews
the ratio little. Also prints SegTrainIter with 2 prefetch threads, the decode
time alone, and the forward+backward+update time of the narrow `gta_rna-tiny_cls19_s8` model
for one batch of two 504 crops on the CPU, to see whether data loading limits a CPU run.

    python benchmarks/bench_iterator.py [--crops 16] [--images 4] [--no-model]
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from issegm import datasets  # noqa: E402
from issegm.data_iter import SegTrainIter, TrainSample, make_train_crop  # noqa: E402
from issegm.sampling import SELF_TRAINING, crop_side  # noqa: E402
from util.image import MEAN, STD  # noqa: E402

HEIGHT, WIDTH = 1024, 2048
CROP = crop_side(500, 8)
STRIDE = 8
ORIGIN = 2048
MAX_SHAPE = (1024, 2048)
RATES = (0.7, 1.3)
LABEL_IDS = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
                      0, 1, 4], np.uint8)


def street_like(rng):
    """A smooth RGB scene with region structure and mild noise, plus a blocky label map."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH].astype(np.float32)
    base = np.stack([yy / HEIGHT * 180, xx / WIDTH * 200, (yy + xx) / (HEIGHT + WIDTH) * 160], -1)
    small = rng.choice(len(LABEL_IDS), (HEIGHT // 64, WIDTH // 64))
    regions = cv2.resize(small.astype(np.uint8), (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    colours = rng.randint(0, 80, (len(LABEL_IDS), 3)).astype(np.float32)
    img = base + colours[regions] + rng.normal(0, 6, (HEIGHT, WIDTH, 3)).astype(np.float32)
    img = cv2.GaussianBlur(np.clip(img, 0, 255), (3, 3), 0).astype(np.uint8)
    return img, LABEL_IDS[regions]


def write_dataset(root, count, seed=0):
    rng = np.random.RandomState(seed)
    samples = []
    table = datasets.get_dataset('cityscapes').label_to_train
    for k in range(count):
        rgb, ids = street_like(rng)
        image = os.path.join(root, 'leftImg8bit', 'img%d_leftImg8bit.png' % k)
        label = os.path.join(root, 'gtFine', 'img%d_gtFine_labelIds.png' % k)
        os.makedirs(os.path.dirname(image), exist_ok=True)
        os.makedirs(os.path.dirname(label), exist_ok=True)
        cv2.imwrite(image, rgb[:, :, ::-1])
        cv2.imwrite(label, ids)
        samples.append(TrainSample(image, label, table, ORIGIN, MAX_SHAPE, SELF_TRAINING))
    return samples


def upstream_style_crop(sample, rng):
    """The original's per-sample work (FileIter._read, no mining), written plainly."""
    im = np.array(Image.open(sample.image).convert('RGB'))
    label_ids = np.array(Image.open(sample.label))
    h, w = im.shape[:2]
    low, high = int(RATES[0] * ORIGIN), int(RATES[1] * ORIGIN)
    max_crop = int(CROP / (1. * low / max(MAX_SHAPE)))
    target = rng.randint(low, high + 1)
    rate = 1. * target / max(MAX_SHAPE)
    side = int(CROP / rate)
    ls = STRIDE / rate
    d0 = max(1, int(ls // 2))
    d1 = max(0, int(ls - d0))
    n = max(max_crop, h, w) + d1 + d0
    canvas = np.zeros((n, n, 3), np.single)
    canvas += np.array(MEAN).reshape((1, 1, 3)) / (1.0 / 255)
    canvas[d0:d0 + h, d0:d0 + w] = im
    lcanvas = np.full((n, n), 255, np.uint8)
    lcanvas[d0:d0 + h, d0:d0 + w] = sample.label_to_train.astype(np.float64)[label_ids]
    rng.rand(1)  # the mining coin
    y = rng.randint(0, max(1, ls, d0 + h - side + 1), 1)[0]
    x = rng.randint(0, max(1, ls, d0 + w - side + 1), 1)[0]
    flip = rng.randint(2) == 0
    window = canvas[y:y + side, x:x + side].astype(np.uint8)
    lwindow = lcanvas[y:y + side, x:x + side]
    resample = (Image.LANCZOS if side > CROP else Image.BICUBIC if side < CROP
                else Image.BILINEAR)
    crop = np.array(Image.fromarray(window).resize((CROP, CROP), resample))
    lcrop = np.array(Image.fromarray(lwindow).resize((CROP, CROP), Image.NEAREST))
    lcrop = lcrop[STRIDE // 2::STRIDE, STRIDE // 2::STRIDE]
    if flip:
        crop, lcrop = crop[:, ::-1], lcrop[:, ::-1]
    data = crop.astype(np.float32) * np.float32(1.0 / 255)
    data = (data - np.array(MEAN).reshape((1, 1, 3))) / np.array(STD).reshape((1, 1, 3))
    return data.transpose(2, 0, 1).astype(np.float32), lcrop.astype(np.float32)


def crop_rates(pipelines, count):
    """Crops per second of each pipeline, measured crop by crop and interleaved.

    Returns {name: (rate by CPU time, rate by wall time)}. The single-threaded pipelines are
    compared by the CPU time of this process, which other load on the machine barely changes;
    wall-clock rates are printed beside it.
    """
    for fn in pipelines.values():
        fn(0)  # warm-up (file cache, lazy imports)
    cpu = dict.fromkeys(pipelines, 0.0)
    wall = dict.fromkeys(pipelines, 0.0)
    for k in range(1, count + 1):
        for name, fn in pipelines.items():
            c, w = time.process_time(), time.perf_counter()
            fn(k)
            cpu[name] += time.process_time() - c
            wall[name] += time.perf_counter() - w
    return {name: (count / cpu[name], count / wall[name]) for name in pipelines}


def model_step_seconds(batch=2, repeat=3):
    import mxnet as mx
    from util.symbol.resnet38 import build_symbol
    mod = mx.mod.Module(build_symbol('gta_rna-tiny_cls19_s8'), context=mx.cpu(),
                        data_names=['data'], label_names=['softmax_label'])
    mod.bind(data_shapes=[('data', (batch, 3, CROP, CROP))],
             label_shapes=[('softmax_label', (batch, CROP // 8, CROP // 8))])
    mod.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2))
    mod.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 1e-4,
                                                           'momentum': 0.9, 'wd': 5e-4})
    rng = np.random.RandomState(0)
    batch_data = mx.io.DataBatch(
        data=[mx.nd.array(rng.randn(batch, 3, CROP, CROP).astype(np.float32))],
        label=[mx.nd.array(rng.randint(0, 19, (batch, CROP // 8, CROP // 8)).astype(np.float32))])

    def step():
        mod.forward_backward(batch_data)
        mod.update()
        mx.nd.waitall()

    step()
    start = time.perf_counter()
    for _ in range(repeat):
        step()
    return (time.perf_counter() - start) / repeat


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--crops', type=int, default=16, help='crops timed per pipeline')
    parser.add_argument('--images', type=int, default=4, help='2048x1024 images to generate')
    parser.add_argument('--no-model', action='store_true', help='skip the model step timing')
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # compare single-threaded pipelines

    with tempfile.TemporaryDirectory(prefix='bench_iter_') as root:
        samples = write_dataset(root, args.images)
        n = len(samples)
        mb = sum(os.path.getsize(s.image) for s in samples) / n / 2 ** 20
        print('%d Cityscapes-sized PNGs (%.1f MB each), crop %d, scale rates %.1f..%.1f'
              % (n, mb, CROP, RATES[0], RATES[1]))

        for k in range(2):  # the same seed gives the same crop
            ours = make_train_crop(samples[k % n], k, CROP, scale_rate_range=RATES)
            theirs = upstream_style_crop(samples[k % n], np.random.RandomState(k))
            same = all(np.array_equal(a, b) for a, b in zip(ours, theirs))
            print('crop %d: ours %s upstream-style' % (k, '==' if same else 'DIFFERS FROM'))
        rates = crop_rates({
            'decode': lambda k: datasets.read_sample(samples[k % n].image, samples[k % n].label),
            'ours': lambda k: make_train_crop(samples[k % n], k, CROP, scale_rate_range=RATES),
            'upstream': lambda k: upstream_style_crop(samples[k % n], np.random.RandomState(k)),
        }, args.crops)

        with SegTrainIter(samples * max(2, args.crops // n + 1), 1, CROP, scale_rate_range=RATES,
                          seed=0, prefetch_threads=2) as it:
            next(it)  # starts the workers; not timed
            start = time.perf_counter()
            count = sum(1 for _ in it)
            threaded = count / (time.perf_counter() - start)

    print('%-44s %10s %10s' % ('pipeline (1 thread unless noted)', 'crops/cpu-s', 'crops/s'))
    for name, label in [('decode', 'decode image + label only (read_sample)'),
                        ('upstream', 'upstream-style (PIL, whole canvas)'),
                        ('ours', 'ours (make_train_crop)')]:
        print('%-44s %10.2f %10.2f' % ((label,) + rates[name]))
    print('%-44s %10s %10.2f' % ('ours, SegTrainIter with 2 prefetch threads', '-', threaded))
    print('speed-up ours / upstream-style: %.2fx by CPU time, %.2fx by wall time'
          % (rates['ours'][0] / rates['upstream'][0], rates['ours'][1] / rates['upstream'][1]))
    ours = rates['ours'][1]
    if not args.no_model:
        step = model_step_seconds()
        print('gta_rna-tiny_cls19_s8 forward+backward+update, batch 2 x 3x%dx%d on CPU: %.3f s '
              '(%.2f crops/s)' % (CROP, CROP, step, 2 / step))
        print('data loading %s a CPU run (ours, 1 thread: %.2f crops/s vs model %.2f crops/s)'
              % ('limits' if ours < 2 / step else 'does not limit', ours, 2 / step))


if __name__ == '__main__':
    main()
