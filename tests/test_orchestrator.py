"""The round orchestrator with the narrow model on generated GTA-5 and Cityscapes layouts."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import write_round_data
from util.flags import parse_bool

ORCHESTRATOR = 'issegm/script-self-paced-self-trained-segresnet.py'
MODEL = 'cityscapes_rna-tiny_cls19_s8'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_round_data(tmp_path_factory.mktemp('orc'), 8, (64, 112), (64, 128),
                            seeds=(0, 3, 0))


def command(data, output, *extra):
    gta, cs, weights = data
    return [sys.executable, ORCHESTRATOR, '--num-round', '2', '--test-scales', '128',
            '--dataset', 'gta', '--dataset-tgt', 'cityscapes', '--split', str(gta / 'train.lst'),
            '--split-tgt', str(cs / 'val.lst'), '--data-root', str(gta), '--data-root-tgt', str(cs),
            '--output', str(output), '--model', MODEL, '--weights', weights, '--batch-images', '2',
            '--crop-size', '64', '--init-tgt-port', '0.15', '--init-src-port', '0.5',
            '--mine-port', '0.8', '--base-lr', '1e-3', '--gpus', 'cpu', '--no-progress',
            '--kc-policy', 'cb'] + list(extra)


@pytest.mark.slow
def test_two_rounds(data, tmp_path):
    out = tmp_path / 'run'
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    for r, epoch in ((0, 2), (1, 4)):
        assert (out / str(r) / ('%s_ep-%04d.params' % (MODEL, epoch))).is_file()
        assert (out / str(r) / 'self_train' / 'pseudo_labelIds').is_dir()
    assert not (out / '0' / ('%s_ep-%04d.params' % (MODEL, 3))).exists()
    # Round 1 starts from round 0's last checkpoint and continues the epoch count.
    assert '--weights %s' % (out / '0' / ('%s_ep-0002.params' % MODEL)) in res.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert [e['round'] for e in summary] == [0, 1]
    assert summary[1]['lr'] == pytest.approx(1e-3 / math.sqrt(2))
    assert summary[1]['tgt_port'] == pytest.approx(0.2)
    assert summary[1]['src_port'] == pytest.approx(0.5)  # already above --max-src-port 0.06
    assert list(summary[0]['selected_share'])[:2] == ['road', 'sidewalk']
    assert 0 <= summary[1]['miou'] <= 1
    assert res.stdout.count('| selected: road') == 2
    # upstream's forwarded switches; phase train ran with the process prefetcher on the CPU
    assert res.stdout.count('--test-flipping --no-cudnn') == 2
    assert res.stdout.count('--prefetcher process --cache-images 0 --backward-do-mirror') == 2
    done = json.loads((out / '1' / 'train.done').read_text())
    assert done['argv'][done['argv'].index('--prefetcher') + 1] == 'process'
    for name in ('mine_id', 'mine_id_priority', 'cls_thresh', 'cls_size'):
        assert (out / 'stats' / (name + '.npy')).is_file()


@pytest.mark.slow
def test_failing_child_stops_with_its_status(data, tmp_path):
    # the child fails: the orchestrator's own data check (which would stop it first) skipped
    res = subprocess.run(command(data, tmp_path / 'run', '--data-root', str(tmp_path / 'nope'),
                                 '--skip-data-check'), capture_output=True, text=True)
    assert res.returncode == 1
    assert 'data root not found' in res.stderr and 'Traceback' not in res.stderr
    assert not (tmp_path / 'run' / '1').exists()


@pytest.mark.slow
def test_resume_after_kill_in_round_1(data, tmp_path):
    out = tmp_path / 'run'
    proc = subprocess.Popen(command(data, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (out / '1' / 'val.done').exists():
        assert proc.poll() is None and time.time() < deadline, 'orchestrator ended early'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kills the orchestrator and its child phase
    proc.wait()
    assert not (out / '1' / 'train.done').exists()
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    # the killed run's lock is free: taken over, with a line naming it (util/locks.py)
    assert 'took over the lock %s of PID %d on host ' % (out / '.lock', proc.pid) in res.stdout
    for skipped in ('round 0 phase val', 'round 0 phase train', 'round 1 phase val'):
        assert skipped + ' already finished, skipping' in res.stdout
    assert 'round 1 phase train: ' in res.stdout
    assert (out / '1' / ('%s_ep-0004.params' % MODEL)).is_file()
    assert (out / '1' / 'train.done').is_file()
    leftovers = [p for p in out.rglob('*') if '.tmp' in p.name or 'partial' in p.name]
    assert not leftovers
    # A third call finds everything finished and runs nothing.
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0 and 'running:' not in res.stdout


# ----------------------------------------------------------------------------------------------
# The children's command lines, without running them

def _orchestrator_args(tmp_path, *extra, model='cityscapes_rna-a1_cls19_s8', dataset='gta'):
    """The orchestrator's RunSettings of these flags."""
    from issegm.rounds import orchestrator
    weights = tmp_path / ('%s_rna-a1_cls%d_s8_ep-0000.params'
                          % (dataset, 16 if 'cls16' in model else 19))
    weights.write_bytes(b'')  # only its name is read here
    argv = ['--dataset', dataset, '--dataset-tgt', 'cityscapes', '--output', str(tmp_path / 'o'),
            '--model', model, '--weights', str(weights)] + list(extra)
    return orchestrator.parse_args(argv)


