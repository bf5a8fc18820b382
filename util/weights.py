"""Weight files in the published format: an `mx.nd.save` dict keyed `arg:NAME` / `aux:NAME`."""
import collections
import os

import mxnet as mx
import numpy as np

from util.errors import UserError
from util.files import atomic_path

FitReport = collections.namedtuple('FitReport', 'missing unexpected wrong_shape')


def load_weights(path):
    """Read a weight file into (arg_params, aux_params) dicts of NDArrays.

    A missing, unreadable or foreign file is a UserError naming it.
    """
    if not path or not os.path.isfile(path):
        raise UserError('weight file not found: %s' % path)
    try:
        saved = mx.nd.load(path)
    except Exception:  # MXNetError (with a C++ stack) on anything that is not an NDArray file
        raise UserError('cannot read weight file %s: not an MXNet NDArray file (or corrupt)'
                        % path)
    if not isinstance(saved, dict) or not saved:
        raise UserError('weight file %s holds no named parameters' % path)
    arg_params, aux_params = {}, {}
    for key, value in saved.items():
        kind, _, name = key.partition(':')
        if kind == 'arg':
            arg_params[name] = value
        elif kind == 'aux':
            aux_params[name] = value
        else:
            raise UserError('weight file %s has key %r that is neither arg:NAME nor aux:NAME'
                            % (path, key))
    return arg_params, aux_params


def save_weights(path, arg_params, aux_params):
    """Write a weight file atomically (util.files.atomic_path: a temporary file in the same
    folder, then a rename); a full disk is one error line naming the folder and the size."""
    saved = {'arg:%s' % k: _as_nd(v) for k, v in arg_params.items()}
    saved.update({'aux:%s' % k: _as_nd(v) for k, v in aux_params.items()})
    needed = sum(v.size * np.dtype(v.dtype).itemsize for v in saved.values())
    with atomic_path(path, needed) as tmp:
        mx.nd.save(tmp, saved)


def _as_nd(value):
    return value if isinstance(value, mx.nd.NDArray) else mx.nd.array(value)


def check_fit(expected, arg_params, aux_params):
    """Compare loaded parameters with the model's [(kind, name, shape)] list."""
    loaded = {('arg', k): tuple(v.shape) for k, v in arg_params.items()}
    loaded.update({('aux', k): tuple(v.shape) for k, v in aux_params.items()})
    wanted = {(kind, name): tuple(shape) for kind, name, shape in expected}
    missing = [key for key in wanted if key not in loaded]
    unexpected = sorted(key for key in loaded if key not in wanted)
    wrong_shape = [(key, wanted[key], loaded[key]) for key in wanted
                   if key in loaded and loaded[key] != wanted[key]]
    return FitReport(missing, unexpected, wrong_shape)


def describe_misfit(report):
    """Human-readable lines, one per missing, unexpected or wrong-shape parameter."""
    lines = ['missing %s:%s' % key for key in report.missing]
    lines += ['unexpected %s:%s' % key for key in report.unexpected]
    lines += ['wrong shape %s:%s: model wants %s, file has %s'
              % (key + ('x'.join(map(str, want)), 'x'.join(map(str, got))))
              for key, want, got in report.wrong_shape]
    return lines


def load_for_model(path, expected, allow_missing=False, allow_unexpected=False):
    """Load a weight file and insist it fits the model; returns (arg_params, aux_params).

    With allow_missing, parameters absent from the file are left for the initializer (source
    training from the ImageNet classifier); with allow_unexpected, extra ones are dropped.
    Wrong shapes are always an error.
    """
    arg_params, aux_params = load_weights(path)
    report = check_fit(expected, arg_params, aux_params)
    problems = list(report.wrong_shape)
    bad = FitReport([] if allow_missing else report.missing,
                    [] if allow_unexpected else report.unexpected, problems)
    if bad.missing or bad.unexpected or bad.wrong_shape:
        lines = describe_misfit(bad)
        more = '' if len(lines) <= 5 else ' (and %d more)' % (len(lines) - 5)
        raise UserError('weight file %s does not fit the model: %s%s (run issegm/inspect_params.py '
                        'for the full list)' % (path, '; '.join(lines[:5]), more))
    unexpected = {name for kind, name in report.unexpected}
    arg_params = {k: v for k, v in arg_params.items() if k not in unexpected}
    aux_params = {k: v for k, v in aux_params.items() if k not in unexpected}
    return arg_params, aux_params


def initial_weights(expected, seed=0):
    """Freshly initialised (arg_params, aux_params) for [(kind, name, shape)], as training would
    start them: Xavier (gaussian, fan-in, magnitude 2) weights, zero biases/betas, unit gammas,
    zero moving means and unit moving variances. Used for tests and for published-format files."""
    mx.random.seed(seed)
    init = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
    params = ({}, {})
    for kind, name, shape in expected:
        if kind == 'aux':  # BatchNorm statistics, as MXNet's own aux initialisers set them
            params[1][name] = (mx.nd.ones if name.endswith('_var') else mx.nd.zeros)(shape)
            continue
        arr = mx.nd.zeros(shape)
        init(mx.init.InitDesc(name), arr)
        params[0][name] = arr
    return params
