"""Runs that protect their outputs and fail in the first seconds (README, "Safety"): the lock of
an output folder, the refusal of a rerun with other settings, --overwrite, the checks before
round 0, evaluate.py's staged outputs, a full disk."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_layout, write_model_weights, write_round_data
from issegm import evaluate, train_src
from issegm.rounds import orchestrator, phase as self_training
from issegm.datasets import write_list, write_png
from issegm.rounds.layout import finished, write_marker
from issegm.rounds.run_flags import result_argv
from test_locks import held_elsewhere
from util.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHESTRATOR = os.path.join(REPO, 'issegm', 'script-self-paced-self-trained-segresnet.py')
MODEL = 'cityscapes_rna-tiny_cls19_s8'


def _run_settings(tmp_path, *extra):
    """The orchestrator's RunSettings of these flags (the weights file: only its name is read)."""
    weights = tmp_path / 'gta_rna-a1_cls19_s8_ep-0000.params'
    weights.write_bytes(b'')
    argv = ['--dataset', 'gta', '--output', str(tmp_path / 'o'), '--model',
            'cityscapes_rna-a1_cls19_s8', '--weights', str(weights), '--data-root', 'D',
            '--data-root-tgt', 'T'] + list(extra)
    return orchestrator.parse_args(argv), argv


@pytest.mark.parametrize('extra,message', [
    (['--num-round', '0'], '--num-round must be at least 1, got 0'),
    (['--num-round', '-1'], '--num-round must be at least 1, got -1'),
    (['--batch-images', '0'], '--batch-images must be positive, got 0'),
    (['--init-src-port', '1.5'], '--init-src-port must be in [0, 1], got 1.5'),
    (['--init-tgt-port', '1.5'], '--init-tgt-port must be in [0, 1], got 1.5'),
    (['--init-tgt-port', '-0.1'], '--init-tgt-port must be in [0, 1], got -0.1'),
    (['--mine-port', '2'], '--mine-port must be in [0, 1], got 2.0'),
    (['--test-scales', '1024,2048'], 'phase val takes one test scale, got --test-scales 1024,2048'),
    (['--epoch-per-round', '0'], 'nothing to train: from epoch 0 to epoch 0'),
    (['--crop-size', '0'], '--crop-size must be positive, got 0'),
    (['--with-prior', 'True', '--prior', 'nope.mat'],
     'spatial prior not found: nope.mat (build one with issegm/make_prior.py)'),
    # the portion grows by 0.2 a round while below 2: 1.1 in round 1
    (['--init-tgt-port', '0.9', '--step-tgt-port', '0.2', '--max-tgt-port', '2'],
     '--init-tgt-port must be in [0, 1], got 1.1 (phase val of round 1)'),
])
def test_the_childrens_own_checks_run_on_every_round_first(tmp_path, extra, message):
    """The orchestrator checks each round's two command lines with the per-round script's
    phase_settings before anything runs: one rule in one place."""
    from issegm.rounds.phase_settings import phase_settings
    with pytest.raises(UserError) as caught:
        run, _ = _run_settings(tmp_path, *extra)
        orchestrator.check_rounds(run)
    assert str(caught.value) == message
    if '--num-round' not in extra and 'round 1' not in message:
        # the per-round script says the same, run by hand with that phase's command line
        run, _ = _run_settings(tmp_path, '--num-round', '1', *extra)
        refused = []
        for argv in orchestrator.phase_arguments(run, next(orchestrator.round_plans(run)),
                                                 run.weights):
            try:
                phase_settings(argv)
            except UserError as e:
                refused.append(str(e))
        assert refused == [message]