def _children(run):
    from issegm.rounds import orchestrator, layout as round_files
    weights = run.weights
    for plan in orchestrator.round_plans(run):
        yield orchestrator.phase_arguments(run, plan, weights)
        weights = round_files.round_weights(run.output, plan.idx_round, run.model,
                                            plan.to_epoch)


def _value(argv, flag):
    return argv[argv.index(flag) + 1]


def test_numbers_are_passed_as_python2_str(tmp_path):
    # The SYNTHIA command of upstream's README: 9400 source images, port 0.02 + 0.0025 per round.
    args = _orchestrator_args(tmp_path, '--num-round', '12', '--init-tgt-port', '0.2',
                              '--init-src-port', '0.02', '--max-src-port', '0.06',
                              '--base-lr', '1e-4', '--mine-thresh', '0.001',
                              model='cityscapes_rna-a1_cls16_s8', dataset='synthia')
    # Restatement of upstream's loop (solve_AO.py main): Python 2 str() is '%.12g' for floats.
    tgt, src, lr, rounds = 0.2, 0.02, 1e-4, []
    for r in range(12):
        rounds.append(('%.12g' % tgt, '%.12g' % src, '%.12g' % lr, str(2 * (r + 1))))
        lr = lr / math.sqrt(2)
        if tgt < 0.5:
            tgt = tgt + 0.05
        if src < 0.06:
            src = src + 0.0025
    got = [(_value(val, '--init-tgt-port'), _value(train, '--init-src-port'),
            _value(train, '--base-lr'), _value(train, '--to-epoch'))
           for val, train in _children(args)]
    assert [tuple(float(v) for v in g) for g in got] == \
        [tuple(float(v) for v in e) for e in rounds]
    assert [g[:3] for g in got] == [e[:3] for e in rounds]
    # what the child does with it: int(N * port) source images
    counts = [int(9400 * float(src)) for _, src, _, _ in got]
    assert counts == [int(9400 * float(src)) for _, src, _, _ in rounds]
    # Python 3's repr would select one image fewer in some rounds (rounds 2, 4, 6 here)
    unrounded, src = [], 0.02
    for r in range(12):
        unrounded.append(int(9400 * float(repr(src))))
        if src < 0.06:
            src = src + 0.0025
    assert [r for r in range(12) if counts[r] != unrounded[r]][:3] == [2, 4, 6]
    for val, train in _children(args):
        # as yzou2/CBST solve_AO.py main: --mine-thresh reaches phase train only
        assert _value(train, '--mine-thresh') == '0.001' and '--mine-thresh' not in val
        assert _value(train, '--mine-port') == '0.5'


