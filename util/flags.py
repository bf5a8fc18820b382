"""Parsing of upstream-style flag values."""
import argparse


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
    from util.errors import UserError
    try:
        lo, hi = (float(v) for v in str(text).split(','))
    except ValueError:
        raise UserError('bad --scale-rate-range %r: expected lo,hi, e.g. 0.7,1.3' % (text,))
    if not 0 < lo <= hi:
        raise UserError('bad --scale-rate-range %r: need 0 < lo <= hi' % (text,))
    return lo, hi


def parse_test_scales(text):
    """`--test-scales 1024,2048` -> [1024, 2048] (positive integers, at least one)."""
    from util.errors import UserError
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
    from util.errors import UserError
    divisors = [d for d in range(1, int(stride) + 1) if stride % d == 0]
    if test_steps not in divisors:
        raise UserError('bad --test-steps %s: it must divide the model\'s stride %d (allowed: %s)'
                        % (test_steps, stride, ', '.join(map(str, divisors))))
    return int(test_steps)


def set_mxnet_switches(backward_do_mirror=False, no_cudnn=False, debug=False):
    """`--backward-do-mirror`, `--no-cudnn` and `--debug` as upstream's scripts set them:
    environment variables MXNet reads when it builds a graph (the first two) or when it is
    imported (MXNET_ENGINE_TYPE), so call this before `import mxnet`."""
    import os
    if backward_do_mirror:
        os.environ['MXNET_BACKWARD_DO_MIRROR'] = '1'
    if no_cudnn:
        os.environ['MXNET_CUDNN_AUTOTUNE_DEFAULT'] = '0'
    if debug:
        os.environ['MXNET_ENGINE_TYPE'] = 'NaiveEngine'


def py2_str(value):
    """A number as upstream's Python 2 `str()` wrote it into a child's command line: floats
    with 12 significant digits ('%.12g', plus '.0' when that looks like an integer), so that
    e.g. 0.02 + 0.0025 + 0.0025 is passed as '0.025', not '0.024999999999999998'."""
    if isinstance(value, float):
        text = '%.12g' % value
        if text.lstrip('-').isdigit():
            text += '.0'
        return text
    return str(value)


def check_epochs(from_epoch, stop_epoch, to_epoch):
    """Training runs epochs from_epoch .. stop_epoch of a schedule that spans to to_epoch, as
    upstream's --stop-epoch (it asserted from_epoch < stop_epoch <= to_epoch)."""
    from util.errors import UserError
    if from_epoch >= stop_epoch:
        raise UserError('nothing to train: from epoch %d to epoch %d' % (from_epoch, stop_epoch))
    if stop_epoch > to_epoch:
        raise UserError('--stop-epoch %d is beyond --to-epoch %d (the end of the lr schedule)'
                        % (stop_epoch, to_epoch))
