"""The scripts' argument parser and the parsing of upstream-style flag values."""
import argparse
import os
import sys

from util.errors import UserError
from util.kernels import set_deterministic
from util.lr_scheduler import LR_TYPES

# MXNet's kvstore types the training scripts accept (`--kvstore`, issegm.training.create_kvstore).
KVSTORES = ('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async', 'horovod')
HOROVOD_INSTALL_HINT = ('--kvstore horovod needs Horovod built against MXNet: run `make install '
                        'HOROVOD=1` (or see the README, "Scaling out", for pip and GPU/NCCL '
                        'builds)')
KVSTORE_HELP = (
    'local / device: the --gpus devices of one process (gradients summed on the CPU / on the '
    'GPUs, rescale_grad = 1 / devices: the mean). dist_sync, dist_device_sync, dist_async: '
    'several workers through parameter servers (start with python -m issegm.launch); the '
    'servers SUM the workers\' mean gradients, so N workers step N times as far as one: divide '
    '--base-lr by N to keep the one-machine step. horovod: several workers under horovodrun, '
    'one device each (its local rank picks it from --gpus); the gradients are AVERAGED, so N '
    'workers with --batch-images B step as one machine with N devices and a batch of N * B: '
    'keep that machine\'s --base-lr')
DETERMINISTIC_HELP = (
    'MXNET_ENFORCE_DETERMINISM=1 and MXNET_CUDNN_AUTOTUNE_DEFAULT=0 (util/kernels.py): on GPUs '
    'only deterministic kernels and no cuDNN autotuning, so a rerun gives the same numbers '
    '(untested here: no GPU); on the CPU it changes nothing')


class OneOf(argparse.Action):
    """Store a value of `allowed`; another one is the error `unknown --FLAG 'VALUE' (allowed:
    A, B)` (FlagParser gives this action to every flag added with `choices=`)."""

    def __init__(self, option_strings, dest, allowed=(), **kwargs):
        self.allowed = tuple(allowed)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, value, option_string=None):
        if value not in self.allowed:
            raise argparse.ArgumentError(None, 'unknown %s %r (allowed: %s)' % (
                '/'.join(self.option_strings), value, ', '.join(map(str, self.allowed))))
        setattr(namespace, self.dest, value)


class FlagParser(argparse.ArgumentParser):
    """argparse with the project's one-line errors: `error: MESSAGE` on stderr, exit status 2
    (argparse's), no usage block; a value outside `choices=` reads
    `unknown --FLAG 'VALUE' (allowed: A, B)` (the OneOf action; the usage still shows
    {A,B})."""

    def add_argument(self, *args, **kwargs):
        choices = kwargs.get('choices')
        if choices is not None and kwargs.get('action', 'store') == 'store':
            kwargs = {k: v for k, v in kwargs.items() if k != 'choices'}
            kwargs.update(action=OneOf, allowed=choices)
            kwargs.setdefault('metavar', '{%s}' % ','.join(map(str, choices)))
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        sys.stderr.flush()
        self.exit(2, 'error: %s\n' % message)


def parse_bool(text):
    """Upstream passes booleans as strings: `--with-prior True|False`, `--cache-images 0|1`."""
    value = str(text).strip().lower()
    if value in ('1', 'true', 'yes'):
        return True
    if value in ('0', 'false', 'no'):
        return False
    raise argparse.ArgumentTypeError('expected True/False or 1/0, got %r' % text)


def parse_scale_range(text):
    """`--scale-rate-range lo,hi` -> (lo, hi) with 0 < lo <= hi."""
    try:
        lo, hi = (float(v) for v in str(text).split(','))
    except ValueError:
        raise UserError('bad --scale-rate-range %r: expected lo,hi, e.g. 0.7,1.3' % (text,))
    if not 0 < lo <= hi:
        raise UserError('bad --scale-rate-range %r: need 0 < lo <= hi' % (text,))
    return lo, hi


GPUS_HELP = 'use cpu, cpu:N or a comma list of distinct GPU ids'


def parse_gpus(spec):
    """A `--gpus` value without MXNet: ('cpu', [0 .. N-1]) for `cpu` / `cpu:N`, ('gpu', ids)
    for `0,1,...` (distinct ids: `0,0` would put two model copies on one GPU); a UserError
    for anything else. The devices themselves: util.devices.parse_devices."""
    text = (spec or '').strip()
    if text.startswith('cpu'):
        count = text[len('cpu'):]
        if count == '':
            return 'cpu', [0]
        if count.startswith(':') and count[1:].isdigit() and int(count[1:]) > 0:
            return 'cpu', list(range(int(count[1:])))
        raise UserError('bad --gpus value %r: %s' % (spec, GPUS_HELP))
    try:
        ids = [int(x) for x in text.split(',') if x.strip() != '']
    except ValueError:
        raise UserError('bad --gpus value %r: %s' % (spec, GPUS_HELP))
    if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
        raise UserError('bad --gpus value %r: %s' % (spec, GPUS_HELP))
    return 'gpu', ids