def test_forwarded_switches_default_as_upstream_and_can_be_turned_off(tmp_path):
    from issegm.rounds import phase as self_training
    args = _orchestrator_args(tmp_path, '--num-round', '1')
    val, train = next(_children(args))
    assert '--no-cudnn' in val and '--test-flipping' in val
    assert '--backward-do-mirror' in train and _value(train, '--prefetcher') == 'process'
    assert _value(train, '--cache-images') == '0'
    # the round script reads them as meant
    parsed_val = self_training.parse_args(val)
    parsed_train = self_training.parse_args(train)
    assert parsed_val.no_cudnn and parsed_val.test_flipping and not parsed_val.backward_do_mirror
    assert parsed_train.backward_do_mirror and not parsed_train.no_cudnn
    assert parsed_train.prefetcher == 'process' and parsed_train.cache_images is False

    args = _orchestrator_args(tmp_path, '--num-round', '1', '--cudnn-autotune',
                              '--no-backward-do-mirror', '--prefetcher', 'thread',
                              '--cache-images', '1')
    val, train = next(_children(args))
    assert '--no-cudnn' not in val and '--backward-do-mirror' not in train
    assert _value(train, '--prefetcher') == 'thread' and _value(train, '--cache-images') == '1'
    assert self_training.parse_args(train).cache_images is True


def test_synthia_source_reads_cityscapes_with_16_classes(tmp_path):
    from issegm.rounds import phase as self_training
    from util.errors import UserError
    args = _orchestrator_args(tmp_path, '--num-round', '1', model='cityscapes_rna-a1_cls16_s8',
                              dataset='synthia')
    val, train = next(_children(args))
    for child in (val, train):
        settings = self_training.check_args(self_training.parse_args(child))
        assert settings.round.target.dataset == 'cityscapes16'
    with pytest.raises(UserError, match='has 19 classes but the target cityscapes16'):
        _orchestrator_args(tmp_path, model='cityscapes_rna-a1_cls19_s8', dataset='synthia')
    with pytest.raises(UserError, match='has 16 classes but the target cityscapes '):
        _orchestrator_args(tmp_path, model='cityscapes_rna-a1_cls16_s8', dataset='gta')


@pytest.mark.parametrize('extra,message', [
    # --source-sample-policy is the orchestrator's alone (upstream's solve_ST.py never took it)
    (['--source-sample-policy', 'x'], "unknown --source-sample-policy 'x'"),
    (['--kc-policy', 'bogus'], "unknown --kc-policy 'bogus'"),
    (['--launcher', 'telnet'], "unknown --launcher 'telnet'"),
    (['--kvstore', 'nfs'], "unknown --kvstore 'nfs'"),
])
@pytest.mark.slow
def test_bad_flag_values_give_one_error_line(data, tmp_path, extra, message):
    res = subprocess.run(command(data, tmp_path / 'run', *extra), capture_output=True, text=True)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], res.stderr
    assert not (tmp_path / 'run').exists()


