"""oneDNN's instruction-set cap and the OpenMP threads (util/kernels.py): who sets them, what is
recorded, what reaches child processes; and --deterministic's MXNet switches in the scripts and
the round phases."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_round_data
from util import kernels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AVX2_FLAGS = {'sse4_1', 'avx', 'avx2', 'fma'}
AVX512_FLAGS = AVX2_FLAGS | {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'}
VARIABLES = ('DNNL_MAX_CPU_ISA', 'OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS', 'CBST_NATIVE_CPU',
             'CBST_DEFAULT_DNNL_MAX_CPU_ISA', 'CBST_DEFAULT_OMP_NUM_THREADS')


@pytest.fixture
def fresh(monkeypatch):
    """pin_cpu_kernels as in a new process: no decision yet, none of its variables set (all
    restored after the test), MXNet not imported."""
    monkeypatch.setattr(kernels, '_state', {})
    for variable in VARIABLES:
        monkeypatch.setenv(variable, 'x')  # recorded, so the test's changes are undone
        monkeypatch.delenv(variable)
    monkeypatch.delitem(sys.modules, 'mxnet', raising=False)
    return monkeypatch


def test_the_defaults_are_avx2_and_one_thread(fresh):
    decisions = kernels.pin_cpu_kernels()
    default = {'set_by': 'default', 'before_mxnet': True}
    assert decisions == {'DNNL_MAX_CPU_ISA': dict(default, requested='AVX2'),
                         'OMP_NUM_THREADS': dict(default, requested='1')}
    assert os.environ['DNNL_MAX_CPU_ISA'] == 'AVX2' and os.environ['OMP_NUM_THREADS'] == '1'
    assert kernels.threads_record()['effective'] == 1
    os.environ['DNNL_MAX_CPU_ISA'] = 'SSE41'
    assert kernels.pin_cpu_kernels() == decisions  # the first call decides


@pytest.mark.parametrize('value', ['AVX512_CORE', 'SSE41', 'avx2'])
def test_the_users_cap_wins(fresh, value):
    fresh.setenv('DNNL_MAX_CPU_ISA', value)
    assert kernels.pin_cpu_kernels()['DNNL_MAX_CPU_ISA']['set_by'] == 'environment'
    assert os.environ['DNNL_MAX_CPU_ISA'] == value
    line = kernels.isa_log_line()
    assert ('oneDNN ignores' in line) == (value == 'avx2')  # case matters to oneDNN


@pytest.mark.parametrize('variable, value, threads', [('OMP_NUM_THREADS', '3', 3),
                                                       ('MXNET_OMP_MAX_THREADS', '4', 4)])
def test_the_users_threads_win(fresh, variable, value, threads):
    fresh.setenv(variable, value)
    assert kernels.pin_cpu_kernels()['OMP_NUM_THREADS']['set_by'] == 'environment'
    assert os.environ.get('OMP_NUM_THREADS') == (value if variable == 'OMP_NUM_THREADS' else None)
    assert kernels.threads_record()['effective'] == threads
    assert 'MXNet runs %d OpenMP thread(s)' % threads in kernels.threads_log_line()


def test_native_opt_out_leaves_both_to_the_machine(fresh):
    fresh.setenv('CBST_NATIVE_CPU', '1')
    native = {'requested': None, 'set_by': 'CBST_NATIVE_CPU', 'before_mxnet': True}
    assert kernels.pin_cpu_kernels() == {'DNNL_MAX_CPU_ISA': native, 'OMP_NUM_THREADS': native}
    assert 'DNNL_MAX_CPU_ISA' not in os.environ and 'OMP_NUM_THREADS' not in os.environ
    assert 'DNNL_MAX_CPU_ISA=(unset), CBST_NATIVE_CPU=1' in kernels.isa_log_line()
    # MXNet's own choice: half the logical CPUs (apache/mxnet src/engine/openmp.cc)
    assert kernels.threads_record()['effective'] == max(len(os.sched_getaffinity(0)) // 2, 1)


def test_a_child_knows_an_inherited_default(fresh):
    """The parent's default reaches a child as the default; asked for native there, it goes."""
    fresh.setenv('DNNL_MAX_CPU_ISA', 'AVX2')
    fresh.setenv('CBST_DEFAULT_DNNL_MAX_CPU_ISA', 'AVX2')
    fresh.setenv('OMP_NUM_THREADS', '1')  # the user's: no marker
    decisions = kernels.pin_cpu_kernels()
    assert decisions['DNNL_MAX_CPU_ISA']['set_by'] == 'default'
    assert decisions['OMP_NUM_THREADS']['set_by'] == 'environment'
    fresh.setattr(kernels, '_state', {})
    fresh.setenv('CBST_NATIVE_CPU', '1')
    assert kernels.pin_cpu_kernels()['DNNL_MAX_CPU_ISA']['set_by'] == 'CBST_NATIVE_CPU'
    assert 'DNNL_MAX_CPU_ISA' not in os.environ and os.environ['OMP_NUM_THREADS'] == '1'


