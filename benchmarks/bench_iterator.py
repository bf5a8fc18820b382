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

CRST side by side (skip with --no-crst): the same images as a pseudo-labelled target round of
LR-ENT as phase val leaves it (a 19 x 128 x 256 network map per image shaped like a stride-8
prediction of its label, issegm/crst/netmaps.py's record, the LR-ENT pseudo-label PNGs, alpha 0.25,
thresholds of portion 0.5), then, interleaved as above, the hard-label target crop (CBST) and
the CRST crop with LR-ENT + MR-KLD (the same crop plus its soft label and regulariser mask),
both iterators with 2 prefetch threads, and the model step with the CRST loss head.

    python benchmarks/bench_iterator.py [--crops 16] [--images 4] [--no-model] [--no-crst]
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
from issegm import cbst, datasets  # noqa: E402
from issegm.crst import lrent, netmaps  # noqa: E402
from issegm.crst.settings import (LABEL, REG_MASK, SOFT_LABEL, CrstSettings,  # noqa: E402
                                  label_names)
from issegm.data_iter import (LoaderSettings, SegTrainIter, TrainSample,  # noqa: E402
                              make_train_crop)
from issegm.rounds.val_target import TargetImage  # noqa: E402
from issegm.sampling import SELF_TRAINING, CropSettings, crop_side  # noqa: E402
from issegm.testtime.one_image import upsample_probs  # noqa: E402
from util.image import MEAN, STD  # noqa: E402

HEIGHT, WIDTH = 1024, 2048
CROP = crop_side(500, 8)
STRIDE = 8
ORIGIN = 2048
MAX_SHAPE = (1024, 2048)
RATES = (0.7, 1.3)
NUM_CLASSES = 19
ALPHA = 0.25  # lrent.sh: --lr-weight-ent 0.25
PORTION = 0.5
CRST = CrstSettings(ALPHA, 'kld', 0.01)  # LR-ENT and MR-KLD (mrkld.sh's 0.1, squared)
CROPS = CropSettings(CROP, STRIDE, RATES)
CRST_CROPS = CropSettings(CROP, STRIDE, RATES, crst=CRST, num_classes=NUM_CLASSES)
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