def test_done_markers_ignore_the_flags_that_do_not_change_results(tmp_path):
    run, _ = _run_settings(tmp_path, '--num-round', '1')
    val, train = orchestrator.phase_arguments(run, next(orchestrator.round_plans(run)),
                                              run.weights)
    out = str(tmp_path / 'o')
    write_marker(out, 0, 'train', train)
    other, _ = _run_settings(tmp_path, '--num-round', '1', '--gpus', '0,1', '--no-progress',
                             '--prefetch-threads', '4', '--prefetcher', 'thread',
                             '--cache-images', '1', '--no-backward-do-mirror',
                             '--mine-thresh', '0.01')
    train2 = orchestrator.phase_arguments(other, next(orchestrator.round_plans(other)),
                                          other.weights)[1]
    assert train2 != train and result_argv(train2) == result_argv(train)
    assert '--gpus' not in result_argv(train) and '--crop-size' in result_argv(train)
    assert finished(out, 0, 'train', train2)
    changed = list(train)
    changed[changed.index('--crop-size') + 1] = '321'
    assert not finished(out, 0, 'train', changed)


def test_a_rerun_with_other_settings_is_refused_once_a_phase_finished(tmp_path):
    run, argv = _run_settings(tmp_path)
    out = run.output
    os.makedirs(out)
    assert orchestrator.check_recorded_run(run, argv) == []
    record = json.loads(open(os.path.join(out, 'run.json')).read())
    assert record['command'] == argv and record['settings']['--kc-policy'] == 'cb'
    assert record['settings']['--data-root'] == os.path.abspath('D')
    assert '--gpus' not in record['settings'] and '--num-round' not in record['settings']
    # nothing finished yet: other settings replace the record
    other, other_argv = _run_settings(tmp_path, '--kc-policy', 'global')
    orchestrator.check_recorded_run(other, other_argv)
    assert json.loads(open(os.path.join(out, 'run.json')).read())['settings']['--kc-policy'] == \
        'global'
    write_marker(out, 0, 'val', ['--phase', 'val'])
    with pytest.raises(UserError) as refused:
        orchestrator.check_recorded_run(run, argv)
    assert str(refused.value) == (
        '%s holds rounds run with other settings (%s): --kc-policy global (now cb); resume '
        'with those values, use another --output, or add --overwrite to discard those rounds '
        'and start over' % (out, os.path.join(out, 'run.json')))
    run2, argv2 = _run_settings(tmp_path, '--kc-policy', 'global', '--workers', '2',
                                '--base-lr', '0.001', '--gpus', '0,1')
    with pytest.raises(UserError, match=r'--base-lr 0.0001 \(now 0.001\), --kvstore local '
                                        r'\(now dist_sync\), --workers 1 \(now 2\); '):
        orchestrator.check_recorded_run(run2, argv2)
    # flags that do not change results (other GPU ids, not another count); the same paths
    # written otherwise
    same, same_argv = _run_settings(
        tmp_path, '--kc-policy', 'global', '--gpus', '1', '--no-progress', '--num-round', '30',
        '--prefetch-threads', '4', '--keep-probmaps', '--cudnn-autotune', '--skip-data-check',
        '--no-backward-do-mirror', '--launcher', 'ssh', '--servers', '2', '--to-epoch', '9',
        '--data-root', os.path.join(os.getcwd(), 'D'))
    before = open(os.path.join(out, 'run.json')).read()
    assert orchestrator.check_recorded_run(same, same_argv) == []
    assert open(os.path.join(out, 'run.json')).read() == before  # recorded once


def test_the_device_count_of_a_finished_run_is_kept_its_ids_are_not(tmp_path):
    """Phase train's results depend on the devices per worker (each normalises its own slice of
    the batch, BatchNorm sees that slice), not on which GPUs: run.json records the count."""
    run, argv = _run_settings(tmp_path, '--gpus', '0,1')
    out = run.output
    os.makedirs(out)
    orchestrator.check_recorded_run(run, argv)
    assert json.loads(open(os.path.join(out, 'run.json')).read())['settings'][
        '--gpus (devices per worker)'] == 2
    write_marker(out, 0, 'val', ['--phase', 'val'])
    for ids in ('2,3', '1,0', 'cpu:2'):
        other, other_argv = _run_settings(tmp_path, '--gpus', ids)
        assert orchestrator.check_recorded_run(other, other_argv) == []
    with pytest.raises(UserError) as refused:
        other, other_argv = _run_settings(tmp_path, '--gpus', '0')
        orchestrator.check_recorded_run(other, other_argv)
    assert ': --gpus (devices per worker) 2 (now 1); resume with those values' in \
        str(refused.value)
    # a run.json of before the count was recorded: the rerun goes on
    record = json.loads(open(os.path.join(out, 'run.json')).read())
    del record['settings']['--gpus (devices per worker)']
    with open(os.path.join(out, 'run.json'), 'w') as f:
        json.dump(record, f)
    assert orchestrator.check_recorded_run(other, other_argv) == []


