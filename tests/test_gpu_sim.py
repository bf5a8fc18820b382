"""The device-simulation tier: the scripts run with GPU ids under a test-only mapping of
`mx.gpu(i)` to `mx.cpu(i)` with 4 GPUs reported (tests/gpu_sim/sitecustomize.py on PYTHONPATH,
so every child process has it too), and their outputs are byte-identical to the matching
`--gpus cpu` / `cpu:N` runs: the GPU branches (the GPU count, the ids, the workers' shares of
the GPUs) keep being exercised on machines without a GPU."""
import os
import subprocess
import sys

import mxnet as mx
import pytest

from conftest import make_layout, write_model_weights
from issegm import evaluate, predict
from issegm.datasets import write_list

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM = os.path.join(REPO, 'tests', 'gpu_sim')
MODEL = 'gta_rna-tiny_cls19_s8'
TIMEOUT = 600


def _env(simulated):
    """The environment of a child: the repository on PYTHONPATH, and the shim when simulated."""
    paths = ([SIM] if simulated else []) + [REPO]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def _files(folder):
    """{relative path: bytes} of a run's outputs, without logs, locks and timings."""
    out = {}
    for dirpath, _, names in os.walk(str(folder)):
        for name in names:
            if name.endswith('.log') or name in ('.lock', 'summary.json', 'rounds.png'):
                continue  # logs name the command and times; summary.json and the plot: paths
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as f:  # lists name files in the output folder
                data = f.read().replace(str(folder).encode(), b'OUTPUT')
            out[os.path.relpath(path, str(folder))] = data
    return out


def _without_timing(files):
    """metrics.json, the done markers and the recorded settings hold times and argv: compare
    what they measured (and the settings recorded)."""
    import json
    clean = {}
    for name, data in files.items():
        if name.endswith(('metrics.json', '.done', 'run.json', 'predict.json')):
            record = json.loads(data)
            for key in ('timing', 'seconds', 'argv', 'command', 'finished', 'time'):
                record.pop(key, None)
            for h in record.get('history', []) if isinstance(record, dict) else []:
                h.pop('seconds', None)
            data = json.dumps(record, sort_keys=True).encode()
        clean[name] = data
    return clean


@pytest.fixture(scope='module')
def gta(tmp_path_factory):
    base = tmp_path_factory.mktemp('gpu_sim')
    root = base / 'gta'
    write_list(str(root / 'train.lst'), make_layout(str(root), 'gta', 8, hw=(48, 96), seed=5))
    weights = write_model_weights(base / ('%s_ep-0000.params' % MODEL), MODEL, seed=2)
    return str(root), str(root / 'train.lst'), weights


def test_train_src_on_two_simulated_gpus_equals_cpu2(gta, tmp_path):
    """--gpus 0,1 with the device kvstore: the same checkpoint as --gpus cpu:2."""
    root, lst, weights = gta
    outputs = {}
    for gpus, simulated in (('0,1', True), ('cpu:2', False)):
        out = tmp_path / gpus.replace(',', '_').replace(':', '')
        res = subprocess.run(
            [sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'), '--gpus', gpus,
             '--kvstore', 'device', '--split', lst, '--data-root', root, '--output', str(out),
             '--weights', weights, '--batch-images', '4', '--crop-size', '64', '--to-epoch',
             '1', '--base-lr', '0.001', '--no-progress', '--skip-data-check'],
            env=_env(simulated), capture_output=True, text=True, timeout=TIMEOUT)
        assert res.returncode == 0, res.stderr[-3000:]
        outputs[gpus] = _files(out)
    assert ('%s_ep-0001.params' % MODEL) in outputs['cpu:2']
    assert outputs['0,1'] == outputs['cpu:2']