# Flags of issegm/rounds/run_flags.py's table that both scripts take, where example_value would
# not do: (what the orchestrator is given, the value the per-round script must parse in the
# phases the table names). Each value differs from the per-round script's default, so a phase
# that gets the flag can be told from one that does not.
GIVEN_TO_ORCHESTRATOR = {
    '--dataset': (['--dataset', 'synthia', '--model', 'cityscapes_rna-a1_cls16_s8'], 'synthia'),
    '--dataset-tgt': (['--dataset-tgt', 'cityscapes16', '--model', 'cityscapes_rna-a1_cls16_s8'],
                      'cityscapes16'),
    '--split': (['--split', 'src.lst'], 'src.lst'),
    '--split-tgt': (['--split-tgt', 'tgt.lst'], 'tgt.lst'),
    '--data-root': (['--data-root', 'S'], 'S'),
    '--data-root-tgt': (['--data-root-tgt', 'T'], 'T'),
    '--output': ([], None),  # the base command line's: filled in below
    '--model': ([], 'cityscapes_rna-a1_cls19_s8'),
    '--weights': ([], None),  # round 0 starts from the given weights: filled in below
    '--gpus': (['--gpus', '0,1'], '0,1'),
    '--no-progress': (['--no-progress'], True),
    '--init-tgt-port': (['--init-tgt-port', '0.2'], 0.2),
    '--test-scales': (['--test-scales', '1850'], '1850'),
    '--with-prior': (['--with-prior', 'True'], True),
    '--prior': (['--prior', 'p.mat'], 'p.mat'),
    '--kc-policy': (['--kc-policy', 'global'], 'global'),
    '--init-src-port': (['--init-src-port', '0.02'], 0.02),
    '--base-lr': (['--base-lr', '0.001'], 0.001),
    '--seed-int': (['--seed-int', '5'], 5),
    '--mine-port': (['--mine-port', '0.8'], 0.8),
    '--mine-id-number': (['--mine-id-number', '4'], 4),
    '--mine-thresh': (['--mine-thresh', '0.01'], 0.01),
    '--crop-size': (['--crop-size', '600'], 600),
    '--scale-rate-range': (['--scale-rate-range', '0.6,1.4'], '0.6,1.4'),
    '--origin-size': (['--origin-size', '1914'], 1914),
    '--origin-size-tgt': (['--origin-size-tgt', '1024'], 1024),
    '--batch-images': (['--batch-images', '4'], 4),
    '--prefetch-threads': (['--prefetch-threads', '3'], 3),
    '--prefetcher': (['--prefetcher', 'process'], 'process'),
    '--cache-images': (['--cache-images', '1'], True),
    '--kvstore': (['--kvstore', 'device'], 'device'),
    '--keep-probmaps': (['--keep-probmaps'], True),
    '--debug-images': (['--debug-images', '2'], 2),
    '--no-health': (['--no-health'], True),
    '--lr-weight-ent': (['--lr-weight-ent', '0.25'], 0.25),
    '--mr-weight-kld': (['--mr-weight-kld', '0.01'], 0.01),
    '--mr-weight-l2': (['--mr-weight-l2', '0.1'], 0.1),
    '--mr-weight-ent': (['--mr-weight-ent', '0.1'], 0.1),
}


def example_value(row):
    """(what the orchestrator is given, what the per-round script parses) for a flag that is not
    in GIVEN_TO_ORCHESTRATOR: a value other than its default, made from its argparse spec."""
    spec = row.spec_in('orchestrator')
    if spec.get('action') == 'store_true':
        return [row.flag], True
    if spec.get('choices'):
        choice = next(c for c in spec['choices'] if c != spec.get('default'))
        return [row.flag, choice], choice
    kind = spec.get('type', str)
    if kind is parse_bool:
        return [row.flag, str(not spec.get('default'))], not spec.get('default')
    given = {int: 7, float: 0.125}.get(kind, 'x')
    return [row.flag, str(given)], given


def passed_on(table):
    """The rows the orchestrator takes and passes on to a phase, and those the round loop
    writes itself (the per-round script's alone, and --to-epoch, which the orchestrator takes and
    ignores)."""
    from issegm.rounds.orchestrator import IGNORED_FLAGS
    shared = {row.flag: row for row in table if row.phases and 'orchestrator' in row.parsers
              and row.flag not in IGNORED_FLAGS}
    loop = [row for row in table if row.phases and row.flag not in shared]
    return shared, loop


def assert_each_flag_reaches_its_phases(tmp_path):
    """Every flag the orchestrator passes on arrives, as the per-round script parses it, in the
    phases run_flags.SETTINGS names and nowhere else (there the per-round script's default);
    the flags the round loop writes itself appear in exactly those phases too."""
    from issegm.rounds import run_flags, phase as self_training
    shared, loop = passed_on(run_flags.SETTINGS)
    defaults = self_training.parse_args(['--output', 'o', '--weights', 'w'])
    for flag, row in shared.items():
        given, expected = GIVEN_TO_ORCHESTRATOR.get(flag) or example_value(row)
        run = _orchestrator_args(tmp_path, '--num-round', '1', *given)
        expected = {'--output': run.output, '--weights': run.weights}.get(flag, expected)
        for phase, child in zip(('val', 'train'), next(_children(run))):
            parsed = getattr(self_training.parse_args(child), row.dest)
            if phase in row.phases:
                assert parsed == expected, (flag, phase, parsed)
            else:
                assert parsed == getattr(defaults, row.dest) != expected, (flag, phase, parsed)
    val, train = next(_children(_orchestrator_args(tmp_path, '--num-round', '1')))
    for row in loop:  # all on by default
        assert (row.flag in val, row.flag in train) == \
            ('val' in row.phases, 'train' in row.phases), row.flag
    return shared


