"""Phase val cost outside the network, per 2048x1024 target image, disk kept per image, and the
cost of the round's health beside it.

Runs the real per-round script (phase val, narrow model, test scale 2048, flipping, cb) on
generated full-size Cityscapes-layout images and reads the timings it records (wall time of the
phase minus the time in the network). Round 0 runs once (its pseudo-labels are the previous
round's for the agreement); then round 1 runs --repeat times with the round's health signals
(--debug-images 0) and without (--no-health), alternately (with first, then without first,
...), and once with the defaults (4 debug grids). Prints the non-network time per image both
ways and their ratio, the CPU seconds the signals took per image (time.thread_time in phase val,
summed over its threads) as a share of the non-network time without them, the grids' CPU seconds
(spread over a 500-image split, as they are made for the first images only) and the extra disk
per image.
The non-network time of whole runs varies by +-10% from run to run, more than the health
costs; so the two passes after the network, where all of the health runs, are also timed in
this process: phase val's own argmax_pass and label_target on the same network maps,
8 * --repeat times each way, alternately (the median of the paired differences is the
health's cost in wall time; the process's CPU time is shown too).
Targets: at most 0.6 s non-network time per image (Pillow's bicubic x8 on the class maps, twice
per image: both passes), at most 3 MB kept per image; the health under 5% of the non-network
time and 0.5 MB of disk per image.

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
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))

from conftest import write_model_weights  # noqa: E402
from issegm.datasets import write_list, write_png  # noqa: E402

# Per-run costs (thresholds, moving the outputs in place) are shared by all images of a split
# (500 for Cityscapes val); 8 images keep them from dominating. BENCH_IMAGES=N to change.
NUM_IMAGES = int(os.environ.get('BENCH_IMAGES', 8))
SPLIT_IMAGES = 500  # Cityscapes val: the debug grids' disk and time spread over a real split


def street_like(rng, h=1024, w=2048):
    """A blocky label map (like real scenes, not noise) and a matching noisy image."""
    ids = np.array([7, 8, 11, 21, 23, 26, 24, 17], np.uint8)
    coarse = rng.choice(ids, (h // 64, w // 64))
    label = np.kron(coarse, np.ones((64, 64), np.uint8))
    image = (rng.rand(h, w, 3) * 60 + label[:, :, None] * 5).astype(np.uint8)
    return image, label


TARGET_S = 0.6
TARGET_MB = 3.0
HEALTH_SHARE = 0.05
HEALTH_MB = 0.5


def make_data(tmp):
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
    return write_model_weights(os.path.join(tmp, 'gta_rna-tiny_cls19_s8_ep-0000.params'),
                               'gta_rna-tiny_cls19_s8')


def alternate(ways, run):
    """The two ways in the order A B, then B A, ... (run 0, 1, ...): a machine that speeds up or
    slows down over the runs does not favour the way that always goes first."""
    return ways if run % 2 == 0 else ways[::-1]


def run_val(base_cmd, out, idx_round, extra=()):
    """One phase val; (its metrics.json, bytes of its health outputs)."""
    subprocess.run(base_cmd + ['--idx-round', str(idx_round)] + list(extra), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = os.path.join(out, str(idx_round))
    with open(os.path.join(folder, 'metrics.json')) as f:
        metrics = json.load(f)
    extra_bytes = {'grids': 0, 'table': 0, 'grid_count': 0, 'pseudo_grid': 0}
    debug = os.path.join(folder, 'debug')
    if os.path.isdir(debug):
        names = os.listdir(debug)
        extra_bytes['grid_count'] = len(names)
        extra_bytes['grids'] = sum(os.path.getsize(os.path.join(debug, n)) for n in names)
    kept = os.path.join(folder, 'pseudo_grid')
    if os.path.isdir(kept):
        extra_bytes['pseudo_grid'] = sum(os.path.getsize(os.path.join(kept, n))
                                         for n in os.listdir(kept))
    quality = os.path.join(folder, 'pseudo_quality.md')
    if os.path.isfile(quality):
        extra_bytes['table'] = os.path.getsize(quality)
    extra_bytes['metrics'] = os.path.getsize(os.path.join(folder, 'metrics.json'))
    return metrics, extra_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3, help='runs of phase val, each way')
    parser.add_argument('--test-steps', type=int, default=1)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='bench_val_')
    weights = make_data(tmp)
    out = os.path.join(tmp, 'out')
    cmd = [sys.executable, os.path.join(ROOT, 'issegm', 'self-paced-self-trained-segresnet.py'),
           '--phase', 'val', '--dataset-tgt', 'cityscapes', '--data-root-tgt', tmp,
           '--split-tgt', os.path.join(tmp, 'val.lst'), '--output', out,
           '--model', 'cityscapes_rna-tiny_cls19_s8', '--weights', weights, '--gpus', 'cpu',
           '--test-scales', '2048', '--test-flipping', '--kc-policy', 'cb', '--no-progress',
           '--test-steps', str(args.test_steps)]
    print('images: %d of 2048x1024, test scale 2048 with flipping, test steps %d, kc-policy cb; '
          'round 1 (agreement with round 0)' % (NUM_IMAGES, args.test_steps))
    run_val(cmd, out, 0)
    runs = {'with': [], 'without': []}
    ways = (('with', ('--debug-images', '0')), ('without', ('--no-health',)))
    for run in range(args.repeat):
        for way, extra in alternate(ways, run):
            metrics, disk = run_val(cmd, out, 1, extra)
            runs[way].append((metrics['timing'], disk))
            timing = metrics['timing']
            print('run %d %s the health: non-network %.3f s per image (target %.1f s), '
                  'network (narrow model) %.3f s' % (run + 1, way, timing['other_s_per_image'],
                                                     TARGET_S, timing['network_s_per_image']))
    runs['grids'] = [run_val(cmd, out, 1)]
    report(runs)
    report_passes(time_passes(tmp, weights, os.path.join(out, '0'), 8 * args.repeat),
                  float(np.median([t['other_s_per_image'] for t, _ in runs['without']])))
    shutil.rmtree(tmp)


def report_passes(passes, without):
    """time_passes' figures, and the wall-time cost as a share of whole runs' `without`."""
    for kind, unit in (('wall', 'ms'), ('cpu', 'ms CPU')):
        part = passes[kind]
        print('passes 1b and 2 in this process, median of %d runs each way: %.1f %s per image '
              'with the health signals, %.1f without; the health costs %.1f %s per image (median '
              'of the paired differences) = %.1f%% of it without them'
              % (len(part['with']), 1e3 * part['with_median'], unit, 1e3 * part['without_median'],
                 1e3 * part['cost'], unit, 100 * part['cost'] / part['without_median']))
    print('the health\'s wall-time cost = %.1f%% of the non-network time of whole runs without '
          'it (target < %.0f%%)' % (100 * passes['wall']['cost'] / without, 100 * HEALTH_SHARE))


def time_passes(tmp, weights, round0, repeat):
    """Passes 1b and 2 (issegm.rounds.passes.argmax_pass and label_target, the real code with its
    threads) on this process's network maps of the images, `repeat` times with the health
    (round 0's pseudo-labels as the previous round's, no grids) and without, alternately:
    seconds per image of each run and the median of the paired differences."""
    import mxnet as mx
    from issegm.rounds import passes
    from issegm.rounds.val_target import HealthPlan, MapCache, TargetSplit
    from issegm.datasets import get_dataset, load_samples
    from issegm.testtime.image_list import Timings
    from issegm.testtime.one_image import make_predictors
    from util.symbol.resnet38 import parameter_shapes
    from util.weights import load_for_model
    model = 'cityscapes_rna-tiny_cls19_s8'
    arg, aux = load_for_model(weights, parameter_shapes(model))
    predictors = make_predictors(model, arg, aux, [mx.cpu()], 8)
    samples = load_samples(tmp, os.path.join(tmp, 'val.lst'), 'cityscapes', require_labels=False)
    stage = os.path.join(tmp, 'passes')
    target = TargetSplit(
        info=get_dataset('cityscapes'), samples=samples, has_gt=True, prior=None, stage=stage,
        cache=MapCache(os.path.join(stage, 'maps'), predictors[0].pred_stride), data_root=tmp,
        health=None)
    images = passes.network_pass(predictors, target, 2048, True, Timings(), progress=False)
    plan = HealthPlan(round0, frozenset())
    times = {kind: {'with': [], 'without': []} for kind in ('wall', 'cpu')}
    for run in range(repeat):
        for way, health in alternate((('with', plan), ('without', None)), run):
            cache = MapCache(os.path.join(stage, 'cache%d%s' % (run, way)),
                             target.cache.pred_stride)
            for name in os.listdir(target.cache.folder):  # label_target removes its cache
                shutil.copy(os.path.join(target.cache.folder, name), cache.folder)
            copy = target._replace(cache=cache, health=health)
            started, cpu = time.perf_counter(), time.process_time()
            pool = passes.argmax_pass(copy, images, 'cb', progress=False).pool
            passes.label_target(copy, images, pool.thresholds(0.3)[0], passes.LabelRule('cb'),
                                os.path.join(stage, 'list.lst'), 'P', progress=False)
            times['wall'][way].append((time.perf_counter() - started) / len(images))
            times['cpu'][way].append((time.process_time() - cpu) / len(images))
    for part in times.values():
        part['with_median'] = float(np.median(part['with']))
        part['without_median'] = float(np.median(part['without']))
        part['cost'] = float(np.median(np.subtract(part['with'], part['without'])))
    return times


def report(runs):
    """The figures of both ways side by side."""
    other = {way: [t['other_s_per_image'] for t, _ in runs[way]] for way in ('with', 'without')}
    med = {way: float(np.median(v)) for way, v in other.items()}
    print('non-network per image: with the health median %.3f s (best %.3f), without %.3f s '
          '(best %.3f): ratio %.3f' % (med['with'], min(other['with']), med['without'],
                                      min(other['without']), med['with'] / med['without']))
    network = {way: float(np.median([t['network_s_per_image'] for t, _ in runs[way]]))
               for way in ('with', 'without')}
    print('network per image (the same work both ways: how much the machine itself drifted '
          'between the runs): with %.3f s, without %.3f s: ratio %.3f'
          % (network['with'], network['without'], network['with'] / network['without']))
    signals = float(np.median([t['health_cpu_s_per_image'] for t, _ in runs['with']]))
    grid_s = runs['grids'][0][0]['timing']['debug_grid_cpu_s']
    disk = runs['grids'][0][1]
    grids = max(disk['grid_count'], 1)
    print('health signals: %.1f ms CPU per image (measured in phase val) = %.1f%% of the '
          'non-network time without them (target < %.0f%%)'
          % (1e3 * signals, 100 * signals / med['without'], 100 * HEALTH_SHARE))
    print('debug grids: %d, %.0f ms CPU each; over a %d-image split %.2f ms per image (%.2f%%)'
          % (disk['grid_count'], 1e3 * grid_s / grids, SPLIT_IMAGES, 1e3 * grid_s / SPLIT_IMAGES,
             100 * grid_s / SPLIT_IMAGES / med['without']))
    # the grids, the table and the keys are made once per round; the pseudo-labels on the grid
    # (pseudo_grid/, for the next round's agreement) once per image
    once = disk['grids'] + disk['table'] + disk['metrics'] - runs['without'][-1][1]['metrics']
    per_image = disk['pseudo_grid'] / NUM_IMAGES
    print('extra disk: grids %.2f MB each, pseudo_quality.md %.1f kB, metrics.json +%.1f kB, '
          'pseudo_grid %.1f kB per image; per image %.3f MB over these %d images, %.4f MB over '
          'a %d-image split (target < %.1f MB)'
          % (disk['grids'] / grids / 1e6, disk['table'] / 1e3,
             (disk['metrics'] - runs['without'][-1][1]['metrics']) / 1e3, per_image / 1e3,
             (once / NUM_IMAGES + per_image) / 1e6, NUM_IMAGES,
             (once / SPLIT_IMAGES + per_image) / 1e6, SPLIT_IMAGES, HEALTH_MB))
    timing = runs['grids'][0][0]['timing']
    kept_mb = timing['cache_bytes_per_image'] / 1e6
    upstream_mb = 19 * 1024 * 2048 * 4 / 1e6
    print('kept between passes per image: ours %.2f MB, target %.1f MB, upstream %.1f MB '
          '(%.0fx ours)' % (kept_mb, TARGET_MB, upstream_mb, upstream_mb / kept_mb))


if __name__ == '__main__':
    main()
