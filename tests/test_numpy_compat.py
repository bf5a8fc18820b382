"""util.numpy_compat: the NumPy names MXNet 1.9.1 reads are there whatever NumPy is installed,
restored only where NumPy lacks them, and MXNet imports and trains under the pinned NumPy."""
import math

import numpy as np
import pytest

from util import numpy_compat
from util.numpy_compat import REMOVED_NAMES, RESTORED

# NumPy's history of each name: (the release that removed it, the release that brought it back).
HISTORY = {name: ('2.0.0', None) for name in (
    'sometrue', 'product', 'round_', 'alltrue', 'msort', 'mirr', 'npv', 'pmt', 'ppmt', 'pv',
    'rate', 'PZERO', 'NZERO', 'PINF', 'NINF', 'NAN', 'NaN', 'Inf', 'compat')}
HISTORY.update({'in1d': ('2.4.0', None), 'trapz': ('2.4.0', None), 'bool': ('1.24.0', '2.0.0')})


def lacks(name, version=np.__version__):
    """Whether NumPy `version` lacks `name`, from HISTORY."""
    removed, back = HISTORY[name]
    v = np.lib.NumpyVersion(version)
    return v >= removed and (back is None or v < back)


def test_restores_exactly_the_names_this_numpy_lacks():
    assert set(REMOVED_NAMES) == set(HISTORY)
    assert sorted(RESTORED) == sorted(n for n in HISTORY if lacks(n))
    assert not [n for n in HISTORY if lacks(n, '1.23.5')]  # the 3.9-3.11 pin: nothing changes
    numpy_compat.restore_removed_names()  # a second call (each __init__ calls it) adds nothing
    assert sorted(RESTORED) == sorted(n for n in HISTORY if lacks(n))


def check_financial(f):
    with pytest.raises(RuntimeError, match='numpy_financial'):
        f(0.1, 10, 100)


def check_sign(value, sign):
    assert value == 0 and math.copysign(1.0, value) == sign


# What each restored name must do: NumPy 1.23's behaviour, computed by hand.
CHECKS = {
    'sometrue': lambda f: np.testing.assert_array_equal(f([[0, 0], [0, 1]], axis=0), [False, True]),
    'alltrue': lambda f: np.testing.assert_array_equal(f([[1, 0], [1, 1]], axis=1), [False, True]),
    'product': lambda f: np.testing.assert_array_equal(f([[1, 2], [3, 4]], axis=1), [2, 12]),
    'round_': lambda f: np.testing.assert_array_equal(f([0.25, -1.55, 2.5], 1), [0.2, -1.6, 2.5]),
    'msort': lambda f: np.testing.assert_array_equal(f([[3, 1], [1, 2], [2, 0]]),
                                                     [[1, 0], [2, 1], [3, 2]]),
    'in1d': lambda f: (np.testing.assert_array_equal(f([[1, 2], [3, 4]], [2, 3]),
                                                     [False, True, True, False]),
                       np.testing.assert_array_equal(f([1, 2], [2], invert=True), [True, False])),
    'trapz': lambda f: (np.testing.assert_allclose(f([1, 2, 3]), 4.0),
                        np.testing.assert_allclose(f([1, 2, 3], x=[0, 1, 3]), 6.5)),
    'bool': lambda v: np.testing.assert_equal(np.dtype(v), np.dtype(np.bool_)),
    'PZERO': lambda v: check_sign(v, 1.0),
    'NZERO': lambda v: check_sign(v, -1.0),
    'PINF': lambda v: np.testing.assert_equal(v, math.inf),
    'Inf': lambda v: np.testing.assert_equal(v, math.inf),
    'NINF': lambda v: np.testing.assert_equal(v, -math.inf),
    'NAN': lambda v: np.testing.assert_equal(math.isnan(v), True),
    'NaN': lambda v: np.testing.assert_equal(math.isnan(v), True),
    'compat': lambda v: np.testing.assert_equal(v.basestring, str),
}
CHECKS.update({name: check_financial for name in ('mirr', 'npv', 'pmt', 'ppmt', 'pv', 'rate')})