def test_each_flag_reaches_exactly_the_phases_of_the_table(tmp_path):
    shared = assert_each_flag_reaches_its_phases(tmp_path)
    assert set(GIVEN_TO_ORCHESTRATOR) <= set(shared)


def test_deterministic_reaches_both_phases_and_only_when_given(tmp_path):
    """--deterministic is written on both phases' command lines when given, and not at all
    otherwise (a run without it keeps the command lines it always had)."""
    val, train = next(_children(_orchestrator_args(tmp_path, '--num-round', '1',
                                                   '--deterministic')))
    assert '--deterministic' in val and '--deterministic' in train
    val, train = next(_children(_orchestrator_args(tmp_path, '--num-round', '1')))
    assert '--deterministic' not in val + train


def test_round_loop_flags_are_the_orchestrators_alone(tmp_path):
    """The flags of the round loop itself are not the per-round script's."""
    from issegm.rounds import phase as self_training
    from issegm.rounds.run_flags import SETTINGS
    base = ['--output', str(tmp_path / 'o'), '--weights', 'w']
    for flag in ('--num-round', '--max-tgt-port', '--max-src-port', '--step-tgt-port',
                 '--step-src-port', '--epoch-per-round', '--source-sample-policy'):
        assert [row.parsers for row in SETTINGS if row.flag == flag] == [('orchestrator',)]
        with pytest.raises(SystemExit):
            self_training.parse_args(base + [flag, '1'])


def _no_child(monkeypatch):
    """The orchestrator's children replaced by a failure (status 3): nothing runs."""
    from issegm.rounds import orchestrator
    monkeypatch.setattr(orchestrator, 'run_child', lambda command, env=None: 3)


def test_mine_thresh_reaches_phase_train_only_and_warns(data, tmp_path, capsys, monkeypatch):
    """yzou2/CBST solve_AO.py main passes --mine-thresh to phase train only (which never reads
    it): phase val keeps its default 0.001, and a value other than the default makes the
    orchestrator warn that it changes nothing. The per-round script called directly with
    --phase val --mine-thresh X uses X."""
    from issegm.rounds import orchestrator, phase as self_training
    out = tmp_path / 'run'
    argv = command(data, out, '--num-round', '1')[2:]
    _no_child(monkeypatch)
    assert orchestrator.main(argv + ['--mine-thresh', '0.01']) == 3
    line = ('warning: --mine-thresh 0.01 changes nothing, as in yzou2/CBST solve_AO.py: passed '
            'to phase train only, which never reads it; phase val uses its default 0.001')
    assert line in capsys.readouterr().out and line in (out / 'rounds.log').read_text()
    for same in ([], ['--mine-thresh', '0.001']):
        assert orchestrator.main(argv + same) == 3
        assert 'warning' not in capsys.readouterr().out
    given = next(_children(orchestrator.parse_args(command(data, out)[2:] +
                                                   ['--mine-thresh', '0.01'])))
    plain = next(_children(orchestrator.parse_args(command(data, out)[2:])))
    assert given[0] == plain[0]  # phase val: the same command line
    assert _value(given[1], '--mine-thresh') == '0.01'
    assert given[1][:given[1].index('--mine-thresh')] == plain[1][:plain[1].index('--mine-thresh')]
    direct = self_training.check_args(self_training.parse_args(
        plain[0] + ['--mine-thresh', '0.02']))
    assert direct.mine_thresh == 0.02
    assert self_training.check_args(self_training.parse_args(plain[0])).mine_thresh == 0.001


