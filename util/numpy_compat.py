"""The NumPy names MXNet 1.9.1's own Python files read and newer NumPy releases removed.

`restore_removed_names()` adds back only the names the installed NumPy lacks, in this process's
`numpy` module (nothing on disk); util/__init__.py and issegm/__init__.py call it before MXNet is
ever imported. On NumPy 1.23.5 (the pin for Python 3.9-3.11) it changes nothing.
"""
# MXNet 1.9.1 was written for NumPy < 1.24: `import mxnet` reads `numpy.bool` (removed in 1.24,
# back in 2.0), constants, functions and `numpy.compat` that 2.0 removed, and `in1d`/`trapz`
# (removed in 2.4).
# The functions are distinct small functions, never aliases: MXNet registers its operators under
# NumPy's function objects (mxnet/numpy_dispatch_protocol.py, `_implements`), so
# `numpy.alltrue = numpy.all` would put MXNet's `alltrue` in `numpy.all`'s slot.
# Not restored: `numpy.int` (read only by mxnet/test_utils.py helpers for MXNet's own tests) and
# `ndarray.tostring` (mxnet/recordio.py; a method of NumPy's C type cannot be added back; the
# project does not use recordio).
import warnings

import numpy as np

__all__ = ['REMOVED_NAMES', 'RESTORED', 'restore_removed_names']

# Names restore_removed_names() added to this process's numpy, in order (empty on NumPy 1.23.5).
RESTORED = []


# mxnet/numpy_dispatch_protocol.py registers these three by name at import (removed in NumPy 2.0).
def sometrue(*args, **kwargs):
    """NumPy 1.x's `sometrue`: `any`."""
    return np.any(*args, **kwargs)


def product(*args, **kwargs):
    """NumPy 1.x's `product`: `prod`."""
    return np.prod(*args, **kwargs)


def round_(a, decimals=0, out=None):
    """NumPy 1.x's `round_`: `round`."""
    return np.round(a, decimals=decimals, out=out)


# mxnet/numpy/fallback.py binds these at import (alltrue, msort: removed in 2.0; in1d, trapz: 2.4).
def alltrue(*args, **kwargs):
    """NumPy 1.x's `alltrue`: `all`."""
    return np.all(*args, **kwargs)


def msort(a):
    """NumPy 1.x's `msort`: a sorted copy along the first axis."""
    return np.sort(a, axis=0)


def in1d(ar1, ar2, assume_unique=False, invert=False, **kwargs):
    """NumPy 1.x's `in1d`: `isin` on the flattened first array."""
    return np.isin(ar1, ar2, assume_unique=assume_unique, invert=invert, **kwargs).ravel()


def trapz(y, x=None, dx=1.0, axis=-1):
    """NumPy 1.x's `trapz`: `trapezoid` (its name since NumPy 2.0)."""
    trapezoid = np.trapezoid if hasattr(np, 'trapezoid') else np.trapz  # NumPy 1.x: tests only
    return trapezoid(y, x=x, dx=dx, axis=axis)


def _expired_financial(name):
    """A stand-in for a financial function (NEP 32): NumPy 1.20-1.26 still answered these names
    with a function that raises, which mxnet/numpy/fallback.py binds at import."""
    message = ('In accordance with NEP 32, the function %s was removed from NumPy version 1.20.  '
               'A replacement for this function is available in the numpy_financial library: '
               'https://pypi.org/project/numpy-financial' % name)

    def expired(*args, **kwargs):
        raise RuntimeError(message)
    expired.__name__ = expired.__qualname__ = name
    expired.__doc__ = 'Removed from NumPy (NEP 32): raises RuntimeError as NumPy 1.20-1.26 did.'
    return expired


class _Compat:
    """NumPy 1.x's `numpy.compat`, only the name MXNet reads: mxnet/ndarray/numpy/_op.py and
    mxnet/symbol/numpy/_symbol.py test `isinstance(mode, numpy.compat.basestring)` when called."""
    basestring = str


# name -> value. Types and constants may be plain values; functions must be distinct objects.
REMOVED_NAMES = {
    'sometrue': sometrue,
    'product': product,
    'round_': round_,
    'alltrue': alltrue,
    'msort': msort,
    'in1d': in1d,
    'trapz': trapz,
    # mxnet/numpy/fallback.py, at import (removed from the namespace in NumPy 2.0)
    'mirr': _expired_financial('mirr'),
    'npv': _expired_financial('npv'),
    'pmt': _expired_financial('pmt'),
    'ppmt': _expired_financial('ppmt'),
    'pv': _expired_financial('pv'),
    'rate': _expired_financial('rate'),
    # mxnet/numpy/utils.py `bool = onp.bool` at import; mxnet/numpy/multiarray.py,
    # mxnet/ndarray/numpy/_op.py, mxnet/symbol/numpy/_symbol.py when called. NumPy 1.23's
    # deprecated `numpy.bool` was the builtin (removed in 1.24; 2.0 brought back `bool_` under it).
    'bool': bool,
    # mxnet/numpy/utils.py, at import (removed in NumPy 2.0)
    'PZERO': 0.0,
    'NZERO': -0.0,
    'PINF': float('inf'),
    'NINF': float('-inf'),
    'NAN': float('nan'),
    'NaN': float('nan'),
    # mxnet/gluon/contrib/estimator/event_handler.py, a default argument (removed in NumPy 2.0)
    'Inf': float('inf'),
    'compat': _Compat,
}


def _numpy_has(name):
    with warnings.catch_warnings():  # NumPy 1.x warns on its deprecated names (bool, financial)
        warnings.simplefilter('ignore')
        return hasattr(np, name)


def restore_removed_names():
    """Add to `numpy` the names of REMOVED_NAMES it lacks; call before `import mxnet`. Idempotent."""
    for name, value in REMOVED_NAMES.items():
        if not _numpy_has(name):
            setattr(np, name, value)
            RESTORED.append(name)