def test_run_entries_are_the_top_level_names_the_layout_builds():
    """RUN_ENTRIES is derived from the layout's names: every path it builds at the top of
    OUTPUT is discarded by --overwrite, and names a run never writes are not."""
    from issegm.rounds import layout
    from util.logs import rank_log_file
    out = os.path.join('o')
    built = [layout.round_dir(out, 12), layout.val_stage(layout.round_dir(out, 3)),
             layout.stats_dir(out), layout.probmap_dir(out), layout.summary_path(out),
             layout.rounds_plot_path(out), layout.rounds_log_path(out),
             layout.run_record_path(out), layout.phase_log_file(out, 2, 'val'),
             rank_log_file(layout.phase_log_file(out, 0, 'train'), 3),
             os.path.join(out, '.run.json.1-2.tmp')]
    assert [p for p in built if not layout.RUN_ENTRIES.match(os.path.basename(p))] == []
    for other in ('notes.txt', 'evaluation', 'round0-test.log', '0.partial', 'statsx'):
        assert not layout.RUN_ENTRIES.match(other), other
    assert layout.known_file(layout.LOCK) and not layout.RUN_ENTRIES.match(layout.LOCK)


def test_overwrite_discards_the_earlier_run_and_nothing_else(tmp_path, monkeypatch):
    run, argv = _run_settings(tmp_path, '--num-round', '1', '--skip-data-check')
    out = tmp_path / 'o'
    out.mkdir()
    orchestrator.check_recorded_run(run, argv)
    write_marker(str(out), 0, 'val', ['--phase', 'val'])
    for name in ('0/results/a.png', '1.val-partial/cache/a.npy', 'stats/cls_size.npy',
                 'probmap/a.npy', '.discarded/0/x', 'summary.json', 'rounds.png', 'rounds.log',
                 'round0-val.log', 'round0-train.rank1.log', '.summary.json.12-34.tmp',
                 'notes.txt', 'mine/keep.txt', 'evaluation/metrics.json'):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text('earlier')
    calls = []
    monkeypatch.setattr(orchestrator, 'run_child', lambda command, env=None: calls.append(
        (command, env)) or 3)
    with pytest.raises(SystemExit):  # refused without --overwrite
        orchestrator.main(argv + ['--kc-policy', 'global'])
    assert not calls and (out / '0' / 'val.done').is_file()
    assert orchestrator.main(argv + ['--kc-policy', 'global', '--overwrite']) == 3
    assert sorted(os.listdir(str(out))) == ['.lock', 'evaluation', 'mine', 'notes.txt',
                                            'rounds.log', 'run.json']
    assert ('--overwrite: discarded .summary.json.12-34.tmp, 0, 1.val-partial, probmap, '
            'round0-train.rank1.log, round0-val.log, rounds.log, rounds.png, run.json, stats, '
            'summary.json of the earlier run') in (out / 'rounds.log').read_text()
    assert json.loads((out / 'run.json').read_text())['settings']['--kc-policy'] == 'global'
    command, env = calls[0]  # round 0 phase val runs again, under the lock's token
    assert command[command.index('--phase') + 1] == 'val'
    assert env['CBST_OUTPUT_LOCK'] and (out / '.lock').read_text() == ''


