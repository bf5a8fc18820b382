"""Every flag of upstream's four scripts is accepted by ours, every script's --help is quick
(no MXNet import), and the shared flag helpers."""
import glob
import logging
import os
import re
import subprocess
import sys

import pytest

from issegm import evaluate, train_src
from issegm.rounds import orchestrator, phase as self_training
from issegm.datasets import target_dataset
from util.errors import UserError
from util.flags import FlagParser, check_epochs, py2_str, set_mxnet_switches
from util.logs import rank_log_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The argparse flags of yzou2/CBST's scripts, copied from their parsers, each with a value to
# try (None: a switch without a value).
UPSTREAM_SOLVE_AO = {
    '--dataset': 'gta', '--dataset-tgt': 'cityscapes', '--split': 'train',
    '--split-tgt': 'train', '--data-root': 'DATA', '--data-root-tgt': 'DATA_TGT',
    '--output': None, '--model': 'cityscapes_rna-a1_cls19_s8', '--weights': None,
    '--batch-images': '2', '--crop-size': '500', '--origin-size': '1914',
    '--origin-size-tgt': '2048', '--init-tgt-port': '0.15', '--init-src-port': '0.03',
    '--max-tgt-port': '0.5', '--max-src-port': '0.06', '--step-tgt-port': '0.05',
    '--step-src-port': '0.0025', '--epoch-per-round': '2', '--seed-int': '0',
    '--mine-port': '0.8', '--mine-id-number': '3', '--mine-thresh': '0.001',
    '--with-prior': 'True', '--num-round': '6', '--test-scales': '1850',
    '--scale-rate-range': '0.7,1.3', '--base-lr': '1e-4', '--to-epoch': '2',
    '--source-sample-policy': 'cumulative', '--self-training-script': None,
    '--kc-policy': 'cb', '--prefetch-threads': '2', '--gpus': '0',
}
UPSTREAM_SOLVE_ST = {
    '--dataset': 'gta', '--dataset-tgt': 'cityscapes', '--split': 'train',
    '--split-tgt': 'train', '--data-root': 'DATA', '--data-root-tgt': 'DATA_TGT',
    '--output': None, '--model': 'cityscapes_rna-a1_cls19_s8', '--batch-images': '2',
    '--crop-size': '500', '--origin-size': '1914', '--origin-size-tgt': '2048',
    '--scale-rate-range': '0.7,1.3', '--weights': None, '--gpus': '0', '--lr-type': 'step',
    '--base-lr': '1e-4', '--lr-steps': '1000,2000', '--weight-decay': '0.0005',
    '--from-epoch': '0', '--stop-epoch': '1', '--to-epoch': '2', '--idx-round': '1',
    '--init-tgt-port': '0.15', '--init-src-port': '0.03', '--seed-int': '0',
    '--mine-port': '0.8', '--mine-id-number': '3', '--mine-thresh': '0.001',
    '--mine-id-address': 'OUT/stats', '--phase': 'val', '--with-prior': 'False',
    '--test-scales': '1850', '--test-flipping': None, '--test-steps': '1', '--kvstore': 'local',
    '--prefetch-threads': '2', '--prefetcher': 'process', '--cache-images': '0',
    '--log-file': 'x.log', '--check-start': '1', '--check-step': '4', '--debug': None,
    '--backward-do-mirror': None, '--no-cudnn': None, '--kc-policy': 'cb',
}
UPSTREAM_TRAIN_SRC = {
    '--gpus': '0,1', '--dataset': 'gta', '--split': 'train', '--data-root': None,
    '--output': None, '--model': 'gta_rna-a1_cls19_s8', '--batch-images': '16',
    '--crop-size': '500', '--origin-size': '1914', '--scale-rate-range': '0.7,1.3',
    '--weights': None, '--lr-type': 'poly', '--base-lr': '0.0016', '--lr-steps': '10,20',
    '--weight-decay': '0.0005', '--from-epoch': '0', '--stop-epoch': '10', '--to-epoch': '30',
    '--phase': 'val', '--test-scales': '1914', '--test-flipping': None, '--test-steps': '1',
    '--save-predictions': None, '--no-save-results': None, '--kvstore': 'device',
    '--prefetch-threads': '16', '--prefetcher': 'process', '--cache-images': '0',
    '--log-file': 'x.log', '--check-start': '1', '--check-step': '4', '--debug': None,
    '--backward-do-mirror': None, '--no-cudnn': None,
}
UPSTREAM_EVALUATE = {
    '--gpus': '0', '--dataset': 'cityscapes', '--split': 'val', '--data-root': None,
    '--output': None, '--model': 'gta_rna-a1_cls19_s8', '--weights': None, '--phase': 'val',
    '--test-scales': '2048', '--test-flipping': None, '--test-steps': '1',
    '--save-predictions': None, '--no-save-results': None, '--prefetch-threads': '1',
    '--cache-images': '1', '--log-file': 'x.log', '--debug': None, '--no-cudnn': None,
}
# Flags the base command lines below already give (their values are not switches).
GIVEN = {'--output', '--weights', '--data-root', '--self-training-script'}