@pytest.mark.parametrize('launcher', ['local', 'ssh'])
def test_workers_servers_and_hostfile_reach_the_launcher(tmp_path, launcher):
    """--workers N --servers S --hostfile H: phase train runs under issegm/launch.py, whose own
    parser reads N workers, S servers, the launcher and the host file back, and the per-round
    script's command after `--`."""
    from issegm import launch
    from issegm.rounds import orchestrator
    hosts = tmp_path / 'hosts'
    hosts.write_text('h1\nh2\n')
    run = _orchestrator_args(tmp_path, '--num-round', '1', '--workers', '3', '--servers', '2',
                             '--launcher', launcher, '--hostfile', str(hosts), '--gpus', 'cpu')
    val, train = next(_children(run))
    command = orchestrator.child_command(run, train, distributed=True)
    assert command[:2] == [sys.executable, orchestrator.LAUNCH_SCRIPT]
    args = launch.parse_args(command[2:])
    assert (args.num_workers, args.num_servers, args.launcher, args.hostfile) == \
        (3, 2, launcher, str(hosts))
    assert args.env == ['CBST_OUTPUT_LOCK']  # the lock's token reaches every host's processes
    assert launch.command_of(args) == [sys.executable, run.self_training_script] + train
    assert _value(train, '--kvstore') == 'dist_sync'
    assert orchestrator.child_command(run, val) == [sys.executable,
                                                    run.self_training_script] + val


def test_ignored_upstream_flags_warn_and_change_nothing(data, tmp_path, capsys, monkeypatch):
    """Flags yzou2/CBST issegm/solve_AO.py accepts and never uses (IGNORED_FLAGS) warn and
    change no command line."""
    from issegm.rounds import orchestrator
    assert '--to-epoch' in orchestrator.IGNORED_FLAGS
    _no_child(monkeypatch)
    for flag in orchestrator.IGNORED_FLAGS:
        out = tmp_path / flag.strip('-')
        argv = command(data, out, '--num-round', '1')[2:]
        assert orchestrator.main(argv + [flag, '7']) == 3
        line = 'warning: %s 7 is accepted and ignored' % flag
        assert line in capsys.readouterr().out and line in (out / 'rounds.log').read_text()
        assert orchestrator.main(argv) == 3
        assert 'warning' not in capsys.readouterr().out
        # ignored: the children's command lines are the same with and without it
        given = orchestrator.parse_args(command(data, out)[2:] + [flag, '7'])
        plain = orchestrator.parse_args(command(data, out)[2:])
        assert list(_children(given)) == list(_children(plain))


# ----------------------------------------------------------------------------------------------
# summary.json, the log line and rounds.png: the pseudo-labels' health per round, from
# constructed metrics.json files

HEALTH = {'pseudo_precision_total': 0.8, 'pseudo_recall_total': 0.25,
          'pseudo_kept_share_total': 0.3, 'agreement': None, 'mean_entropy_total': 0.4,
          'mean_confidence_total': 0.9, 'pseudo_precision': {'road': 0.9, 'car': None},
          'pseudo_recall': {'road': 0.5, 'car': 0.0}}
HEALTH_KEYS = ('pseudo_precision_total', 'pseudo_recall_total', 'pseudo_kept_share_total',
               'agreement', 'mean_entropy_total', 'mean_confidence_total', 'pseudo_precision',
               'pseudo_recall')


def _round_metrics():
    """metrics.json of three rounds: 0 with target labels (agreement null at round 0), 1 as
    with --no-health (the keys absent), 2 without target labels (label-free keys only)."""
    base = {'selected_share': {'road': 0.15, 'car': 0.05}, 'selected_total': 0.2,
            'cls_thresh': [0.9, 0.8]}
    no_gt = {k: v for k, v in HEALTH.items() if not k.startswith('pseudo_')}
    return [dict(base, miou=0.3, **HEALTH), dict(base, miou=0.35),
            dict(base, **dict(no_gt, agreement=0.75))]


def _write_round_metrics(output):
    from issegm.rounds.layout import metrics_path
    for r, metrics in enumerate(_round_metrics()):
        os.makedirs(os.path.dirname(metrics_path(output, r)), exist_ok=True)
        with open(metrics_path(output, r), 'w') as f:
            json.dump(metrics, f)


