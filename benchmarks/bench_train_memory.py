"""Training memory of ResNet-38 with and without --backward-do-mirror, side by side.

The model is the one phase train and train_src.py train: `gta_rna-a1_cls19_s8` (ResNet-38 A1,
stride 8) as issegm.crst.loss.training_symbol builds it, bound for training on the CPU as
issegm.training.bind_module binds it (parameter gradients, no input gradients), at --crop 500,
which the training iterator rounds up to 504x504 (labels 63x63). Three settings:

* `without`:      the plain symbol, MXNET_BACKWARD_DO_MIRROR unset;
* `MXNet mirror`: the plain symbol with MXNET_BACKWARD_DO_MIRROR=1, which the flag sets in
                  yzou2/CBST issegm/solve_ST.py and issegm/train_src.py (parse_args);
* `port mirror`:  the port's --backward-do-mirror (util/mirroring.py: each residual unit
                  recomputed in the backward pass; MXNET_BACKWARD_DO_MIRROR off).

Columns:

* planned: MXNet's static memory plan of the executor (util.mirroring.planned_memory_mb):
  feature maps and their gradients, without parameters, parameter gradients and inputs. It is
  allocated as planned on any device, so it is the part of a GPU's memory the flag changes.
  MXNet reads the variable each time it builds a graph, so all plans are made in this process;
* peak RSS: the peak resident memory (VmHWM, reset just before) of a fresh process during one
  forward-backward on random data, and `step`, its growth during that step (the peak minus
  the resident memory after import, binding and parameter set-up, which holds the parameters,
  their gradients and MXNet's own copy of the parameters): the plan as actually touched plus
  MXNet's temporary workspace and oneDNN's reordered weights on the CPU;
* step s: the wall time of that forward-backward (2 shared cores are noisy; the port's mirror
  recomputes about one forward pass).

A step of ResNet-38 at 504x504 takes a minute or more on 2 cores, so by default only
`without` and `port mirror` run it, for 1 image; --full runs it for every setting and --images.

    python benchmarks/bench_train_memory.py [--full] [--crop 500] [--images 1,2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import util  # noqa: E402,F401  before MXNet: util/__init__ prepares NumPy for it

MODEL = 'gta_rna-a1_cls19_s8'
SETTINGS = ('without', 'MXNet mirror', 'port mirror')
DEFAULT_STEPS = (('without', 1), ('port mirror', 1))
GB = 1024.0 ** 2  # kB


def _status_kb(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError('no %s in /proc/self/status' % key)


def _reset_peak():
    """Set VmHWM to the current resident memory (Linux 4.0+: /proc/PID/clear_refs, 5)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def random_params(model, seed=0):
    """(arg_params, aux_params) for `model`: He-uniform weights, unit gammas and variances,
    zero biases, betas and means. Values do not change the memory; NumPy draws them in about
    a second where MXNet's Xavier takes some 20 s for ResNet-38's 124M parameters."""
    import mxnet as mx
    import numpy as np
    from util.symbol.resnet38 import parameter_shapes
    rng = np.random.default_rng(seed)
    params = ({}, {})
    for kind, name, shape in parameter_shapes(model):
        if name.endswith(('_gamma', '_var')):
            value = np.ones(shape, np.float32)
        elif len(shape) > 1:
            bound = np.sqrt(6.0 / np.prod(shape[1:]))
            value = (rng.random(shape, np.float32) * 2 - 1) * np.float32(bound)
        else:
            value = np.zeros(shape, np.float32)
        params[kind == 'aux'][name] = mx.nd.array(value)
    return params


class _Shapes:
    """What bind_module reads of a training iterator: the input shapes of one batch."""

    def __init__(self, images, crop_size):
        import mxnet as mx
        from issegm.sampling import crop_side
        self.crop = crop_side(crop_size, 8)
        self.grid = len(range(4, self.crop, 8))  # SegTrainIter's label grid
        self.provide_data = [mx.io.DataDesc('data', (images, 3, self.crop, self.crop))]
        self.provide_label = [mx.io.DataDesc('softmax_label', (images, self.grid, self.grid))]


def _symbol(setting):
    """The training symbol of a setting, with MXNET_BACKWARD_DO_MIRROR set for it."""
    from issegm.crst.loss import training_symbol
    from util.mirroring import mirror_symbol
    if setting == 'MXNet mirror':
        os.environ['MXNET_BACKWARD_DO_MIRROR'] = '1'
    else:
        os.environ.pop('MXNET_BACKWARD_DO_MIRROR', None)
    symbol = training_symbol(MODEL)
    return mirror_symbol(symbol) if setting == 'port mirror' else symbol