def _base(script, tmp_path):
    weights = tmp_path / 'gta_rna-a1_cls19_s8_ep-0000.params'
    weights.write_bytes(b'')
    out = str(tmp_path / 'out')
    if script == 'orchestrator':
        return (lambda argv: orchestrator.parse_args(argv),
                ['--output', out, '--weights', str(weights)])
    if script == 'self_training':
        return self_training.parse_args, ['--output', out, '--weights', str(weights)]
    if script == 'train_src':
        return train_src.parse_args, ['--output', out, '--weights', str(weights),
                                      '--data-root', 'DATA']
    return evaluate.parse_args, ['--output', out, '--weights', str(weights), '--data-root', 'D']


def _dest(flag):
    return flag.lstrip('-').replace('-', '_')


@pytest.mark.parametrize('script,flags', [('orchestrator', UPSTREAM_SOLVE_AO),
                                          ('self_training', UPSTREAM_SOLVE_ST),
                                          ('train_src', UPSTREAM_TRAIN_SRC),
                                          ('evaluate', UPSTREAM_EVALUATE)])
def test_every_upstream_flag_is_accepted(script, flags, tmp_path):
    parse, base = _base(script, tmp_path)
    for flag, value in flags.items():
        if flag in GIVEN:
            continue
        argv = base + ([flag] if value is None else [flag, value])
        args = parse(argv)  # raises SystemExit on an unknown flag
        name = _dest(flag)
        if flag == '--no-save-results':
            assert args.no_save_results is True
        elif value is None:
            assert getattr(args, name) is True, flag
        elif flag == '--dataset-tgt':
            assert args.dataset_tgt == 'cityscapes'
        elif flag in ('--with-prior', '--cache-images'):
            assert getattr(args, name) == (value in ('True', '1')), flag
        else:
            assert str(getattr(args, name)) == value or \
                float(getattr(args, name)) == float(value), flag


# --kvstore defaults of the original's parse_args: yzou2/CBST solve_ST.py 'local',
# train_src.py 'device'.
ORIGINAL_KVSTORE_DEFAULTS = {'self_training': 'local', 'train_src': 'device'}


@pytest.mark.parametrize('script', sorted(ORIGINAL_KVSTORE_DEFAULTS))
def test_kvstore_defaults_are_the_originals(script, tmp_path, capsys):
    parse, base = _base(script, tmp_path)
    assert parse(base).kvstore == ORIGINAL_KVSTORE_DEFAULTS[script]
    if script == 'train_src':  # its --help says the default
        with pytest.raises(SystemExit):
            train_src.parse_args(['--help'])
        assert '(default device' in ' '.join(capsys.readouterr().out.split())