def test_values_set_after_mxnet_was_imported_are_recorded(fresh):
    fresh.setitem(sys.modules, 'mxnet', object())
    assert kernels.isa_record()['before_mxnet'] is False
    assert kernels.threads_record()['before_mxnet'] is False
    assert 'MXNet was imported before the cap was set' in kernels.isa_log_line()
    assert 'MXNet was imported before OMP_NUM_THREADS' in kernels.threads_log_line()


@pytest.mark.parametrize('requested, flags, effective', [
    ('AVX2', AVX512_FLAGS, 'AVX2'),
    (None, AVX512_FLAGS, 'AVX512_CORE'),
    ('ALL', AVX512_FLAGS, 'AVX512_CORE'),
    ('avx2', AVX512_FLAGS, 'AVX512_CORE'),  # ignored by oneDNN
    ('AVX512_MIC', AVX512_FLAGS, 'AVX2'),  # a Xeon Phi cap on another processor
    ('AVX512_CORE_BF16', AVX512_FLAGS, 'AVX512_CORE'),
    ('AVX2', AVX2_FLAGS, 'AVX2'),
    ('AVX512_CORE', AVX2_FLAGS, 'AVX2'),
    ('SSE41', AVX2_FLAGS, 'SSE41'),
    ('AVX2', None, None),  # no /proc/cpuinfo flags: unknown
])
def test_effective_isa(requested, flags, effective):
    assert kernels.effective_isa(requested, flags) == effective


