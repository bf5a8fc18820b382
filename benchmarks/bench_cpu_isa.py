"""The cost of the pinned CPU kernels (util/kernels.py: DNNL_MAX_CPU_ISA=AVX2, OMP_NUM_THREADS=1).

Phase val's network pass (issegm.testtime.one_image.Predictor.network_probs: flipping, float32
softmax, as phase val) and a training step (forward, backward and SGD update of the training
symbol, bound as issegm.training.bind_module binds it), each in fresh processes, pinned (the
default) and native (CBST_NATIVE_CPU=1), alternately (pinned first, then native first, ...).
Prints the medians, native / pinned ratios, the instruction sets and threads, and whether both
ways computed the same numbers. On a 2-CPU AVX2 processor both run the same kernels: ratio ~1.
--threads 1,2,4: instead, whether those OMP_NUM_THREADS give the same numbers as the first.

    python benchmarks/bench_cpu_isa.py [--model gta_rna-a1_cls19_s8] [--scale 1024]
        [--crop 320] [--repeat 2] [--passes 2] [--cap AVX2] [--threads 1,2,4]
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

WAYS = ('pinned', 'native')
# Wall and CPU seconds (all threads of the process) of the network pass and the training step:
# on a shared machine the wall time varies with the load, the CPU time far less.
KEYS = ('val_s', 'step_s', 'val_cpu_s', 'step_cpu_s')


def way_environment(way, cap=None, threads=None):
    """The environment of a child: the project's defaults (or DNNL_MAX_CPU_ISA=cap, or
    OMP_NUM_THREADS=threads), or CBST_NATIVE_CPU=1 (none of this process's own values)."""
    from util.kernels import MARKER_PREFIX, NATIVE_VARIABLE, PINS
    env = {k: v for k, v in os.environ.items() if k != NATIVE_VARIABLE and not any(
        k in users or k == MARKER_PREFIX + variable for variable, _, users in PINS)}
    if way == 'native':
        env[NATIVE_VARIABLE] = '1'
    for variable, value in (('DNNL_MAX_CPU_ISA', cap), ('OMP_NUM_THREADS', threads)):
        if value and way != 'native':
            env[variable] = value
    env.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')
    return env


def _digest(array):
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def child(model, scale, crop, passes):
    """In a fresh process: one warm-up and `passes` timed passes of each kind (their median);
    one JSON line."""
    import mxnet as mx
    import numpy as np
    from bench_train_memory import _Shapes, random_params
    from issegm.crst.loss import training_symbol
    from issegm.testtime.one_image import Predictor
    from issegm.training import bind_module
    from util.kernels import isa_record, threads_record
    arg_params, aux_params = random_params(model)
    rng = np.random.RandomState(0)
    image = (rng.rand(scale // 2, scale, 3) * 255).astype(np.uint8)
    predictor = Predictor(model, arg_params, aux_params, mx.cpu(), 8)
    times = {key: [] for key in KEYS}
    for _ in range(passes + 1):  # the first binds and makes oneDNN's kernels
        start, cpu = time.perf_counter(), time.process_time()
        probs, _ = predictor.network_probs(image, scale, True)
        times['val_s'].append(time.perf_counter() - start)
        times['val_cpu_s'].append(time.process_time() - cpu)
    shapes = _Shapes(1, crop)
    module = bind_module(training_symbol(model), shapes, [mx.cpu()], arg_params, aux_params)
    module.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 1e-3})
    batch = mx.io.DataBatch(
        [mx.nd.array(rng.uniform(-1, 1, (1, 3, shapes.crop, shapes.crop)))],
        [mx.nd.array(rng.randint(0, 19, (1, shapes.grid, shapes.grid)))])
    for _ in range(passes + 1):
        start, cpu = time.perf_counter(), time.process_time()
        module.forward_backward(batch)
        module.update()
        mx.nd.waitall()
        times['step_s'].append(time.perf_counter() - start)
        times['step_cpu_s'].append(time.process_time() - cpu)
    weights = module.get_params()[0]
    result = {key: statistics.median(values[1:]) for key, values in times.items()}
    updated = np.concatenate([weights[k].asnumpy().ravel() for k in sorted(weights)])
    print(json.dumps(dict(result, isa=isa_record()['effective'],
                          threads=threads_record()['effective'], val_digest=_digest(probs),
                          step_digest=_digest(updated))))


def measure(way, args, threads=None):
    command = [sys.executable, os.path.abspath(__file__), '--child', '--model', args.model,
               '--scale', str(args.scale), '--crop', str(args.crop), '--passes', str(args.passes)]
    res = subprocess.run(command, cwd=REPO, env=way_environment(way, args.cap, threads),
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-3000:])
        raise SystemExit('%s run failed with status %d' % (way, res.returncode))
    return json.loads(res.stdout.strip().splitlines()[-1])


