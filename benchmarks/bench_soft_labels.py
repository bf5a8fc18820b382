"""LR-ENT soft labels per training crop, recomputed from phase val's network maps, beside the
hard-label crop alone and the model step.

Writes a few Cityscapes-sized (2048x1024) target images (benchmarks/bench_iterator.py's street
scenes) with, for each, a 19 x 128 x 256 network map shaped like a stride-8 prediction of its
label (smooth logits, softmax) saved as .npy, as phase val keeps it; then phase val's LR-ENT
pseudo-labels (issegm/crst/lrent.py lrent_label_maps on the full-size map, alpha 0.25, thresholds of
portion 0.5), saved as the pseudo_labelIds PNG the crop reads. Then times, one crop at a time
in one thread, interleaved, by this process's CPU time (wall time beside it), crop 504 at scale
rates 0.7..1.3 of origin 2048:

(a) the hard-label crop: issegm/data_iter.py make_train_crop (decode image and PNG, plan,
    crop), what a CBST target crop costs today;
(b) the soft label of that crop on top: np.load of the network map + issegm/crst/crop_labels.py
    soft_label_crop (the same crop plan, drawn before timing).

Also prints the phase val side per image (CBST's pseudo_label_maps vs LR-ENT's
lrent_label_maps on the 19 x 1024 x 2048 map), the storage per image (the network map vs the
released CRST's float32 soft label), and the forward+backward+update time of the narrow
gta_rna-tiny_cls19_s8 model for a batch of two 504 crops on the CPU, to see whether the
iterator would limit a CPU training step.

    python benchmarks/bench_soft_labels.py [--crops 16] [--images 3] [--no-model]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_iterator import (ALPHA, CROP, CROPS, HEIGHT, MAX_SHAPE, NUM_CLASSES,  # noqa: E402
                            ORIGIN, PORTION, RATES, STRIDE, WIDTH, crop_rates,
                            model_step_seconds, network_map, write_dataset)
from issegm import cbst, datasets  # noqa: E402
from issegm.crst import lrent  # noqa: E402
from issegm.crst.crop_labels import NetMap, soft_label_crop  # noqa: E402
from issegm.data_iter import TrainSample, make_train_crop  # noqa: E402
from issegm.sampling import SELF_TRAINING, plan_crop  # noqa: E402
from issegm.testtime.one_image import upsample_probs  # noqa: E402

def prepare(root, count):
    """Images, network maps (.npy), LR-ENT pseudo-labels (PNG); returns the target samples,
    the map paths, the thresholds and the phase-val timings."""
    info = datasets.get_dataset('cityscapes')
    samples = write_dataset(root, count)
    rng = np.random.RandomState(1)
    maps, fulls = [], []
    pool = cbst.ConfidencePool(NUM_CLASSES, 'cb')
    for sample in samples:
        net = network_map(datasets.read_label(sample.label), rng)
        path = os.path.join(root, os.path.basename(sample.image) + '.npy')
        np.save(path, net)
        maps.append(path)
        full = upsample_probs(net, STRIDE, (HEIGHT, WIDTH), (HEIGHT, WIDTH), threads=2)
        pool.add(full)
        fulls.append(full)
    thr = pool.thresholds(PORTION)[0]
    targets, timing, kept_share = [], {'cbst': 0.0, 'lrent': 0.0}, []
    for sample, full in zip(samples, fulls):
        tick = time.process_time()
        cbst.pseudo_label_maps(full, thr)
        timing['cbst'] += time.process_time() - tick
        tick = time.process_time()
        pseudo = lrent.lrent_label_maps(full, thr, ALPHA)[0]
        timing['lrent'] += time.process_time() - tick
        kept_share.append((pseudo != 255).mean())
        label_path = sample.label.replace('_gtFine_labelIds', '_pseudo_labelIds')
        datasets.write_png(label_path, info.train_to_label[pseudo])
        targets.append(TrainSample(sample.image, label_path, sample.label_to_train, ORIGIN,
                                   MAX_SHAPE, SELF_TRAINING))
    timing = {k: v / count for k, v in timing.items()}
    return targets, maps, thr, timing, float(np.mean(kept_share))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--crops', type=int, default=16, help='crops timed')
    parser.add_argument('--images', type=int, default=3, help='2048x1024 images to generate')
    parser.add_argument('--no-model', action='store_true', help='skip the model step timing')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix='bench_soft_') as root:
        targets, maps, thr, phase_val, kept = prepare(root, args.images)
        n = len(targets)
        plans, hards = [], []
        for k in range(args.crops + 1):  # the plans (and hard labels) the crops will draw
            sample = targets[k % n]
            label = datasets.read_label(sample.label)
            plans.append(plan_crop(np.random.RandomState(k), label, CROPS, ORIGIN, MAX_SHAPE,
                                   SELF_TRAINING, label_to_train=sample.label_to_train))
            hards.append(make_train_crop(sample, k, CROPS)[1])

        def hard(k):
            return make_train_crop(targets[k % n], k, CROPS)

        def soft(k):
            netmap = NetMap(np.load(maps[k % n]), STRIDE, (HEIGHT, WIDTH), (HEIGHT, WIDTH))
            return soft_label_crop(netmap, thr, ALPHA, plans[k], CROP, hards[k], STRIDE)

        rates = crop_rates({'hard': hard, 'soft': soft}, args.crops)  # interleaved
        map_bytes = np.mean([os.path.getsize(p) for p in maps])
        labelled = np.mean([(h != 255).mean() for h in hards[1:]])

    ms = {name: 1000 / rate[0] for name, rate in rates.items()}
    ms_wall = {name: 1000 / rate[1] for name, rate in rates.items()}
    print('%d 2048x1024 target images, LR-ENT alpha %g, thresholds of portion %g: %.0f%% of '
          'pixels kept, %.0f%% of label cells labelled; crop %d, scale rates %.1f..%.1f'
          % (n, ALPHA, PORTION, 100 * kept, 100 * labelled, CROP, RATES[0], RATES[1]))
    print('%-56s %9s %9s' % ('per crop, 1 thread', 'cpu ms', 'wall ms'))
    print('%-56s %9.1f %9.1f' % ('(a) hard-label crop (make_train_crop, with decoding)',
                                 ms['hard'], ms_wall['hard']))
    print('%-56s %9.1f %9.1f' % ('(b) its soft label (np.load + soft_label_crop)',
                                 ms['soft'], ms_wall['soft']))
    print('%-56s %9.1f %9.1f' % ('(a) + (b)', ms['hard'] + ms['soft'],
                                 ms_wall['hard'] + ms_wall['soft']))
    print('soft label / hard crop: %.2fx by CPU time; a CRST crop costs %.2fx a CBST one'
          % (ms['soft'] / ms['hard'], (ms['hard'] + ms['soft']) / ms['hard']))
    print('phase val per image (cpu s): CBST pseudo_label_maps %.3f, LR-ENT lrent_label_maps '
          '%.3f (%.1fx)' % (phase_val['cbst'], phase_val['lrent'],
                            phase_val['lrent'] / phase_val['cbst']))
    print('kept per image on disk: network map %.2f MB (.npy) vs the released CRST\'s float32 '
          'soft label %.1f MB' % (map_bytes / 1e6, NUM_CLASSES * HEIGHT * WIDTH * 4 / 1e6))
    if not args.no_model:
        step = model_step_seconds()
        need = 2 / step
        have = 1000.0 / (ms_wall['hard'] + ms_wall['soft'])
        print('gta_rna-tiny_cls19_s8 forward+backward+update, batch 2 x 3x%dx%d on CPU: %.3f s '
              '(%.2f crops/s)' % (CROP, CROP, step, need))
        print('the CRST iterator %s a CPU step (1 thread: %.2f crops/s vs model %.2f crops/s)'
              % ('limits' if have < need else 'does not limit', have, need))


if __name__ == '__main__':
    main()
