"""`--gpus` (README, "Devices"): a CUDA MXNet that cannot start says why in one line (simulated:
MXNet's GPU count raising its CUDA errors, a library the loader cannot find), GPU ids checked
and shared by the workers of one host, `--debug` on one device only, and a bad value stopping
before any output folder exists."""
import os
import subprocess
import sys

import mxnet as mx
import pytest

from issegm import evaluate, predict, train_src
from issegm.rounds import orchestrator
from test_safety import _small_gta
from util import devices
from util.errors import UserError, cli_entry
from util.flags import parse_gpus
from util.ps_launcher import build_local_tasks
from util.worker_devices import HOST_WORKER_ENV, devices_per_worker, gpu_share, host_worker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mxnet_error(code, text):
    """An MXNetError as MXNet 1.9.1 raises a failed CHECK of the GPU count (include/mxnet/base.h,
    Context::GetGPUCount: CHECK_EQ(e, cudaSuccess) << " CUDA: " << cudaGetErrorString(e))."""
    return mx.base.MXNetError('Traceback (most recent call last):\n  File "../include/mxnet/'
                              'base.h", line 458\nMXNetError: Check failed: (e) == (cudaSuccess)'
                              ' (%d vs. 0) :  CUDA: %s' % (code, text))


def _gpus(monkeypatch, count=None, error=None):
    def num_gpus():
        if error is not None:
            raise error
        return count
    monkeypatch.setattr(mx.context, 'num_gpus', num_gpus)


def test_gpu_values_are_parsed_without_mxnet_and_repeated_ids_refused():
    assert parse_gpus('cpu') == ('cpu', [0]) and parse_gpus('cpu:3') == ('cpu', [0, 1, 2])
    assert parse_gpus('1,3') == ('gpu', [1, 3]) and parse_gpus(' 0, 2 ') == ('gpu', [0, 2])
    for bad in ('0,0', '1,3,1', 'gpu', 'cpu:0', 'cpu:x', '0,x', '-1', ''):
        with pytest.raises(UserError, match='bad --gpus value .*distinct GPU ids'):
            parse_gpus(bad)


@pytest.mark.parametrize('code,text,hint', [
    (803, 'system has unsupported display driver / cuda driver combination',
     'are of different driver versions: reboot, or reinstall the driver'),
    (804, 'forward compatibility was attempted on non supported HW',
     'remove it from LD_LIBRARY_PATH or update the driver'),
    (34, 'CUDA driver is a stub library', 'take the toolkit\'s stubs folder off LD_LIBRARY_PATH'),
    (46, 'all CUDA-capable devices are busy or unavailable', 'exclusive-process mode'),
    (999, 'unknown error', 'check the NVIDIA driver with nvidia-smi'),
])
def test_a_cuda_failure_of_the_gpu_count_is_named_with_its_hint(monkeypatch, code, text, hint):
    _gpus(monkeypatch, error=_mxnet_error(code, text))
    with pytest.raises(UserError) as caught:
        devices.parse_devices('0,1')
    message = str(caught.value)
    assert message.startswith('--gpus 0,1: CUDA cannot start (%s): ' % text), message
    assert hint in message and message.endswith('; or use --gpus cpu')
    assert '\n' not in message and 'Traceback' not in message


def test_no_gpu_tells_a_cpu_build_from_a_cuda_build_and_an_old_driver(monkeypatch):
    _gpus(monkeypatch, count=0)
    # this machine's MXNet is the CPU wheel
    with pytest.raises(UserError, match=r'--gpus 0 asks for GPUs, but this MXNet is built '
                                        r'without CUDA \(the pip package mxnet\)'):
        devices.parse_devices('0')

    class CudaBuild:
        def is_enabled(self, name):
            return name == 'CUDA'
    monkeypatch.setattr(mx.runtime, 'Features', CudaBuild)
    # MXNet 1.9.1 counts 0 GPUs for a driver older than its runtime: the versions tell
    monkeypatch.setattr(devices, 'cuda_versions', lambda: (10020, 11020))
    with pytest.raises(UserError) as caught:
        devices.parse_devices('0')
    assert str(caught.value) == (
        '--gpus 0: this CUDA MXNet sees no GPU: the NVIDIA driver supports CUDA 10.2 only, this '
        'MXNet\'s runtime is CUDA 11.2: update the driver (CUDA 11 needs >= 450.80.02); or use '
        '--gpus cpu')
    monkeypatch.setattr(devices, 'cuda_versions', lambda: (11040, 11020))
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    with pytest.raises(UserError, match="CUDA_VISIBLE_DEVICES='' may hide them"):
        devices.parse_devices('0')
    monkeypatch.delenv('CUDA_VISIBLE_DEVICES')
    monkeypatch.setattr(devices, 'cuda_versions', lambda: (None, None))
    with pytest.raises(UserError, match='no GPU found, or a driver too old'):
        devices.parse_devices('0')