def test_stop_epoch_is_not_to_epoch(tmp_path):
    parse, base = _base('self_training', tmp_path)
    settings = self_training.check_args(parse(base + ['--to-epoch', '4', '--stop-epoch', '3']))
    assert (settings.stop_epoch, settings.to_epoch) == (3, 4)
    assert self_training.check_args(parse(base + ['--to-epoch', '4'])).stop_epoch == 4
    parse, base = _base('train_src', tmp_path)
    args = parse(base + ['--to-epoch', '40', '--stop-epoch', '30'])
    assert (args.stop_epoch, args.to_epoch) == (30, 40)


def test_check_epochs_as_upstream_asserts():
    # upstream: assert stop_epoch > from_epoch and stop_epoch <= to_epoch
    for from_epoch, stop, to in [(0, 1, 1), (2, 3, 5), (0, 30, 30), (4, 5, 9)]:
        check_epochs(from_epoch, stop, to)
    for from_epoch, stop, to in [(1, 1, 2), (3, 2, 4), (0, 5, 4)]:
        with pytest.raises(UserError):
            check_epochs(from_epoch, stop, to)


def test_py2_str_is_python2_str_of_floats():
    # Python 2.7 str(float): 12 significant digits, '.0' added to integral values.
    def restated(x):
        text = '%.12g' % x
        return text + '.0' if all(c.isdigit() or c == '-' for c in text) else text
    values = [0.02 + 0.0025 * 2, 1e-4 / 2 ** 0.5, 0.001, 0.3 + 0.05 * 3, 1.0, 2.0, 1e-05,
              123456789012345.0, -3.0, 0.1 + 0.2]
    for x in values:
        assert py2_str(x) == restated(x)
        assert float(py2_str(x)) == float('%.12g' % x)
    assert py2_str(0.1 + 0.2) == '0.3' and py2_str(1.0) == '1.0' and py2_str(1e-05) == '1e-05'
    assert py2_str(7) == '7' and py2_str('abc') == 'abc'


def test_target_dataset_rule():
    # upstream get_dataset_specs_tgt: (synthia, cityscapes) -> the 16-class Cityscapes tables
    for source in ('gta', 'synthia'):
        for target in ('cityscapes', 'cityscapes16'):
            expected = 'cityscapes16' if (source, target) == ('synthia', 'cityscapes') \
                else target
            assert target_dataset(source, target) == expected


def test_debug_sets_naive_engine_and_debug_logging(monkeypatch, tmp_path):
    for var in ('MXNET_ENGINE_TYPE', 'MXNET_BACKWARD_DO_MIRROR', 'MXNET_CUDNN_AUTOTUNE_DEFAULT'):
        monkeypatch.setenv(var, 'before')  # recorded, so the variables are restored after
        monkeypatch.delenv(var)
    set_mxnet_switches()
    assert 'MXNET_ENGINE_TYPE' not in os.environ
    set_mxnet_switches(backward_do_mirror=True, no_cudnn=True, debug=True)
    assert os.environ['MXNET_ENGINE_TYPE'] == 'NaiveEngine'
    # off: MXNet 1.9.1's own mirror costs memory; the training code marks the symbol instead
    assert os.environ['MXNET_BACKWARD_DO_MIRROR'] == '0'
    monkeypatch.setenv('MXNET_BACKWARD_DO_MIRROR', '1')
    set_mxnet_switches()
    assert os.environ['MXNET_BACKWARD_DO_MIRROR'] == '1'  # left alone without the flag
    set_mxnet_switches(backward_do_mirror=True)
    assert os.environ['MXNET_BACKWARD_DO_MIRROR'] == '0'
    assert os.environ['MXNET_CUDNN_AUTOTUNE_DEFAULT'] == '0'
    monkeypatch.delenv('MXNET_CUDNN_AUTOTUNE_DEFAULT')
    # set first, so that monkeypatch records it and removes it again after the test (a delenv
    # of an absent variable records nothing, and the switch below would leak into later tests)
    monkeypatch.setenv('MXNET_ENFORCE_DETERMINISM', '0')
    monkeypatch.delenv('MXNET_ENFORCE_DETERMINISM')
    set_mxnet_switches()
    assert 'MXNET_ENFORCE_DETERMINISM' not in os.environ
    set_mxnet_switches(deterministic=True)  # --deterministic: both GPU switches
    assert os.environ['MXNET_ENFORCE_DETERMINISM'] == '1'
    assert os.environ['MXNET_CUDNN_AUTOTUNE_DEFAULT'] == '0'
    from util.logs import setup_logging
    assert setup_logging(None, name='cbst-test', debug=True).level == logging.DEBUG
    assert setup_logging(None, name='cbst-test').level == logging.INFO