def test_round_summary_copies_the_health_keys_and_logs_them(tmp_path, monkeypatch):
    from issegm.rounds import orchestrator
    run = _orchestrator_args(tmp_path, '--num-round', '4')
    _write_round_metrics(run.output)
    lines = []
    monkeypatch.setattr(orchestrator.log, 'info', lambda fmt, *a: lines.append(fmt % a))
    for plan in orchestrator.round_plans(run):  # round 3 has no metrics.json
        rounds = orchestrator.round_summary(run, plan)
    assert rounds == json.loads((tmp_path / 'o' / 'summary.json').read_text())
    assert [e['round'] for e in rounds] == [0, 1, 2, 3]
    metrics = _round_metrics()
    for r in range(3):
        for key in HEALTH_KEYS + ('selected_share', 'selected_total', 'miou'):
            assert rounds[r][key] == metrics[r].get(key), (r, key)  # null when missing
        assert 'cls_thresh' not in rounds[r]
    assert rounds[0]['pseudo_precision'] == {'road': 0.9, 'car': None}
    assert all(rounds[1][key] is None for key in HEALTH_KEYS)
    assert rounds[2]['agreement'] == 0.75 and rounds[2]['pseudo_precision_total'] is None
    assert not set(HEALTH_KEYS) & set(rounds[3])  # no metrics.json: nothing copied
    # one line per round: precision when known, the kept share, agreement when known
    assert len(lines) == 4
    assert lines[0].endswith('| selected: road 15.0% car 5.0% | mIoU 30.00 | '
                             'pseudo-label precision 80.0% | kept 20.0%')
    assert lines[1].endswith('| mIoU 35.00 | kept 20.0%')
    assert lines[2].endswith('| selected: road 15.0% car 5.0% | kept 20.0% | agreement 75.0%')
    assert lines[3].endswith('| selected: ')
    # a rerun of round 1 replaces its entry
    plan = list(orchestrator.round_plans(run))[1]
    assert [e['round'] for e in orchestrator.round_summary(run, plan)] == [0, 1, 2, 3]


def _panel(fig, title):
    return next(ax for ax in fig.axes if ax.get_title().startswith(title))


def test_rounds_figure_draws_the_health_series_with_gaps(tmp_path):
    from issegm.rounds import orchestrator
    from issegm.datasets import get_dataset
    from issegm.rounds.plot import rounds_figure
    run = _orchestrator_args(tmp_path, '--num-round', '3')
    _write_round_metrics(run.output)
    rounds = [orchestrator.round_entry(run, plan)
              for plan in orchestrator.round_plans(run)]
    fig = rounds_figure(rounds, get_dataset('cityscapes'), 'CBST: test')
    assert len(fig.axes) == 6
    nan = float('nan')
    quality = _panel(fig, 'pseudo-labels against the target labels')
    drawn = {line.get_label(): list(line.get_ydata()) for line in quality.lines}
    assert len(drawn) == 3
    assert drawn['precision (kept pixels right)'] == pytest.approx([80, nan, nan], nan_ok=True)
    assert drawn['recall (pixels kept and right)'] == pytest.approx([25, nan, nan], nan_ok=True)
    assert drawn['kept share (labelled pixels kept)'] == pytest.approx([30, nan, nan],
                                                                       nan_ok=True)
    for title, values in (('agreement', [nan, nan, 75]), ('mean entropy', [0.4, nan, 0.4]),
                          ('mean confidence', [0.9, nan, 0.9]), ('target mIoU', [30, 35, nan])):
        line, = _panel(fig, title).lines
        assert list(line.get_xdata()) == [0, 1, 2]
        assert list(line.get_ydata()) == pytest.approx(values, nan_ok=True), title
    shares = _panel(fig, 'share of pseudo-labelled pixels')
    assert [p.get_height() for p in shares.patches[:3]] == pytest.approx([15, 15, 15])
    # a run without any health value (older metrics.json, or --no-health)
    old = [{'round': 0, 'selected_share': None, 'miou': None}]
    fig = rounds_figure(old, get_dataset('cityscapes'), 'old')
    for title in ('pseudo-labels against', 'agreement', 'mean entropy', 'mean confidence',
                  'target mIoU'):
        panel = _panel(fig, title)
        assert not panel.lines, title
        assert panel.texts[0].get_text().startswith(('not recorded', 'the target split has no'))
    import matplotlib.pyplot as plt
    plt.close('all')