def test_cuda_versions_are_none_without_the_cuda_libraries():
    assert devices.cuda_versions() == (None, None)  # the CPU wheel loads no libcuda/libcudart


def test_gpu_ids_are_checked_against_the_count(monkeypatch):
    _gpus(monkeypatch, count=4)
    assert devices.parse_devices('1,3') == [mx.gpu(1), mx.gpu(3)]
    with pytest.raises(UserError, match='asks for GPU 4, but MXNet sees only 4 GPU'):
        devices.parse_devices('0,4')


def test_workers_of_one_host_share_the_gpus(monkeypatch):
    _gpus(monkeypatch, count=4)
    assert host_worker({}) == (0, 1) and host_worker({HOST_WORKER_ENV: '1/2'}) == (1, 2)
    assert gpu_share('0,1,2,3', [0, 1, 2, 3], 1, 2) == [2, 3]
    monkeypatch.setenv(HOST_WORKER_ENV, '1/2')
    assert devices.parse_devices('0,1,2,3') == [mx.gpu(2), mx.gpu(3)]
    assert devices.parse_devices('cpu:2') == [mx.cpu(0), mx.cpu(1)]  # the CPU is shared
    with pytest.raises(UserError) as caught:
        devices.parse_devices('0,1,2')
    assert str(caught.value) == (
        '--gpus 0,1,2 lists 3 GPU(s), which 2 workers on one host cannot share equally (each '
        'takes its own GPUs): give a multiple of 2 ids, e.g. --gpus 0,1')
    # the local launcher numbers its workers (and only them) on the host
    tasks = build_local_tasks(['x'], 2, 1, port=1234)
    assert [t.env.get(HOST_WORKER_ENV) for t in tasks] == [None, None, '0/2', '1/2']


def test_debug_takes_one_device(monkeypatch):
    _gpus(monkeypatch, count=4)
    for spec, example in (('cpu:2', 'cpu'), ('0,1', '0')):
        with pytest.raises(UserError) as caught:
            devices.parse_devices(spec, debug=True)
        assert str(caught.value) == (
            '--debug (MXNet\'s NaiveEngine) runs on one device only, --gpus %s gives 2: use '
            'one, e.g. --gpus %s' % (spec, example))
    assert devices.parse_devices('1', debug=True) == [mx.gpu(1)]
    monkeypatch.setenv(HOST_WORKER_ENV, '0/2')  # each of two workers gets one of 0,1
    assert devices.parse_devices('0,1', debug=True) == [mx.gpu(0)]


def test_debug_of_a_horovod_rank_is_checked_on_its_one_device(tmp_path, monkeypatch, capsys):
    """A Horovod rank keeps one device of --gpus (issegm.training.start_worker), so --debug
    with --gpus 0,1 is not refused there before the rank has picked it."""
    root, lst, weights = _small_gta(tmp_path)
    seen = []

    def parse_devices(spec, debug=False):
        seen.append(debug)
        raise UserError('stop here')
    monkeypatch.setattr(devices, 'parse_devices', parse_devices)
    for switch in ('MXNET_ENGINE_TYPE',):  # --debug sets it: restored (unset) after the test
        monkeypatch.setenv(switch, '')
        monkeypatch.delenv(switch)
    for kvstore in ('horovod', 'device'):
        with pytest.raises(SystemExit):
            train_src.main(['--data-root', root, '--split', lst, '--weights', weights,
                            '--output', str(tmp_path / 'out'), '--gpus', '0,1', '--debug',
                            '--kvstore', kvstore])
    assert seen == [False, True] and 'stop here' in capsys.readouterr().err


def _orchestrator(tmp_path, *extra):
    weights = tmp_path / 'gta_rna-a1_cls19_s8_ep-0000.params'
    weights.write_bytes(b'')
    return orchestrator.parse_args(['--output', str(tmp_path / 'o'), '--weights', str(weights),
                                    '--data-root', 'D', '--data-root-tgt', 'T'] + list(extra))


