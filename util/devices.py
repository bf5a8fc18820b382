"""`--gpus` as MXNet contexts: `cpu` (or `cpu:N` for N CPU contexts, to test data parallelism)
or GPU ids `0,1,...`, checked against what this MXNet sees; a CUDA MXNet that cannot use its GPUs
says why in one line. How workers of one host share the GPUs, and why `--debug` takes one
device: the README, "Devices"."""
import ctypes
import os

import mxnet as mx

from util.errors import UserError
from util.flags import parse_gpus
from util.worker_devices import gpu_share, host_worker

__all__ = ['parse_devices', 'gpu_count', 'cuda_error_hint', 'cuda_versions']

# CUDA 11.x runs on any driver of CUDA 11.0 or later (minor-version compatibility): 450.80.02.
CUDA11_MIN_DRIVER = '450.80.02'

# cudaGetErrorString texts of the failures a GPU count meets, and what to do about each.
CUDA_ERROR_HINTS = (
    ('driver version is insufficient', 'update the NVIDIA driver (CUDA 11 needs >= %s)'
     % CUDA11_MIN_DRIVER),
    ('unsupported display driver / cuda driver combination',
     'the NVIDIA kernel module and its user-space library (libcuda) are of different driver '
     'versions: reboot, or reinstall the driver'),
    ('forward compatibility was attempted on non supported HW',
     'a CUDA forward-compatibility libcuda (package cuda-compat) is on the library path of a GPU '
     'that does not support it: remove it from LD_LIBRARY_PATH or update the driver'),
    ('stub library', 'the libcuda.so found is the CUDA toolkit\'s stub: install the NVIDIA '
                     'driver, or take the toolkit\'s stubs folder off LD_LIBRARY_PATH'),
    ('busy or unavailable', 'the GPUs are in use in exclusive-process mode or unavailable: see '
                            'nvidia-smi, or choose others with --gpus / CUDA_VISIBLE_DEVICES'),
)
DEFAULT_CUDA_HINT = 'check the NVIDIA driver with nvidia-smi (after a driver update: reboot)'


def cuda_error_hint(message):
    """What to do about the CUDA failure `message` (a cudaGetErrorString text)."""
    lowered = message.lower()
    return next((hint for text, hint in CUDA_ERROR_HINTS if text.lower() in lowered),
                DEFAULT_CUDA_HINT)


def _cuda_failure(error):
    """The line of an MXNetError that says what failed (MXNet's text after `CUDA: `, e.g.
    'unknown error'), without its traceback lines."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else repr(error)
    if 'CUDA: ' in last:
        return last.split('CUDA: ', 1)[1].strip()
    return last[len('MXNetError: '):] if last.startswith('MXNetError: ') else last


def _loaded_library(prefix):
    """The path of a shared library this process has loaded whose name starts with `prefix`."""
    try:
        with open('/proc/self/maps') as f:
            paths = [line.split()[-1] for line in f if '/' in line]
    except OSError:
        return None
    return next((p for p in paths if os.path.basename(p).startswith(prefix)), None)


def _version(library, function):
    """The CUDA version (e.g. 11020) a CUDA library's `function(int *)` reports, or None."""
    if library is None:
        return None
    try:
        value = ctypes.c_int(0)
        if getattr(ctypes.CDLL(library), function)(ctypes.byref(value)) != 0:
            return None
        return value.value or None
    except (OSError, AttributeError):
        return None


def cuda_versions():
    """(the CUDA version the driver supports, the CUDA runtime's version) as 11020 for 11.2,
    each None when unknown: read from the libcuda and libcudart the CUDA MXNet loaded."""
    return (_version(_loaded_library('libcuda.so'), 'cuDriverGetVersion'),
            _version(_loaded_library('libcudart.so'), 'cudaRuntimeGetVersion'))


def _cuda_text(version):
    return '%d.%d' % (version // 1000, version % 1000 // 10)


def _no_gpu_reason():
    """Why a CUDA MXNet counts no GPU: MXNet 1.9.1 gives 0 for a driver older than its CUDA
    runtime as for a machine without GPUs (include/mxnet/base.h, Context::GetGPUCount)."""
    driver, runtime = cuda_versions()
    if driver is not None and runtime is not None and driver // 1000 < runtime // 1000:
        return ('the NVIDIA driver supports CUDA %s only, this MXNet\'s runtime is CUDA %s: '
                'update the driver (CUDA 11 needs >= %s)'
                % (_cuda_text(driver), _cuda_text(runtime), CUDA11_MIN_DRIVER))
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is not None:
        return ('CUDA_VISIBLE_DEVICES=%r may hide them: it must name GPUs that nvidia-smi lists'
                % visible)
    return ('no GPU found, or a driver too old for this MXNet\'s CUDA (CUDA 11 needs >= %s): '
            'check nvidia-smi' % CUDA11_MIN_DRIVER)


def gpu_count(spec):
    """The GPUs this MXNet sees; a UserError saying why it sees none (`spec`: the --gpus value
    named in the message)."""
    try:
        count = mx.context.num_gpus()
    except mx.base.MXNetError as e:  # MXNet's CHECK on cudaGetDeviceCount's status
        failure = _cuda_failure(e)
        raise UserError('--gpus %s: CUDA cannot start (%s): %s; or use --gpus cpu'
                        % (spec, failure, cuda_error_hint(failure)))
    if count > 0:
        return count
    if not mx.runtime.Features().is_enabled('CUDA'):
        raise UserError('--gpus %s asks for GPUs, but this MXNet is built without CUDA (the pip '
                        'package mxnet): install a CUDA one (README, "Installing for GPUs") or '
                        'use --gpus cpu' % spec)
    raise UserError('--gpus %s: this CUDA MXNet sees no GPU: %s; or use --gpus cpu'
                    % (spec, _no_gpu_reason()))


def parse_devices(spec, debug=False):
    """The MXNet contexts of a `--gpus` value: the GPUs checked to exist, and of them this
    worker's share when several workers of a job run on this host (util.worker_devices.gpu_share; CPU
    contexts are not split: the workers share the CPU); `debug` (MXNet's NaiveEngine) allows
    one device only."""
    kind, ids = parse_gpus(spec)
    if kind == 'cpu':
        contexts = [mx.cpu(i) for i in ids]
    else:
        available = gpu_count(spec)
        if max(ids) >= available:
            raise UserError('--gpus %s asks for GPU %d, but MXNet sees only %d GPU(s); use '
                            '--gpus cpu or ids below %d' % (spec, max(ids), available, available))
        contexts = [mx.gpu(i) for i in gpu_share(spec, ids, *host_worker())]
    if debug and len(contexts) > 1:
        # NaiveEngine is one engine for the threads of all devices and not safe across them
        # (apache/mxnet#8966: "NaiveEngine only support synchronize Push so far" with
        # executors on gpu(0) and gpu(1)).
        raise UserError('--debug (MXNet\'s NaiveEngine) runs on one device only, --gpus %s gives '
                        '%d: use one, e.g. --gpus %s' % (spec, len(contexts),
                                                         'cpu' if kind == 'cpu' else ids[0]))
    return contexts
