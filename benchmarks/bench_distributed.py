"""Training throughput of 1 and 2 local workers, parameter server (dist_sync through
issegm.launch) and Horovod (horovodrun, Gloo all-reduce), side by side.

Writes a small GTA-5 layout (random images) and rna-tiny weights to a temporary directory, then
trains the narrow `gta_rna-tiny_cls19_s8` model on the CPU with issegm.training.fit:

* `no kvstore`: one process, no parameter server (the plain single-device path);
* `1 worker`:  issegm.launch -n 1 -s 1, --kvstore dist_sync (the parameter-server overhead);
* `2 workers`: issegm.launch -n 2 -s 2, --kvstore dist_sync, each worker reads half the
  samples (its shard), so one epoch of the same samples takes half the batches per worker;
* `hvd 1 rank` / `hvd 2 ranks`: horovodrun -np 1 / -np 2 with --kvstore horovod (no servers:
  the gradients are all-reduced between the ranks), the same shards.

Each run trains --epochs epochs; the first epoch is warm-up, the rate is taken over the others:
samples/s = (samples of all workers in the timed epochs) / (wall time of those epochs). The
start-up of the processes (import mxnet, binding, kvstore set-up) is not counted; it is printed
separately as the launch's total time. No target: on a machine with few cores the workers
compete for the same cores (MXNet runs its operators with OpenMP on all cores by default; try
--omp-threads 1), and the parameter server exchanges every gradient over the loopback.

    python benchmarks/bench_distributed.py [--images 32] [--batch 2] [--crop 192] [--epochs 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import util  # noqa: E402,F401  before MXNet: util/__init__ prepares NumPy for it

MODEL = 'gta_rna-tiny_cls19_s8'


def write_data(root, count, hw=(256, 512), seed=0):
    import numpy as np
    from issegm.datasets import write_list, write_png
    from util.symbol.resnet38 import parameter_shapes
    from util.weights import initial_weights, save_weights
    rng = np.random.RandomState(seed)
    ids = np.array([7, 8, 11, 17, 21, 23, 24, 26, 0], np.uint8)
    rows = []
    for i in range(count):
        image, label = 'images/%05d.png' % (i + 1), 'labels/%05d.png' % (i + 1)
        write_png(os.path.join(root, image), (rng.rand(hw[0], hw[1], 3) * 255).astype(np.uint8))
        blocks = rng.choice(ids, (hw[0] // 32, hw[1] // 32))
        write_png(os.path.join(root, label), np.kron(blocks, np.ones((32, 32), np.uint8)))
        rows.append((image, label))
    lst = os.path.join(root, 'train.lst')
    write_list(lst, rows)
    weights = os.path.join(root, '%s_ep-0000.params' % MODEL)
    save_weights(weights, *initial_weights(parameter_shapes(MODEL), 0))
    return lst, weights


def worker(args):
    """One training process (run directly, or by issegm.launch as worker/server/scheduler)."""
    import mxnet as mx  # servers and the scheduler run their loop inside this import and exit
    from issegm import training
    from issegm.data_iter import SegTrainIter, source_only_samples
    from issegm.datasets import get_dataset, load_samples
    from issegm.sampling import CropSettings
    from util.symbol.resnet38 import build_symbol
    from util.weights import load_weights

    kv, _, (_, rank, workers) = training.start_worker(args.kvstore or 'local', [mx.cpu()])
    info = get_dataset('gta')
    samples = source_only_samples(load_samples(args.root, args.list, 'gta'), info, 512)
    it = SegTrainIter(samples, args.batch, CropSettings(args.crop), seed=1, num_parts=workers,
                      part_index=rank)
    arg, aux = load_weights(args.weights)
    stamps = []
    t0 = time.perf_counter()
    settings = training.FitSettings(
        0, args.epochs, os.path.join(args.out, MODEL + '_ep'), 1e-3, progress=False,
        epoch_end_callback=lambda *a: stamps.append(time.perf_counter()))
    training.fit(build_symbol(MODEL), it, [mx.cpu()], (arg, aux), settings, kv)
    it.close()
    timed = stamps[-1] - stamps[0]
    samples_done = (args.epochs - 1) * len(it) * args.batch
    with open(os.path.join(args.out, 'rate.rank%d.json' % rank), 'w') as f:
        json.dump({'seconds': timed, 'samples': samples_done, 'first_epoch': stamps[0] - t0,
                   'workers': workers}, f)


def run(label, out, command, env):
    os.makedirs(out)
    t0 = time.perf_counter()
    res = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    total = time.perf_counter() - t0
    if res.returncode != 0:
        sys.stdout.write(res.stdout[-3000:])
        raise SystemExit('%s failed with status %d' % (label, res.returncode))
    reports = [json.load(open(os.path.join(out, n))) for n in sorted(os.listdir(out))
               if n.startswith('rate.rank')]
    seconds = max(r['seconds'] for r in reports)  # the workers move in lockstep anyway
    samples = sum(r['samples'] for r in reports)
    return {'label': label, 'rate': samples / seconds, 'seconds': seconds, 'samples': samples,
            'total': total, 'workers': len(reports)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=32, help='training samples (GTA layout)')
    parser.add_argument('--batch', type=int, default=2, help='images per batch per worker')
    parser.add_argument('--crop', type=int, default=192)
    parser.add_argument('--epochs', type=int, default=3, help='the first one is warm-up')
    parser.add_argument('--omp-threads', type=int, help='OMP_NUM_THREADS of every process')
    # worker mode (used by the launch)
    parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--kvstore', help=argparse.SUPPRESS)
    parser.add_argument('--root', help=argparse.SUPPRESS)
    parser.add_argument('--list', help=argparse.SUPPRESS)
    parser.add_argument('--weights', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.epochs < 2:
        parser.error('--epochs must be at least 2 (the first one is warm-up)')

    env = dict(os.environ)
    if args.omp_threads:
        env['OMP_NUM_THREADS'] = str(args.omp_threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, 'gta')
        lst, weights = write_data(root, args.images)
        me = [sys.executable, os.path.abspath(__file__), '--worker', '--root', root, '--list', lst,
              '--weights', weights, '--batch', str(args.batch), '--crop', str(args.crop),
              '--epochs', str(args.epochs)]
        launch = [sys.executable, '-m', 'issegm.launch']
        results = [
            run('no kvstore', os.path.join(tmp, 'single'),
                me + ['--out', os.path.join(tmp, 'single')], env),
            run('1 worker', os.path.join(tmp, 'w1'),
                launch + ['-n', '1', '-s', '1', '--'] + me
                + ['--kvstore', 'dist_sync', '--out', os.path.join(tmp, 'w1')], env),
            run('2 workers', os.path.join(tmp, 'w2'),
                launch + ['-n', '2', '-s', '2', '--'] + me
                + ['--kvstore', 'dist_sync', '--out', os.path.join(tmp, 'w2')], env),
        ]
        # horovodrun with the NumPy names MXNet reads restored (Python 3.12, 3.13)
        horovodrun = [sys.executable, os.path.join(REPO, 'issegm', 'horovodrun.py')]
        for ranks in (1, 2):
            out = os.path.join(tmp, 'hvd%d' % ranks)
            results.append(run('hvd %d rank%s' % (ranks, 's' if ranks > 1 else ''), out,
                               horovodrun + ['-np', str(ranks), '-H', 'localhost:%d' % ranks]
                               + me + ['--kvstore', 'horovod', '--out', out], env))
    print('narrow model %s, CPU, %d samples, batch %d per worker, crop %d, %d timed epoch(s), '
          '%d CPU core(s), OMP_NUM_THREADS=%s'
          % (MODEL, args.images, args.batch, args.crop, args.epochs - 1, os.cpu_count(),
             env.get('OMP_NUM_THREADS', 'unset')))
    print('%-12s %8s %12s %10s %14s' % ('run', 'workers', 'samples/s', 'timed s', 'launch total s'))
    for r in results:
        print('%-12s %8d %12.2f %10.2f %14.2f' % (r['label'], r['workers'], r['rate'], r['seconds'],
                                                   r['total']))
    print('dist_sync 2 workers / 1 worker: %.2fx; horovod 2 ranks / 1 rank: %.2fx; '
          'horovod 2 ranks / dist_sync 2 workers: %.2fx (no target)'
          % (results[2]['rate'] / results[1]['rate'], results[4]['rate'] / results[3]['rate'],
             results[4]['rate'] / results[2]['rate']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