def _small_gta(tmp_path):
    root = tmp_path / 'gta'
    lst = str(root / 'train.lst')
    write_list(lst, make_layout(str(root), 'gta', 1, hw=(16, 32)))
    weights = tmp_path / 'gta_rna-tiny_cls19_s8_ep-0000.params'
    weights.write_bytes(b'')  # refused before it is read
    return str(root), lst, str(weights)


def test_every_script_is_refused_on_a_folder_in_use(tmp_path, capsys):
    """The per-round script by hand, evaluate.py and train_src.py stop at once with the lock
    line while another process holds the folder (the orchestrator's path: test_locks.py and
    the slow tests below)."""
    root, lst, weights = _small_gta(tmp_path)
    out = str(tmp_path / 'out')
    run, _ = _run_settings(tmp_path, '--num-round', '1', '--output', out, '--gpus', 'cpu')
    val = orchestrator.phase_arguments(run, next(orchestrator.round_plans(run)),
                                       run.weights)[0]
    scripts = [(self_training.main, val),
               (evaluate.main, ['--data-root', root, '--split', lst, '--weights', weights,
                                '--output', out, '--gpus', 'cpu']),
               (train_src.main, ['--data-root', root, '--split', lst, '--weights', weights,
                                 '--output', out, '--gpus', 'cpu']),
               (train_src.main, ['--data-root', root, '--split', lst, '--weights', weights,
                                 '--output', out, '--gpus', 'cpu', '--phase', 'val'])]
    with held_elsewhere(out) as holder:
        for main, argv in scripts:
            with pytest.raises(SystemExit) as stop:
                main(argv)
            err = capsys.readouterr().err.strip().splitlines()
            assert stop.value.code == 1 and len(err) == 1, err
            assert err[0].startswith('error: %s is in use by PID %d on host ' % (out, holder))
            assert '(lock file %s, since ' % os.path.join(out, '.lock') in err[0]
    assert sorted(os.listdir(out)) == ['.lock']


# ----------------------------------------------------------------------------------------------
# Whole runs (subprocesses, the narrow model on generated data)

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_round_data(tmp_path_factory.mktemp('safety'), 8, (64, 112), (64, 128),
                            seeds=(0, 3, 0))


def command(data, output, *extra, split=None, split_tgt=None):
    gta, cs, weights = data
    return [sys.executable, ORCHESTRATOR, '--num-round', '1', '--test-scales', '128',
            '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
            '--split', split or str(gta / 'train.lst'), '--split-tgt',
            split_tgt or str(cs / 'val.lst'), '--data-root', str(gta), '--data-root-tgt',
            str(cs), '--output', str(output), '--model', MODEL, '--weights', weights,
            '--batch-images', '2', '--crop-size', '64', '--init-tgt-port', '0.15',
            '--init-src-port', '0.5', '--mine-port', '0.8', '--base-lr', '1e-3', '--gpus',
            'cpu', '--no-progress'] + list(extra)


def tree(folder):
    """{relative path: md5 of the bytes} of every file under folder."""
    out = {}
    for dirpath, _, files in os.walk(str(folder)):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, str(folder))] = hashlib.md5(f.read()).hexdigest()
    return out


@pytest.fixture(scope='module')
def finished_run(data, tmp_path_factory):
    """An output folder holding one finished round."""
    out = tmp_path_factory.mktemp('finished') / 'run'
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def run_together(commands, folder, timeout=300):
    """Start the commands at once, stdout and stderr to files under `folder`: [(exit status,
    stdout, stderr, seconds from start to end, pid)]."""
    procs = []
    for i, cmd in enumerate(commands):
        out, err = open(os.path.join(folder, '%d.out' % i), 'w+'), \
            open(os.path.join(folder, '%d.err' % i), 'w+')
        procs.append([subprocess.Popen(cmd, stdout=out, stderr=err, text=True), out, err,
                      time.time(), None])
    deadline = time.time() + timeout
    while any(p[4] is None for p in procs) and time.time() < deadline:
        for p in procs:
            if p[4] is None and p[0].poll() is not None:
                p[4] = time.time() - p[3]
        time.sleep(0.02)
    results = []
    for proc, out, err, _, seconds in procs:
        if seconds is None:
            proc.kill()
        proc.wait()
        out.seek(0)
        err.seek(0)
        results.append((proc.returncode, out.read(), err.read(), seconds, proc.pid))
        out.close()
        err.close()
    return results