class Stop(Exception):
    pass


@pytest.mark.parametrize('module', [train_src, self_training])
def test_scripts_pass_debug_to_the_switches(module, monkeypatch, tmp_path):
    calls = []

    def record(backward_do_mirror=False, no_cudnn=False, debug=False, deterministic=False):
        calls.append((backward_do_mirror, no_cudnn, debug, deterministic))
        raise Stop
    monkeypatch.setattr(module, 'set_mxnet_switches', record)
    _, base = _base('train_src' if module is train_src else 'self_training', tmp_path)
    with pytest.raises(Stop):
        module.main(base + ['--debug', '--backward-do-mirror'])
    with pytest.raises(Stop):
        module.main(base + ['--deterministic'])
    assert calls == [(True, False, True, False), (False, False, False, True)]


def _scripts():
    """Every script: the files with a `__main__` block under issegm/ and util/ (run by path)
    and the packages run with -m."""
    paths = sorted(glob.glob(os.path.join(REPO, 'issegm', '*.py'))
                   + glob.glob(os.path.join(REPO, 'util', '*.py')))
    scripts = [[os.path.relpath(p, REPO)] for p in paths
               if "if __name__ == '__main__':" in open(p).read()]
    return scripts + [['-m', 'issegm.demo'], ['-m', 'issegm.launch']]


@pytest.mark.slow
def test_help_of_every_script_is_quick_and_imports_no_mxnet():
    scripts = _scripts()
    assert ['issegm/train_src.py'] in scripts and ['issegm/solve_ST.py'] in scripts
    procs = [(s, subprocess.Popen([sys.executable, '-X', 'importtime'] + s + ['--help'],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)) for s in scripts]
    for script, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (script, err[-2000:])
        assert 'usage:' in out, script
        imported = [line.rsplit('|', 1)[-1].strip() for line in err.splitlines()
                    if line.startswith('import time:')]
        assert 'argparse' in imported, script  # the check sees the imports
        assert not [m for m in imported if m == 'mxnet' or m.startswith('mxnet.')], script


def test_flag_errors_are_one_line(capsys):
    parser = FlagParser(prog='x')
    parser.add_argument('--kind', choices=('thread', 'process'))
    parser.add_argument('--need', required=True)
    assert parser.parse_args(['--need', '1', '--kind', 'process']).kind == 'process'
    for argv, message in ((['--need', '1', '--kind', 'fork'],
                           "error: unknown --kind 'fork' (allowed: thread, process)"),
                          ([], 'error: the following arguments are required: --need'),
                          (['--need', '1', '--nope'], 'error: unrecognized arguments: --nope')):
        with pytest.raises(SystemExit) as exit:
            parser.parse_args(argv)
        assert exit.value.code == 2  # argparse's status for a bad command line
        assert capsys.readouterr().err.splitlines() == [message]


def test_rank_log_files_sit_beside_rank_0s():
    # as phase train named them before: '%s.rank%d.log' % (os.path.splitext(log)[0], rank)
    for log in ('out/round3-train.log', 'x.log', 'logs/train_src'):
        assert rank_log_file(log, 0) == log
        for rank in (1, 2, 11):
            assert rank_log_file(log, rank) == '%s.rank%d.log' % (os.path.splitext(log)[0], rank)
    assert rank_log_file('out/train_src.log', 1) == 'out/train_src.rank1.log'