@pytest.mark.parametrize('name', sorted(HISTORY))
def test_each_restored_name_does_what_numpy_1_23s_did(name):
    CHECKS[name](REMOVED_NAMES[name])
    if name in RESTORED:
        assert getattr(np, name) is REMOVED_NAMES[name]


def test_restored_functions_are_distinct_objects_not_numpy_aliases():
    """MXNet keys its operator table by NumPy's function objects: an alias would take the slot
    of the function it aliases."""
    functions = [v for v in REMOVED_NAMES.values() if callable(v) and v not in (bool,)]
    numpy_own = [np.any, np.all, np.prod, np.round, np.around, np.sort, np.isin]
    assert len({id(f) for f in functions}) == len(functions)
    assert not [f for f in functions if any(f is g for g in numpy_own)]


def test_numpy_functions_on_mxnet_arrays_reach_the_right_mxnet_operator():
    """NumPy's any/all/prod/round on mx.np arrays dispatch to MXNet (numpy_dispatch_protocol.py),
    and boolean masks (multiarray.py reads numpy.bool) work."""
    import mxnet as mx
    a = mx.np.array([[0.0, 2.0], [3.0, 4.0]])
    results = {'any': np.any(a, axis=1), 'all': np.all(a, axis=1), 'prod': np.prod(a, axis=1),
               'round': np.round(a / 3, 1), 'sum': np.sum(a)}
    assert all(isinstance(r, mx.np.ndarray) for r in results.values())
    np.testing.assert_array_equal(results['any'].asnumpy(), [True, True])
    np.testing.assert_array_equal(results['all'].asnumpy(), [False, True])
    np.testing.assert_array_equal(results['prod'].asnumpy(), [0.0, 12.0])
    np.testing.assert_allclose(results['round'].asnumpy(), [[0.0, 0.7], [1.0, 1.3]], rtol=1e-6)
    assert float(results['sum']) == 9.0
    np.testing.assert_array_equal(a[a > 1.5].asnumpy(), [2.0, 3.0, 4.0])


def test_mxnet_forward_and_backward_under_this_numpy():
    """A conv/BN/pool/FC symbol binds, runs forward and backward; the FC head's output and
    weight gradient equal NumPy's."""
    import mxnet as mx
    data = mx.sym.Variable('data')
    net = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name='conv')
    net = mx.sym.BatchNorm(net, fix_gamma=False, name='bn')
    net = mx.sym.Pooling(mx.sym.relu(net), kernel=(2, 2), stride=(2, 2), pool_type='max')
    feat = mx.sym.flatten(net)
    out = mx.sym.FullyConnected(feat, num_hidden=3, name='fc')
    group = mx.sym.Group([feat, out])
    rng = np.random.RandomState(0)
    exe = group.simple_bind(mx.cpu(), data=(2, 1, 6, 6))
    for name, arr in exe.arg_dict.items():
        arr[:] = rng.uniform(-1, 1, arr.shape).astype(np.float32)
    exe.forward(is_train=True)
    feat_np, out_np = (o.asnumpy() for o in exe.outputs)
    w, b = exe.arg_dict['fc_weight'].asnumpy(), exe.arg_dict['fc_bias'].asnumpy()
    np.testing.assert_allclose(out_np, feat_np @ w.T + b, rtol=1e-5, atol=1e-5)
    exe.backward([mx.nd.zeros(feat_np.shape), mx.nd.ones(out_np.shape)])
    np.testing.assert_allclose(exe.grad_dict['fc_weight'].asnumpy(),
                               np.tile(feat_np.sum(axis=0), (3, 1)), rtol=1e-5, atol=1e-5)
    conv_grad = exe.grad_dict['conv_weight'].asnumpy()
    assert conv_grad.dtype == np.float32 and np.isfinite(conv_grad).all() and conv_grad.any()