@pytest.mark.slow
def test_two_orchestrators_on_one_folder(data, tmp_path):
    """Started together: exactly one runs, the other stops within 5 s with the lock line."""
    out = tmp_path / 'run'
    results = run_together([command(data, out)] * 2, str(tmp_path))
    ran = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] != 0]
    assert len(ran) == 1 and len(refused) == 1, [r[2][-2000:] for r in results]
    code, stdout, stderr, seconds, _ = refused[0]
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1 and 'running:' not in stdout, stderr
    assert lines[0].startswith('error: %s is in use by PID %d on host ' % (out, ran[0][4]))
    assert '(lock file %s, since ' % (out / '.lock') in lines[0]
    assert seconds < 5, seconds
    assert (out / '0' / 'train.done').is_file() and (out / '.lock').read_text() == ''
    assert 'finished 1 rounds' in ran[0][1]


@pytest.mark.slow
def test_a_finished_folder_rerun_with_another_policy_is_refused_and_untouched(data,
                                                                             finished_run):
    before = tree(finished_run)
    res = subprocess.run(command(data, finished_run, '--kc-policy', 'global'),
                         capture_output=True, text=True)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and res.stdout == '', res.stderr
    assert lines[0] == (
        'error: %s holds rounds run with other settings (%s): --kc-policy cb (now global); '
        'resume with those values, use another --output, or add --overwrite to discard those '
        'rounds and start over' % (finished_run, finished_run / 'run.json'))
    assert tree(finished_run) == before