def report(runs, args):
    """The medians of each way, the native / capped ratios, the ISAs and the digests."""
    print('%s: phase val network pass (%dx%d, flipped) and a training step (crop %d, 1 image), '
          '%d fresh processes each way, %d timed passes each' % (
              args.model, args.scale, args.scale // 2, args.crop, args.repeat, args.passes))
    median = {way: {key: statistics.median(r[key] for r in runs[way]) for key in KEYS}
              for way in WAYS}
    print('%-8s  %-8s  %7s  %12s  %12s  %12s  %12s' % (
        'way', 'ISA', 'threads', 'val pass s', 'step s', 'val CPU s', 'step CPU s'))
    for way in WAYS:
        print('%-8s  %-8s  %7d  %12.2f  %12.2f  %12.2f  %12.2f' % (
            (way, runs[way][0]['isa'], runs[way][0]['threads'])
            + tuple(median[way][key] for key in KEYS)))
    print('native / pinned: wall time val pass x%.2f, training step x%.2f; CPU time val pass '
          'x%.2f, training step x%.2f' % tuple(median['native'][key] / median['pinned'][key]
                                               for key in KEYS))
    same = all(len({r[key] for way in WAYS for r in runs[way]}) == 1
               for key in ('val_digest', 'step_digest'))
    print('same numbers both ways (probabilities and updated weights, bit for bit): %s'
          % ('yes' if same else 'no'))


def compare_threads(args):
    """One pinned run per OMP_NUM_THREADS of --threads: its times and digests, and whether its
    numbers equal the first's."""
    first = None
    for threads in args.threads.split(','):
        run = measure('pinned', args, threads)
        first = first or run
        print('OMP_NUM_THREADS=%s: val pass %.2f s, step %.2f s; same numbers as with %s: val '
              'pass %s, training step %s' % (
                  threads, run['val_s'], run['step_s'], args.threads.split(',')[0],
                  'yes' if run['val_digest'] == first['val_digest'] else 'no',
                  'yes' if run['step_digest'] == first['step_digest'] else 'no'), flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='gta_rna-a1_cls19_s8')
    parser.add_argument('--scale', type=int, default=1024,
                        help='longer side of the val pass (the image is scale/2 x scale)')
    parser.add_argument('--crop', type=int, default=320, help='training crop side')
    parser.add_argument('--repeat', type=int, default=2, help='processes per way')
    parser.add_argument('--passes', type=int, default=2,
                        help='timed passes of each kind per process, after a warm-up one')
    parser.add_argument('--cap', help='DNNL_MAX_CPU_ISA of the capped way (default: the '
                                      'project\'s, AVX2); e.g. AVX to see a cap that changes '
                                      'the kernels on an AVX2 processor')
    parser.add_argument('--threads', help='e.g. 1,2,4: compare the numbers of these '
                                          'OMP_NUM_THREADS instead')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.model, args.scale, args.crop, args.passes)
    if args.threads:
        return compare_threads(args)
    runs = {way: [] for way in WAYS}
    for i in range(args.repeat):
        for way in (WAYS if i % 2 == 0 else WAYS[::-1]):
            runs[way].append(measure(way, args))
            print('  %s: %s' % (way, json.dumps(runs[way][-1])), flush=True)
    report(runs, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