def parse_test_scales(text):
    """`--test-scales 1024,2048` -> [1024, 2048] (positive integers, at least one)."""
    try:
        scales = [int(s) for s in str(text).split(',') if s.strip()]
    except ValueError:
        raise UserError('bad --test-scales %r: expected one or more comma-separated integers, '
                        'e.g. 2048 or 1024,2048' % (text,))
    if not scales or min(scales) <= 0:
        raise UserError('bad --test-scales %r: expected positive integers' % (text,))
    return scales


def check_test_steps(test_steps, stride):
    """`--test-steps N` for a model of feature stride `stride`: N must divide the stride
    (the N x N shifted passes interleave into maps at stride // N; upstream's integer division
    gives wrong-sized maps otherwise). Returns N."""
    divisors = [d for d in range(1, int(stride) + 1) if stride % d == 0]
    if test_steps not in divisors:
        raise UserError('bad --test-steps %s: it must divide the model\'s stride %d (allowed: %s)'
                        % (test_steps, stride, ', '.join(map(str, divisors))))
    return int(test_steps)


def prediction_flags():
    """A parent parser (argparse `parents=`) of the test-time flags evaluate.py and predict.py
    share, with one meaning in both: the test-time path of phase val (issegm/testtime/one_image.py,
    issegm/testtime/image_list.py), its devices, MXNet switches, helper threads and progress bar."""
    parser = FlagParser(add_help=False)
    a = parser.add_argument
    a('--test-scales', help='longer side(s) at test time, comma-separated; several are averaged '
                            '(default: the dataset\'s longer side, e.g. 2048)')
    a('--test-flipping', action='store_true', help='average with the mirrored image')
    a('--test-steps', type=int, default=1,
      help='N x N shifted network passes per image, predicting at stride // N (as upstream)')
    a('--gpus', default='0',
      help='cpu, cpu:N or GPU ids like 0,1 (the images are spread over all of them)')
    a('--no-cudnn', action='store_true', help='sets MXNET_CUDNN_AUTOTUNE_DEFAULT=0')
    a('--deterministic', action='store_true', help=DETERMINISTIC_HELP)
    a('--debug', action='store_true',
      help='MXNet\'s NaiveEngine (MXNET_ENGINE_TYPE=NaiveEngine) and debug logging, as upstream')
    a('--prefetch-threads', type=int, default=1,
      help='threads reading images and writing outputs while the network runs (0: inline)')
    a('--no-progress', action='store_true', help='no progress bar')
    return parser


# The argparse keywords of the flags upstream's training scripts (solve_ST.py, train_src.py)
# share: the MXNet switches of set_mxnet_switches and the ignored checkpoint schedule (a
# checkpoint is written after every epoch). train_src.py takes them through
# training_switch_flags(), the per-round script through issegm/rounds/run_flags.py's table.
TRAINING_SWITCHES = {
    '--check-start': dict(type=int, default=1, help='ignored, as upstream'),
    '--check-step': dict(type=int, default=4, help='ignored, as upstream'),
    '--debug': dict(action='store_true', help='MXNet\'s NaiveEngine (MXNET_ENGINE_TYPE='
                                              'NaiveEngine) and debug logging, as upstream'),
    '--backward-do-mirror': dict(
        action='store_true',
        help='recompute each residual unit in the backward pass: about half the activation '
             'memory for about one more forward pass per step (util/mirroring.py; it leaves '
             'MXNET_BACKWARD_DO_MIRROR off, which costs memory in MXNet 1.9.1)'),
    '--no-cudnn': dict(action='store_true', help='sets MXNET_CUDNN_AUTOTUNE_DEFAULT=0'),
    '--deterministic': dict(action='store_true', help=DETERMINISTIC_HELP),
}


def training_switch_flags():
    """A parent parser (argparse `parents=`) of TRAINING_SWITCHES."""
    parser = FlagParser(add_help=False)
    for flag, spec in TRAINING_SWITCHES.items():
        parser.add_argument(flag, **spec)
    return parser