def test_the_orchestrator_splits_or_refuses_the_gpus_of_its_workers(tmp_path):
    def devices(*extra):
        args = _orchestrator(tmp_path, *extra)
        return devices_per_worker(args.gpus, args.workers, args.launcher)
    assert devices('--gpus', '0,1,2,3') == 4
    assert devices('--gpus', '0,1,2,3', '--workers', '2') == 2  # local launcher
    assert devices('--gpus', 'cpu:2', '--workers', '2') == 2  # the CPU is not split
    hosts = tmp_path / 'hosts'
    hosts.write_text('h1\nh2\n')
    assert devices('--gpus', '0,1', '--workers', '2', '--launcher', 'ssh',
                   '--hostfile', str(hosts)) == 2
    with pytest.raises(UserError, match='--gpus 0,1,2 lists 3 GPU'):
        _orchestrator(tmp_path, '--gpus', '0,1,2', '--workers', '2')
    with pytest.raises(UserError, match="bad --gpus value '0,0'"):
        _orchestrator(tmp_path, '--gpus', '0,0')
    with pytest.raises(UserError, match='--workers 3 with --launcher ssh and --gpus 0,1: .* '
                                        'give one host per worker'):
        _orchestrator(tmp_path, '--gpus', '0,1', '--workers', '3', '--launcher', 'ssh',
                      '--hostfile', str(hosts))


def test_a_library_the_loader_cannot_find_is_one_line(tmp_path, capsys):
    """A CUDA MXNet's libmxnet.so loaded without cuDNN: the dynamic loader's OSError (a real
    one, from a fake package whose import loads a library that is not there)."""
    package = tmp_path / 'fake_cuda_mxnet'
    package.mkdir()
    (package / '__init__.py').write_text('import ctypes\nctypes.CDLL("libcudnn.so.8")\n')
    sys.path.insert(0, str(tmp_path))

    @cli_entry
    def main(argv=None):
        import fake_cuda_mxnet  # noqa: F401
    try:
        with pytest.raises(SystemExit) as stop:
            main([])
    finally:
        sys.path.remove(str(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and len(err) == 1, err
    assert err[0].startswith('error: a shared library is missing (libcudnn.so.8: cannot open '
                             'shared object file')
    assert 'install cuDNN 8 for CUDA 11 (package libcudnn8)' in err[0]

    @cli_entry
    def other(argv=None):
        raise FileNotFoundError(2, 'No such file or directory', 'x.png')
    with pytest.raises(FileNotFoundError):  # other OSErrors are not rewritten
        other([])


@pytest.mark.parametrize('gpus,debug,message', [
    ('0', False, 'error: --gpus 0 asks for GPUs, but this MXNet is built without CUDA'),
    ('0,0', False, "error: bad --gpus value '0,0'"),
    ('cpu:2', True, "error: --debug (MXNet's NaiveEngine) runs on one device only"),
])
def test_a_bad_device_stops_before_any_output(tmp_path, capsys, monkeypatch, gpus, debug,
                                              message):
    for switch in ('MXNET_ENGINE_TYPE', 'MXNET_CUDNN_AUTOTUNE_DEFAULT'):  # --debug sets them:
        monkeypatch.setenv(switch, '')  # restored (unset) after the test
        monkeypatch.delenv(switch)
    root, lst, weights = _small_gta(tmp_path)
    image = os.path.join(root, 'images', sorted(os.listdir(os.path.join(root, 'images')))[0])
    flags = ['--gpus', gpus] + (['--debug'] if debug else [])
    out = tmp_path / 'out'
    for main, argv in ((train_src.main, ['--data-root', root, '--split', lst]),
                       (evaluate.main, ['--data-root', root, '--split', lst]),
                       (predict.main, [image])):
        with pytest.raises(SystemExit) as stop:
            main(argv + ['--weights', weights, '--output', str(out)] + flags)
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 1 and len(err) == 1 and err[0].startswith(message), err
        assert not out.exists()  # no folder, no .lock, no log


@pytest.mark.slow
def test_a_missing_cuda_library_at_import_mxnet_is_one_line(tmp_path):
    """train_src.py whose `import mxnet` finds a CUDA MXNet without libcudnn.so.8 (a stand-in
    package on PYTHONPATH whose libmxnet needs it): one line, no traceback, no output folder."""
    fake = tmp_path / 'fake' / 'mxnet'
    fake.mkdir(parents=True)
    (fake / '__init__.py').write_text('import ctypes\nctypes.CDLL("libcudnn.so.8")\n')
    root, lst, weights = _small_gta(tmp_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), REPO]))
    res = subprocess.run([sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'),
                          '--data-root', root, '--split', lst, '--weights', weights,
                          '--output', str(tmp_path / 'out'), '--gpus', '0'],
                         capture_output=True, text=True, env=env, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith('error: a shared library is missing (libcudnn.so.8: ')
    assert not (tmp_path / 'out').exists()