def planned_mb(setting, images, crop_size):
    """The executor's memory plan in MB (bound as bind_module binds, no parameters set)."""
    import mxnet as mx
    from util.mirroring import planned_memory_mb
    shapes = _Shapes(images, crop_size)
    module = mx.mod.Module(_symbol(setting), data_names=('data',),
                           label_names=('softmax_label',), context=[mx.cpu()])
    module.bind(shapes.provide_data, shapes.provide_label, for_training=True)
    return planned_memory_mb(module._exec_group.execs[0])


def step_child(setting, images, crop_size):
    """In a fresh process: one forward-backward, printed as one JSON line."""
    import mxnet as mx
    import numpy as np
    from issegm.training import bind_module
    shapes = _Shapes(images, crop_size)
    module = bind_module(_symbol(setting), shapes, [mx.cpu()], *random_params(MODEL))
    rng = np.random.RandomState(0)
    crop, grid = shapes.crop, shapes.grid
    batch = mx.io.DataBatch([mx.nd.array(rng.uniform(-1, 1, (images, 3, crop, crop)))],
                            [mx.nd.array(rng.randint(0, 19, (images, grid, grid)))])
    mx.nd.waitall()
    before = _status_kb('VmRSS')
    _reset_peak()  # the peak of the step, not of the parameter set-up
    start = time.perf_counter()
    module.forward_backward(batch)
    mx.nd.waitall()
    print(json.dumps({'step_s': time.perf_counter() - start, 'peak_kb': _status_kb('VmHWM'),
                      'before_kb': before}))


def measure_step(setting, images, crop_size):
    command = [sys.executable, os.path.abspath(__file__), '--step-child', setting,
               '--images', str(images), '--crop', str(crop_size)]
    res = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-3000:])
        raise SystemExit('%s, %d image(s) failed with status %d'
                         % (setting, images, res.returncode))
    return json.loads(res.stdout.strip().splitlines()[-1])


def _ratio(value, base):
    return 'x%.2f' % (value / base) if value is not None and base else ''


def print_table(rows):
    print('%-6s  %-12s  %8s  %6s  %9s  %8s  %6s  %6s' % (
        'images', 'setting', 'planned', 'ratio', 'peak RSS', 'step', 'ratio', 'step s'))
    base = {}
    for r in rows:
        step = (r['peak_kb'] - r['before_kb']) / GB if 'peak_kb' in r else None
        if r['setting'] == 'without':
            base[r['images']] = (r['planned_mb'], step)
        planned0, step0 = base.get(r['images'], (None, None))
        print('%-6d  %-12s  %5d MB  %6s  %9s  %8s  %6s  %6s' % (
            r['images'], r['setting'], r['planned_mb'], _ratio(r['planned_mb'], planned0),
            '%.2f GB' % (r['peak_kb'] / GB) if step is not None else '-',
            '+%.2f GB' % step if step is not None else '-', _ratio(step, step0),
            '%.0f' % r['step_s'] if step is not None else '-'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--crop', type=int, default=500, help='--crop-size (rounded up to 8)')
    parser.add_argument('--images', default='1,2', help='images per device, comma-separated')
    parser.add_argument('--full', action='store_true',
                        help='run the step for every setting and --images (default: without '
                             'and port mirror, 1 image)')
    parser.add_argument('--step-child', choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')  # no "backend MKLDNN" line per bind
    if args.step_child:
        return step_child(args.step_child, int(args.images), args.crop)
    print('%s, crop %d: memory plans, and one forward-backward on the CPU in a fresh process '
          'per measured row' % (MODEL, args.crop))
    rows = []
    for images in [int(n) for n in args.images.split(',')]:
        for setting in SETTINGS:
            rows.append({'setting': setting, 'images': images,
                         'planned_mb': planned_mb(setting, images, args.crop)})
    os.environ.pop('MXNET_BACKWARD_DO_MIRROR', None)
    for row in rows:
        if args.full or (row['setting'], row['images']) in DEFAULT_STEPS:
            row.update(measure_step(row['setting'], row['images'], args.crop))
    print_table(rows)
    print('planned: the executor\'s memory plan (feature maps and their gradients); step: '
          'the peak RSS minus the RSS before the step; ratios against `without`')


if __name__ == '__main__':
    sys.exit(main())