def training_schedule_specs(to_epoch):
    """{flag: argparse keywords} of the epoch and learning-rate flags that yzou2/CBST
    issegm/solve_ST.py and issegm/train_src.py both define in parse_args (their --from-epoch
    default is the NNNN of a weights file named MODEL_ep-NNNN for this MODEL, else 0, set after
    parsing; their --stop-epoch is asserted in from-epoch < stop-epoch <= to-epoch before
    training); `to_epoch` is the script's --to-epoch default."""
    return {
        '--lr-type': dict(
            default='fixed', choices=LR_TYPES,
            help='fixed; step: a fixed rate too, as yzou2/CBST solve_ST.py and train_src.py '
                 '(parse_model_label keeps the type fixed; a warning says so); multistep: the lr '
                 'times 0.1 after each of --lr-steps; linear, poly: decay to --to-epoch '
                 '(default %(default)s)'),
        '--lr-steps': dict(default='', help='--lr-type multistep: iterations (batches, counted '
                                            'from the start of the schedule) after which the lr '
                                            'is multiplied by 0.1, e.g. 20000,40000'),
        '--weight-decay': dict(type=float, default=0.0005),
        '--from-epoch': dict(type=int, help='default: NNNN of the weights when they are this '
                                            'model\'s checkpoint MODEL_ep-NNNN.params, else 0 '
                                            '(yzou2/CBST solve_ST.py and train_src.py, '
                                            'parse_args)'),
        '--stop-epoch': dict(
            type=int, help='stop training after this epoch (from-epoch < stop-epoch <= '
                           'to-epoch); the lr schedule still spans to --to-epoch (default: '
                           '--to-epoch)'),
        '--to-epoch': dict(type=int, default=to_epoch, help='the epoch the lr schedule ends at'),
    }


def training_schedule_flags(to_epoch):
    """A parent parser of training_schedule_specs(to_epoch)."""
    parser = FlagParser(add_help=False)
    for flag, spec in training_schedule_specs(to_epoch).items():
        parser.add_argument(flag, **spec)
    return parser


def set_mxnet_switches(backward_do_mirror=False, no_cudnn=False, debug=False,
                       deterministic=False):
    """The environment of `--backward-do-mirror`, `--no-cudnn`, `--debug` and `--deterministic`
    (util.kernels.set_deterministic; not upstream's): variables MXNet reads when it builds a
    graph (the first two) or when it is imported (MXNET_ENGINE_TYPE), so call this before
    `import mxnet`. `--no-cudnn` and `--debug` set them as yzou2/CBST
    issegm/solve_ST.py and issegm/train_src.py (parse_args) do.

    `--backward-do-mirror` is the exception: yzou2/CBST solve_ST.py sets MXNET_BACKWARD_DO_MIRROR=1
    for it, which in MXNet 1.9.1 costs memory, so here it turns that variable OFF (also when
    exported: with it, MXNet mirrors the residual sums too and the saving is lost) and the
    training code marks the symbol instead (util/mirroring.py; issegm.training.fit, `mirror`)."""
    if backward_do_mirror:
        os.environ['MXNET_BACKWARD_DO_MIRROR'] = '0'
    if no_cudnn:
        os.environ['MXNET_CUDNN_AUTOTUNE_DEFAULT'] = '0'
    if debug:
        os.environ['MXNET_ENGINE_TYPE'] = 'NaiveEngine'
    if deterministic:
        set_deterministic()


def py2_str(value):
    """A number as upstream's Python 2 `str()` wrote it into a child's command line: floats
    with 12 significant digits ('%.12g', plus '.0' when that looks like an integer), so that
    e.g. 0.02 + 0.0025 + 0.0025 is passed as '0.025', not '0.024999999999999998' (QUIRK kept:
    yzou2/CBST solve_AO.py main, str(src_port) under Python 2)."""
    if isinstance(value, float):
        text = '%.12g' % value
        if text.lstrip('-').isdigit():
            text += '.0'
        return text
    return str(value)


def check_epochs(from_epoch, stop_epoch, to_epoch):
    """Training runs epochs from_epoch .. stop_epoch of a schedule that spans to to_epoch, as
    upstream's --stop-epoch (it asserted from_epoch < stop_epoch <= to_epoch); stop_epoch None
    is --stop-epoch's default, to_epoch. Returns the stop epoch."""
    stop_epoch = to_epoch if stop_epoch is None else stop_epoch
    if from_epoch >= stop_epoch:
        raise UserError('nothing to train: from epoch %d to epoch %d' % (from_epoch, stop_epoch))
    if stop_epoch > to_epoch:
        raise UserError('--stop-epoch %d is beyond --to-epoch %d (the end of the lr schedule)'
                        % (stop_epoch, to_epoch))
    return stop_epoch


def check_portion(flag, value):
    """A portion or probability flag: a UserError unless 0 <= value <= 1."""
    if not 0.0 <= value <= 1.0:
        raise UserError('%s must be in [0, 1], got %s' % (flag, value))
    return value


def check_positive(flag, value):
    """A count or size flag: a UserError unless value >= 1."""
    if value < 1:
        raise UserError('%s must be positive, got %d' % (flag, value))
    return value


def check_non_negative(flag, value):
    """A count flag where 0 means none (or inline): a UserError unless value >= 0."""
    if value < 0:
        raise UserError('%s must be >= 0, got %d' % (flag, value))
    return value


def check_at_least_one(flag, value):
    """A count flag (None: its default applies): a UserError unless value >= 1."""
    if value is not None and value < 1:
        raise UserError('%s must be at least 1, got %d' % (flag, value))
    return value