def test_a_round_with_two_local_workers_splits_the_simulated_gpus(gta, tmp_path):
    """An orchestrator round with --workers 2 (local launcher, dist_sync): with --gpus 0,1 each
    worker trains on its own GPU (one device each, as the log says), and every output equals
    the run with --gpus cpu, where both workers share the CPU."""
    root, lst, weights = gta
    cs = tmp_path / 'cs'
    write_list(str(cs / 'val.lst'), make_layout(str(cs), 'cityscapes', 4, hw=(48, 96),
                                                split='val', seed=6))
    outputs, logs = {}, {}
    for gpus, simulated in (('0,1', True), ('cpu', False)):
        out = tmp_path / gpus.replace(',', '_')
        res = subprocess.run(
            [sys.executable, os.path.join(REPO, 'issegm', 'solve_AO.py'), '--num-round', '1',
             '--epoch-per-round', '1', '--test-scales', '96', '--dataset', 'gta',
             '--dataset-tgt', 'cityscapes', '--split', lst, '--split-tgt',
             str(cs / 'val.lst'), '--data-root', root, '--data-root-tgt', str(cs),
             '--output', str(out), '--model', MODEL.replace('gta_', 'cityscapes_'),
             '--weights', weights, '--batch-images', '2', '--crop-size', '64',
             '--init-tgt-port', '0.2', '--init-src-port', '0.5', '--base-lr', '1e-3',
             '--gpus', gpus, '--no-progress', '--workers', '2'],
            env=_env(simulated), cwd=str(tmp_path), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
        assert res.returncode == 0, res.stdout[-4000:]
        outputs[gpus] = _without_timing(_files(out))
        logs[gpus] = [line for line in res.stdout.splitlines() if 'round 0 phase train:' in line]
    # the simulation maps gpu(i) to cpu(i): worker k logs the one device of its share
    assert sorted(line.split('device(s) ')[1].split(',')[0] for line in logs['0,1']) == \
        ['cpu(0)', 'cpu(1)'], logs
    assert all(' 1 device(s) cpu(0), worker' in line for line in logs['cpu']), logs
    assert any(name.endswith('_ep-0001.params') for name in outputs['cpu'])
    assert outputs['0,1'] == outputs['cpu']


@pytest.fixture
def simulated_gpus(monkeypatch):
    """The shim's mapping in this process (the scripts run in-process)."""
    monkeypatch.setattr(mx, 'gpu', mx.cpu)
    monkeypatch.setattr(mx.context, 'gpu', mx.cpu)
    monkeypatch.setattr(mx.context, 'num_gpus', lambda: 4)


def test_evaluate_and_predict_on_simulated_gpus_equal_the_cpu(gta, tmp_path, simulated_gpus):
    root, lst, _ = gta
    weights = write_model_weights(tmp_path / 'cityscapes_rna-tiny_cls19_s8_ep-0001.params',
                                  'cityscapes_rna-tiny_cls19_s8', seed=3)
    cs = tmp_path / 'cs'
    pairs = make_layout(str(cs), 'cityscapes', 3, hw=(48, 96), split='val', seed=1)
    write_list(str(cs / 'val.lst'), pairs)
    images = [os.path.join(str(cs), image) for image, _ in pairs]
    common = ['--weights', weights, '--no-progress', '--test-scales', '96']
    outputs = {}
    for gpus in ('1,3', 'cpu:2', '2', 'cpu'):
        out = tmp_path / ('eval' + gpus.replace(',', '_').replace(':', ''))
        assert evaluate.main(common + ['--data-root', str(cs), '--split', str(cs / 'val.lst'),
                                       '--output', str(out), '--gpus', gpus]) == 0
        outputs['evaluate', gpus] = _without_timing(_files(out))
        out = tmp_path / ('predict' + gpus.replace(',', '_').replace(':', ''))
        assert predict.main(common + ['--output', str(out), '--gpus', gpus] + images) == 0
        outputs['predict', gpus] = _without_timing(_files(out))
        with open(str(out / 'predict.log')) as f:
            assert 'devices cpu(' in f.read()
    for script in ('evaluate', 'predict'):
        assert outputs[script, '1,3'] == outputs[script, 'cpu:2']
        assert outputs[script, '2'] == outputs[script, 'cpu']