def network_map(label_ids, rng):
    """A 19 x 128 x 256 softmax map like a stride-8 network's on this label: the train-id
    one-hot at every 8th pixel, blurred by a bicubic round trip, plus smooth noise."""
    info = datasets.get_dataset('cityscapes')
    train = info.label_to_train[label_ids[STRIDE // 2::STRIDE, STRIDE // 2::STRIDE]]
    h, w = train.shape
    logits = np.empty((NUM_CLASSES, h, w), np.float32)
    for k in range(NUM_CLASSES):
        plane = Image.fromarray((train == k).astype(np.float32) * 6, mode='F')
        small = plane.resize((w // 4, h // 4), Image.BILINEAR)
        noise = Image.fromarray(rng.randn(h // 16, w // 16).astype(np.float32) * 1.5, mode='F')
        logits[k] = (np.asarray(small.resize((w, h), Image.BICUBIC))
                     + np.asarray(noise.resize((w, h), Image.BICUBIC)))
    e = np.exp(logits - logits.max(axis=0))
    return (e / e.sum(axis=0)).astype(np.float32)


def lrent_round(root, samples):
    """The samples as phase val leaves an LR-ENT round in ROOT/self_train (network maps, the
    record, pseudo-label PNGs): the target TrainSamples with their soft-label sources, and the
    share of pixels kept."""
    info = datasets.get_dataset('cityscapes')
    folder = os.path.join(root, 'self_train')
    os.makedirs(os.path.join(folder, netmaps.FOLDER))
    rng = np.random.RandomState(1)
    pool = cbst.ConfidencePool(NUM_CLASSES, 'cb')
    images = []
    for sample in samples:
        name = datasets.sample_name(sample.image)
        net = network_map(datasets.read_label(sample.label), rng)
        np.save(os.path.join(folder, netmaps.FOLDER, name + '.npy'), net)
        pool.add(upsample_probs(net, STRIDE, (HEIGHT, WIDTH), (HEIGHT, WIDTH), threads=2))
        images.append(TargetImage(name, sample.image, None, (HEIGHT, WIDTH), (HEIGHT, WIDTH)))
    thr = pool.thresholds(PORTION)[0]
    pairs, kept = [], []
    for image in images:
        net = np.load(os.path.join(folder, netmaps.FOLDER, image.name + '.npy'))
        full = upsample_probs(net, STRIDE, image.scaled_hw, image.hw, threads=2)
        pseudo = lrent.lrent_label_maps(full, thr, ALPHA)[0]
        kept.append((pseudo != 255).mean())
        pairs.append((image.image_path, os.path.join(folder, 'pseudo', image.name + '.png')))
        datasets.write_png(pairs[-1][1], info.train_to_label[pseudo])
    netmaps.write_record(folder, ALPHA, thr, STRIDE, images)
    soft = netmaps.soft_sources(folder, ALPHA, pairs)
    table = info.label_to_train
    return ([TrainSample(image, label, table, ORIGIN, MAX_SHAPE, SELF_TRAINING, True, source)
             for (image, label), source in zip(pairs, soft)], float(np.mean(kept)))


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


def model_step_seconds(batch=2, repeat=3, settings=None):
    """Seconds of one forward+backward+update of gta_rna-tiny_cls19_s8 on CPU, with the CRST
    loss head of `settings` (issegm/crst/loss.py) when given."""
    import mxnet as mx
    from issegm.crst.loss import training_symbol
    names = label_names(settings)
    grid = (batch, CROP // 8, CROP // 8)
    rng = np.random.RandomState(0)
    label = rng.randint(0, NUM_CLASSES, grid).astype(np.float32)
    values = {LABEL: label, REG_MASK: np.ones(grid, np.float32),
              SOFT_LABEL: (label[:, None] == np.arange(NUM_CLASSES)[:, None, None]).astype(
                  np.float32)}
    mod = mx.mod.Module(training_symbol('gta_rna-tiny_cls19_s8', settings), context=mx.cpu(),
                        data_names=['data'], label_names=names)
    mod.bind(data_shapes=[('data', (batch, 3, CROP, CROP))],
             label_shapes=[(n, values[n].shape) for n in names])
    mod.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2))
    mod.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 1e-4,
                                                           'momentum': 0.9, 'wd': 5e-4})
    batch_data = mx.io.DataBatch(
        data=[mx.nd.array(rng.randn(batch, 3, CROP, CROP).astype(np.float32))],
        label=[mx.nd.array(values[n]) for n in names])

    def step():
        mod.forward_backward(batch_data)
        mod.update()
        mx.nd.waitall()

    step()
    start = time.perf_counter()
    for _ in range(repeat):
        step()
    return (time.perf_counter() - start) / repeat


def threaded_rate(samples, crops, settings=None):
    """Crops per second (wall) of SegTrainIter with 2 prefetch threads, one crop per batch, with
    the CropSettings `settings` (default: CROPS)."""
    with SegTrainIter(samples * max(2, crops // len(samples) + 1), 1, settings or CROPS, seed=0,
                      loading=LoaderSettings(prefetch_threads=2)) as it:
        next(it)  # starts the workers; not timed
        start = time.perf_counter()
        count = sum(1 for _ in it)
        return count / (time.perf_counter() - start)


def crst_side_by_side(root, samples, crops):
    """The CBST and CRST target crops of an LR-ENT round: ({name: (crops/cpu-s, crops/s)},
    {name: threaded crops/s}, share of pixels kept)."""
    targets, kept = lrent_round(root, samples)
    n = len(targets)
    rates = crop_rates({
        'cbst': lambda k: make_train_crop(targets[k % n], k, CROPS),
        'crst': lambda k: make_train_crop(targets[k % n], k, CRST_CROPS),
    }, crops)
    threaded = {'cbst': threaded_rate(targets, crops),
                'crst': threaded_rate(targets, crops, CRST_CROPS)}
    return rates, threaded, kept


def print_crst(rates, threaded, kept, model):
    print('\nCRST (LR-ENT %g + MR-KLD %g) target crops of an LR-ENT round (%.0f%% of pixels '
          'pseudo-labelled) beside CBST\'s' % (ALPHA, CRST.mr_weight, 100 * kept))
    print('%-44s %10s %10s %10s' % ('target crop', 'crops/cpu-s', 'crops/s', '2 threads'))
    for name, label in [('cbst', 'CBST: hard label (make_train_crop)'),
                        ('crst', 'CRST: + soft label + mask (crst=...)')]:
        print('%-44s %10.2f %10.2f %10.2f' % ((label,) + rates[name] + (threaded[name],)))
    print('CRST crop / CBST crop: %.2fx the CPU time, %.2fx the wall time'
          % (rates['cbst'][0] / rates['crst'][0], rates['cbst'][1] / rates['crst'][1]))
    if model is not None:
        step = model_step_seconds(settings=CRST)
        print('gta_rna-tiny_cls19_s8 with the CRST head, batch 2 on CPU: %.3f s (%.2f crops/s, '
              'plain head %.2f crops/s)' % (step, 2 / step, 2 / model))
        for label, have in (('1 thread', rates['crst'][1]), ('2 threads', threaded['crst'])):
            print('the CRST iterator (%s: %.2f crops/s) %s the CPU step (%.2f crops/s)'
                  % (label, have, 'LIMITS' if have < 2 / step else 'does not limit', 2 / step))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--crops', type=int, default=16, help='crops timed per pipeline')
    parser.add_argument('--images', type=int, default=4, help='2048x1024 images to generate')
    parser.add_argument('--no-model', action='store_true', help='skip the model step timing')
    parser.add_argument('--no-crst', action='store_true', help='skip the CRST side by side')
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # compare single-threaded pipelines

    with tempfile.TemporaryDirectory(prefix='bench_iter_') as root:
        samples = write_dataset(root, args.images)
        n = len(samples)
        mb = sum(os.path.getsize(s.image) for s in samples) / n / 2 ** 20
        print('%d Cityscapes-sized PNGs (%.1f MB each), crop %d, scale rates %.1f..%.1f'
              % (n, mb, CROP, RATES[0], RATES[1]))

        for k in range(2):  # the same seed gives the same crop
            ours = make_train_crop(samples[k % n], k, CROPS)
            theirs = upstream_style_crop(samples[k % n], np.random.RandomState(k))
            same = all(np.array_equal(a, b) for a, b in zip(ours, theirs))
            print('crop %d: ours %s upstream-style' % (k, '==' if same else 'DIFFERS FROM'))
        rates = crop_rates({
            'decode': lambda k: datasets.read_sample(samples[k % n].image, samples[k % n].label),
            'ours': lambda k: make_train_crop(samples[k % n], k, CROPS),
            'upstream': lambda k: upstream_style_crop(samples[k % n], np.random.RandomState(k)),
        }, args.crops)
        threaded = threaded_rate(samples, args.crops)
        crst_results = None if args.no_crst else crst_side_by_side(root, samples, args.crops)

    print('%-44s %10s %10s' % ('pipeline (1 thread unless noted)', 'crops/cpu-s', 'crops/s'))
    for name, label in [('decode', 'decode image + label only (read_sample)'),
                        ('upstream', 'upstream-style (PIL, whole canvas)'),
                        ('ours', 'ours (make_train_crop)')]:
        print('%-44s %10.2f %10.2f' % ((label,) + rates[name]))
    print('%-44s %10s %10.2f' % ('ours, SegTrainIter with 2 prefetch threads', '-', threaded))
    print('speed-up ours / upstream-style: %.2fx by CPU time, %.2fx by wall time'
          % (rates['ours'][0] / rates['upstream'][0], rates['ours'][1] / rates['upstream'][1]))
    ours = rates['ours'][1]
    step = None
    if not args.no_model:
        step = model_step_seconds()
        print('gta_rna-tiny_cls19_s8 forward+backward+update, batch 2 x 3x%dx%d on CPU: %.3f s '
              '(%.2f crops/s)' % (CROP, CROP, step, 2 / step))
        print('data loading %s a CPU run (ours, 1 thread: %.2f crops/s vs model %.2f crops/s)'
              % ('limits' if ours < 2 / step else 'does not limit', ours, 2 / step))
    if crst_results is not None:
        print_crst(*crst_results, model=step)


if __name__ == '__main__':
    main()