@pytest.mark.slow
def test_flags_that_do_not_change_results_resume_without_redoing(data, finished_run):
    before = {k: v for k, v in tree(finished_run).items() if k.startswith('0' + os.sep)}
    res = subprocess.run(command(data, finished_run, '--gpus', 'cpu:1', '--prefetch-threads',
                                 '2', '--prefetcher', 'thread', '--cache-images', '1',
                                 '--keep-probmaps', '--cudnn-autotune',
                                 '--no-backward-do-mirror', '--skip-data-check',
                                 '--mine-thresh', '0.01'),
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'running:' not in res.stdout
    for phase in ('val', 'train'):
        assert 'round 0 phase %s already finished, skipping' % phase in res.stdout
    assert {k: v for k, v in tree(finished_run).items() if k.startswith('0' + os.sep)} == before


@pytest.mark.slow
def test_more_rounds_continue_the_run(data, finished_run):
    res = subprocess.run(command(data, finished_run, '--num-round', '2'), capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'round 0 phase train already finished, skipping' in res.stdout
    assert 'round 1 phase train: ' in res.stdout
    assert (finished_run / '1' / ('%s_ep-0004.params' % MODEL)).is_file()


@pytest.fixture(scope='module')
def bad_lists(data, tmp_path_factory):
    """List files with one problem each, over the data's files: {name: path}."""
    gta, cs, _ = data
    base = tmp_path_factory.mktemp('bad_lists')
    rows = [line.split('\t') for line in (gta / 'train.lst').read_text().splitlines()]
    cs_rows = [line.split('\t') for line in (cs / 'val.lst').read_text().splitlines()]
    lists = {'no-labels': [(image, None) for image, _ in rows],
             'missing': rows + [('images/99999.png', rows[0][1])],
             'duplicate': cs_rows + [('other/' + os.path.basename(cs_rows[0][0]),
                                      cs_rows[0][1])]}
    os.makedirs(str(cs / 'other'), exist_ok=True)
    shutil.copy(str(cs / cs_rows[0][0]), str(cs / 'other'))
    write_png(str(gta / 'labels' / 'small.png'), np.full((32, 56), 7, np.uint8))  # road
    lists['size'] = rows + [(rows[0][0], 'labels/small.png')]
    paths = {}
    for name, samples in lists.items():
        paths[name] = str(base / (name + '.lst'))
        write_list(paths[name], samples)
    return paths


@pytest.mark.slow
@pytest.mark.parametrize('extra,lists,message', [
    (['--batch-images', '0'], {}, 'error: --batch-images must be positive, got 0'),
    (['--init-src-port', '1.5'], {}, 'error: --init-src-port must be in [0, 1], got 1.5'),
    (['--init-tgt-port', '1.5'], {}, 'error: --init-tgt-port must be in [0, 1], got 1.5'),
    (['--init-tgt-port', '-0.1'], {}, 'error: --init-tgt-port must be in [0, 1], got -0.1'),
    (['--num-round', '0'], {}, 'error: --num-round must be at least 1, got 0'),
    (['--num-round', '-1'], {}, 'error: --num-round must be at least 1, got -1'),
    ([], {'split': 'no-labels'}, ' has no label for images/00001.png'),
    ([], {'split': 'missing'}, 'images/99999.png: image not found'),
    ([], {'split': 'size'}, 'label is 56x32 but its image '),
    ([], {'split_tgt': 'duplicate'},
     'image has the output name testcity_000000_000000_leftImg8bit'),
])
def test_bad_flags_and_lists_stop_in_seconds_writing_nothing(data, bad_lists, tmp_path, extra,
                                                             lists, message):
    out = tmp_path / 'run'
    chosen = {key: bad_lists[name] for key, name in lists.items()}
    started = time.time()
    res = subprocess.run(command(data, out, *extra, **chosen), capture_output=True, text=True)
    seconds = time.time() - started
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith('error: '), res.stderr
    assert message in lines[0] and 'running:' not in res.stdout, lines[0]
    assert seconds < 10 and not out.exists(), seconds


@pytest.mark.slow
def test_phase_val_by_hand_names_two_images_of_one_name_in_one_line(data, bad_lists, tmp_path):
    """The per-round script run by hand (no data check): two target images of one file name
    stop phase val before the network pass, in one line (not a worker thread's traceback)."""
    gta, cs, weights = data
    res = subprocess.run(
        [sys.executable, os.path.join(REPO, 'issegm', 'solve_ST.py'), '--phase', 'val',
         '--dataset', 'gta', '--dataset-tgt', 'cityscapes', '--data-root-tgt', str(cs),
         '--split-tgt', bad_lists['duplicate'], '--output', str(tmp_path / 'run'), '--model',
         MODEL, '--weights', weights, '--gpus', 'cpu', '--test-scales', '128', '--no-progress'],
        capture_output=True, text=True)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr[-3000:]
    assert lines[0].startswith('error: data check of the target list %s: ' % bad_lists['duplicate'])
    assert 'image has the output name testcity_000000_000000_leftImg8bit of ' in lines[0]
    assert not (tmp_path / 'run' / '0').exists()


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp('safety_weights') / ('%s_ep-0002.params' % MODEL)
    return write_model_weights(path, MODEL, seed=3)


@pytest.mark.slow
def test_evaluate_failing_half_way_leaves_the_folder_as_it_was(data, tiny_weights, tmp_path,
                                                               monkeypatch):
    _, cs, _ = data
    out = tmp_path / 'eval'
    argv = ['--data-root', str(cs), '--split', str(cs / 'val.lst'), '--weights', tiny_weights,
            '--output', str(out), '--gpus', 'cpu', '--no-progress', '--test-scales', '128']
    assert evaluate.main(argv) == 0
    (out / 'notes.txt').write_text('mine')
    before = {k: v for k, v in tree(out).items() if k != 'evaluate.log'}
    assert 'metrics.json' in before and os.path.join('labelId', 'testcity_000000_000000_'
                                                     'leftImg8bit.png') in before

    def killed(folder, *args):
        assert os.listdir(os.path.join(folder, 'labelId'))  # the new PNGs are written by now
        raise RuntimeError('killed half-way')
    monkeypatch.setattr(evaluate, 'write_report', killed)
    with pytest.raises(RuntimeError):
        evaluate.main(argv[:-1] + ['96', '--save-predictions'])
    assert {k: v for k, v in tree(out).items() if k != 'evaluate.log'} == before
    monkeypatch.undo()
    assert evaluate.main(argv[:-1] + ['96', '--save-predictions']) == 0
    after = tree(out)
    assert after['notes.txt'] == before['notes.txt'] and after['metrics.json'] != \
        before['metrics.json']
    assert any(k.startswith('scores' + os.sep) for k in after)
    assert not (out / '.evaluate-partial').exists()


def _error_lines(stderr):
    """stderr without MXNet's own information lines ('[HH:MM:SS] src/...: ...')."""
    return [line for line in stderr.strip().splitlines() if not line.startswith('[')]


def _small_filesystem(size, folder, command):
    """Run `command` with `folder` a tmpfs of `size` (e.g. '24k') of its own mount namespace
    (unshare: nothing is mounted outside the test); (process, the files left there, as the
    command left them)."""
    script = ('mount -t tmpfs -o size=%s tmpfs "$0" || exit 97; "$@"; rc=$?; echo; '
              'echo "--- files"; find "$0" -type f | sort; exit $rc' % size)
    res = subprocess.run(['unshare', '--map-root-user', '--mount', 'sh', '-c', script,
                          str(folder)] + command, capture_output=True, text=True, cwd=REPO)
    if res.returncode == 97:
        pytest.skip('cannot mount a tmpfs in a user namespace here')
    files = res.stdout.split('--- files\n')[-1].split()
    return res, [os.path.relpath(f, str(folder)) for f in files]


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which('unshare'), reason='needs unshare (util-linux)')
def test_a_full_disk_is_one_line_and_leaves_nothing_as_if_complete(data, tiny_weights,
                                                                   tmp_path):
    """A real full filesystem (a 24 KB tmpfs): evaluate.py's PNGs (Python's writes) and
    train_src.py's checkpoint (MXNet's 'FileStream.Write incomplete') stop with one line naming
    the full folder (and the checkpoint's size); no output is left looking complete."""
    gta, cs, weights = data
    small = tmp_path / 'small'
    small.mkdir()
    res, files = _small_filesystem('24k', small, [
        sys.executable, os.path.join(REPO, 'issegm', 'evaluate.py'), '--data-root', str(cs),
        '--split', str(cs / 'val.lst'), '--weights', tiny_weights, '--output',
        str(small / 'eval'), '--gpus', 'cpu', '--no-progress', '--test-scales', '128'])
    lines = _error_lines(res.stderr)
    assert res.returncode == 1 and len(lines) == 1, res.stderr[-3000:]
    assert lines[0].startswith('error: disk full: no space left in %s' % (small / 'eval'))
    assert lines[0].endswith('; free some space and rerun')
    assert sorted(files) == [os.path.join('eval', '.lock'), os.path.join('eval', 'evaluate.log')]
    res, files = _small_filesystem('1m', small, [
        sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'), '--data-root', str(gta),
        '--split', str(gta / 'train.lst'), '--weights', weights, '--output', str(small / 'src'),
        '--gpus', 'cpu', '--no-progress', '--to-epoch', '1', '--batch-images', '2',
        '--crop-size', '64', '--prefetch-threads', '0'])
    lines = _error_lines(res.stderr)
    assert res.returncode == 1 and len(lines) == 1, res.stderr[-3000:]
    assert lines[0].startswith('error: disk full: no space left in %s (' % (small / 'src'))
    assert 'writing gta_rna-tiny_cls19_s8_ep-0001.params, which needs about 5.9 MB' in lines[0]
    assert not [f for f in files if f.endswith('.params') or '.tmp' in f], files