def test_record_reads_the_processor_flags(fresh, tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu %s\n' % ' '.join(sorted(AVX512_FLAGS)))
    record = kernels.isa_record(str(cpuinfo))
    assert record['requested'] == record['effective'] == 'AVX2'
    assert record['processor'] == 'AVX512_CORE' and record['set_by'] == 'default'
    assert kernels.isa_record(str(tmp_path / 'none'))['effective'] is None


def test_evaluate_records_the_isa_in_metrics_json(tmp_path):
    from issegm import evaluate
    from issegm.datasets import get_dataset
    evaluate.write_report(str(tmp_path), np.eye(19, dtype=np.int64), get_dataset('cityscapes'),
                          'a title')
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['cpu_isa'] == kernels.isa_record()
    assert metrics['cpu_threads'] == kernels.threads_record()
    assert metrics['miou'] == 1.0  # the other keys as they were


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(PYTHONPATH=REPO, **extra)
    return env


@pytest.mark.slow
@pytest.mark.parametrize('extra, expected', [
    ({}, 'AVX2 AVX2 1'),
    ({'DNNL_MAX_CPU_ISA': 'SSE41', 'OMP_NUM_THREADS': '2'}, 'SSE41 None 2'),
    ({'CBST_NATIVE_CPU': '1'}, 'None None None'),
])
def test_subprocesses_inherit_the_pins(extra, expected):
    """A process importing the project's package passes the cap and threads to its children."""
    child = 'import os; print(os.environ.get("DNNL_MAX_CPU_ISA"), ' \
            'os.environ.get("CBST_DEFAULT_DNNL_MAX_CPU_ISA"), os.environ.get("OMP_NUM_THREADS"))'
    parent = 'import subprocess, sys, issegm; subprocess.run([sys.executable, "-c", %r])' % child
    out = subprocess.run([sys.executable, '-c', parent], env=_clean_env(**extra),
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected


# DNNL_VERBOSE's names of the instruction sets this processor can run (oneDNN 2.4).
VERBOSE_NAMES = {'Intel SSE4.1': 'SSE41', 'Intel AVX': 'AVX', 'Intel AVX2': 'AVX2',
                 'Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions':
                 'AVX512_CORE'}


@pytest.mark.slow
@pytest.mark.parametrize('cap', [None, 'SSE41', 'AVX', 'AVX2', 'avx2'])
def test_effective_isa_is_what_onednn_reports(cap):
    """isa_record's effective ISA equals the one oneDNN prints with DNNL_VERBOSE=1 on its
    first kernel (a convolution, after the project set or kept the cap)."""
    code = ('import json, util, mxnet as mx; from util.kernels import isa_record; '
            'x = mx.nd.ones((1, 8, 8, 8)); '
            'mx.nd.Convolution(x, mx.nd.ones((8, 8, 3, 3)), kernel=(3, 3), num_filter=8, '
            'no_bias=True).wait_to_read(); print(json.dumps(isa_record()))')
    env = _clean_env(DNNL_VERBOSE='1', **({'DNNL_MAX_CPU_ISA': cap} if cap else {}))
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    reported = [line.split('isa:', 1)[1] for line in out if ',isa:' in line]
    record = json.loads(out[-1])
    assert record['requested'] == (cap or 'AVX2')
    assert len(reported) == 1 and VERBOSE_NAMES.get(reported[0]) == record['effective']


@pytest.mark.slow
def test_rounds_record_the_isa_and_deterministic_reaches_both_phases(tmp_path):
    """One round under the orchestrator with --deterministic: run.json and phase val's
    metrics.json record the ISA, and both phases' logs show the switches they ran with."""
    gta, cs, weights = write_round_data(tmp_path, 4, (64, 112), (64, 128), seeds=(0, 3, 0))
    out = tmp_path / 'run'
    command = [sys.executable, 'issegm/script-self-paced-self-trained-segresnet.py',
               '--num-round', '1', '--test-scales', '128', '--split', str(gta / 'train.lst'),
               '--split-tgt', str(cs / 'val.lst'), '--data-root', str(gta),
               '--data-root-tgt', str(cs), '--output', str(out), '--model',
               'cityscapes_rna-tiny_cls19_s8', '--weights', weights, '--batch-images', '2',
               '--crop-size', '64', '--gpus', 'cpu', '--no-progress', '--deterministic']
    res = subprocess.run(command, cwd=REPO, env=_clean_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads((out / 'run.json').read_text())
    assert '--deterministic' in run['command'] and '--deterministic' not in run['settings']
    assert run['cpu_isa']['requested'] == 'AVX2' and run['cpu_isa']['set_by'] == 'default'
    metrics = json.loads((out / '0' / 'metrics.json').read_text())
    assert metrics['cpu_isa'] == run['cpu_isa']
    assert metrics['cpu_threads'] == run['cpu_threads'] == {
        'requested': '1', 'set_by': 'default', 'effective': 1, 'before_mxnet': True}
    switches = ('determinism switches: MXNET_ENFORCE_DETERMINISM=1, '
                'MXNET_CUDNN_AUTOTUNE_DEFAULT=0')
    for phase in ('val', 'train'):
        log = (out / ('round0-%s.log' % phase)).read_text()
        assert switches in log and 'CPU kernels: oneDNN instruction set AVX2' in log, phase
        assert 'CPU threads: MXNet runs 1 OpenMP thread(s)' in log, phase
    assert 'MXNET_ENFORCE_DETERMINISM=(unset)' in (out / 'rounds.log').read_text()


def test_deterministic_reaches_every_mxnet_script(tmp_path, monkeypatch):
    """--deterministic parses in evaluate.py and predict.py and reaches their switches (the
    shared issegm.testtime.predictors.check_devices), and train_src.py --phase val passes it on
    to evaluate.py."""
    from issegm import evaluate, predict, train_src
    from issegm.testtime import predictors
    out = str(tmp_path / 'o')
    weights = str(tmp_path / 'gta_rna-tiny_cls19_s8_ep-0000.params')
    calls = []
    monkeypatch.setattr(predictors, 'set_mxnet_switches', lambda **kw: calls.append(kw))
    monkeypatch.setitem(sys.modules, 'util.devices', None)  # stop before MXNet
    for args in (evaluate.parse_args(['--output', out, '--weights', weights, '--data-root', 'D',
                                      '--deterministic']),
                 predict.parse_args(['--output', out, '--weights', weights, 'x.png',
                                     '--deterministic'])):
        with pytest.raises(ImportError):
            predictors.check_devices(evaluate.check_prediction_flags(args))
    assert [kw['deterministic'] for kw in calls] == [True, True]
    argv = train_src.evaluate_argv(train_src.parse_args(
        ['--output', out, '--weights', weights, '--data-root', 'D', '--phase', 'val',
         '--deterministic']))
    assert '--deterministic' in argv and evaluate.parse_args(argv).deterministic
