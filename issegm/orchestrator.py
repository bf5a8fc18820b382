"""The CBST round loop (yzou2/CBST solve_AO.py, main; docs/algorithm.md section 1): each round runs
the per-round script's phase val, then phase train, as child processes with this Python; their
command lines come from issegm/round_flags.py. Called again with the same arguments it skips
every finished phase (issegm/round_files.py). Wrapped by solve_AO.py and
script-self-paced-self-trained-segresnet.py.
"""
import argparse
import collections
import dataclasses
import json
import logging
import math
import os
import shutil
import subprocess
import sys

from issegm.crst.settings import CrstSettings, describe
from issegm.data_checks import check_self_training_lists
from issegm.datasets import get_dataset, target_dataset
from issegm.round_files import (discard_run, finished, finished_phases, metrics_path,
                                round_weights, run_record_path, stats_dir)
from issegm.round_flags import ROUND_FLAGS, child_argv, crst_of, default_of, shared_flags, value
from issegm.round_plot import draw_rounds
from issegm.round_settings import check_round_args, parse_round_args
from util.errors import UserError, cli_entry
from util.files import write_json
from util.flags import HOROVOD_INSTALL_HINT, FlagParser, py2_str
from util.launch import LAUNCHERS as PS_LAUNCHERS
from util.locks import TOKEN_ENV, output_lock
from util.logs import setup_logging
from util.model_label import check_num_classes, model_from_weights

log = logging.getLogger('cbst')

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROUND_SCRIPT = os.path.join(HERE, 'self-paced-self-trained-segresnet.py')
# Run by path, so it works without installation from any working directory.
LAUNCH_SCRIPT = os.path.join(HERE, 'launch.py')
# horovodrun with the NumPy names MXNet reads restored first (plain horovodrun cannot import
# MXNet on NumPy 1.24+, Python 3.12 and 3.13), run by this Python.
HOROVODRUN_SCRIPT = os.path.join(HERE, 'horovodrun.py')

# How each round picks its source images: 'cumulative' always draws with --seed-int (a larger
# portion adds images), 'random' with the round number (yzou2/CBST issegm/solve_AO.py).
SOURCE_SAMPLE_POLICIES = ('cumulative', 'random')
# Flags yzou2/CBST solve_AO.py accepted and never used: accepted here too, with a warning
# (QUIRK kept).
IGNORED_FLAGS = {'--to-epoch': 'round r trains until epoch (r + 1) * --epoch-per-round'}
# Flags yzou2/CBST solve_AO.py main passes only to a phase that never reads them (QUIRK kept,
# see issegm/round_flags.py): a value other than the default changes nothing (a warning says so).
UNREAD_FLAGS = {'--mine-thresh': 'passed to phase train only, which never reads it; phase val '
                                 'uses its default %s'}
# How phase train runs on --workers N: issegm.launch's parameter-server job (local or ssh), or
# horovodrun (all-reduce, --kvstore horovod).
LAUNCHERS = PS_LAUNCHERS + ('horovod',)
# The orchestrator's own flags (dests) that do not change results: a rerun on a folder may
# change them (README, "Safety"). --launcher counts through the --kvstore phase train gets.
RUN_FLAGS_WITHOUT_EFFECT = ('num_round', 'to_epoch', 'backward_do_mirror', 'no_cudnn',
                            'self_training_script', 'servers', 'launcher', 'hostfile',
                            'skip_data_check', 'overwrite', 'output', 'help')
# What summary.json copies from each round's metrics.json (null when it lacks a key): the
# selection, the target mIoU of phase val, and the pseudo-labels' health (the overall values
# and the per-class precision and recall; issegm/round_plot.py draws them).
SUMMARY_KEYS = ('selected_share', 'selected_total', 'miou', 'pseudo_precision_total',
                'pseudo_recall_total', 'pseudo_kept_share_total', 'agreement',
                'mean_entropy_total', 'mean_confidence_total', 'pseudo_precision',
                'pseudo_recall')
# Flags holding a path: recorded absolute, so a rerun from elsewhere compares the same files.
PATH_FLAGS = ('split', 'split_tgt', 'data_root', 'data_root_tgt', 'weights', 'prior')


def parse_args(argv):
    return check_args(build_parser().parse_args(argv))


def build_parser():
    """The orchestrator's parser: the shared flags of issegm/round_flags.py and its own."""
    parser = FlagParser(
        description='CBST self-training rounds (orchestrator).', parents=[shared_flags()],
        epilog='As upstream\'s solve_AO.py, phase val always gets --test-flipping and phase '
               'train --mine-id-address OUTPUT/stats; by default phase val also gets --no-cudnn '
               'and phase train --backward-do-mirror, --prefetcher process and --cache-images '
               '0 (see the flags above to change them). Numbers are passed as Python 2\'s '
               'str() wrote them (12 significant digits).')
    parser.set_defaults(prefetcher='process')  # as upstream's solve_AO.py passed
    a = parser.add_argument
    a('--num-round', type=int, default=12)
    a('--epoch-per-round', type=int, default=2, help='epochs each round trains')
    a('--max-tgt-port', type=float, default=0.5, help='the target portion grows while below it')
    a('--max-src-port', type=float, default=0.06, help='the source portion grows while below it')
    a('--step-tgt-port', type=float, default=0.05, help='target portion added per round')
    a('--step-src-port', type=float, default=0.0025, help='source portion added per round')
    a('--source-sample-policy', default='cumulative', choices=SOURCE_SAMPLE_POLICIES)
    for flag, why in IGNORED_FLAGS.items():
        a(flag, type=int, help='accepted and ignored (a warning says so), as upstream: ' + why)
    a('--backward-do-mirror', dest='backward_do_mirror', action='store_true', default=True,
      help='phase train: pass --backward-do-mirror (the default, as upstream)')
    a('--no-backward-do-mirror', dest='backward_do_mirror', action='store_false',
      help='phase train: do not pass --backward-do-mirror')
    a('--no-cudnn', dest='no_cudnn', action='store_true', default=True,
      help='phase val: pass --no-cudnn (the default, as upstream)')
    a('--cudnn-autotune', dest='no_cudnn', action='store_false',
      help='phase val: do not pass --no-cudnn (MXNet\'s cuDNN autotuning stays on)')
    a('--self-training-script', default=DEFAULT_ROUND_SCRIPT,
      help='the per-round script run for each phase')
    a('--workers', type=int, default=1,
      help='run phase train on N workers (phase val stays one process): with --launcher '
           'local or ssh a parameter-server job through issegm.launch, where --kvstore local '
           'means dist_sync and device means dist_device_sync; with --launcher horovod under '
           'horovodrun with --kvstore horovod (see the per-round script\'s --kvstore for what '
           'each does to the learning rate)')
    a('--servers', type=int, help='parameter servers for --workers (default: as many as workers)')
    a('--launcher', default='local', choices=LAUNCHERS, help='with --workers')
    a('--hostfile', help='--launcher ssh: hosts, one per line; --launcher horovod: '
                         'horovodrun\'s host file ("HOST slots=N" lines; default localhost)')
    a('--skip-data-check', action='store_true',
      help='do not check both lists\' files before round 0 (issegm/data_checks.py)')
    a('--overwrite', action='store_true',
      help='discard the rounds an earlier run left in --output and start over (a rerun with '
           'other values of flags that change results is refused without it)')
    return parser


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """The orchestrator's flags as parsed (never written to) and what check_args derives from
    them: the model label (--model, else the weights file's name before _ep-), the kvstore
    phase train gets (with --workers > 1 the distributed counterpart of --kvstore, or
    horovod), horovodrun's path (--launcher horovod) and the CRST settings."""
    flags: argparse.Namespace
    model: str
    kvstore: str
    horovodrun: str
    crst: CrstSettings


# One round's values as solve_AO.py main updates them from round to round.
RoundPlan = collections.namedtuple('RoundPlan', 'idx_round tgt_port src_port lr to_epoch seed')


def check_args(args):
    """Validate the flags and files; the RunSettings."""
    if args.num_round < 1:
        raise UserError('--num-round must be at least 1, got %d' % args.num_round)
    if not os.path.isfile(args.self_training_script):
        raise UserError('--self-training-script not found: %s' % args.self_training_script)
    if not os.path.isfile(args.weights):
        raise UserError('weight file not found: %s' % args.weights)
    if args.workers < 1 or (args.servers is not None and args.servers < 1):
        raise UserError('--workers and --servers must be at least 1')
    kvstore, horovodrun = args.kvstore, None
    if args.workers > 1:
        if args.launcher == 'ssh' and not args.hostfile:
            raise UserError('--launcher ssh needs --hostfile (one host per line)')
        if args.hostfile and not os.path.isfile(args.hostfile):
            raise UserError('--hostfile not found: %s' % args.hostfile)
        if args.launcher == 'horovod':
            kvstore, horovodrun = 'horovod', horovodrun_path()
        else:
            # Workers of one job must share a parameter server: the single-machine kvstores
            # become their distributed counterparts.
            kvstore = {'local': 'dist_sync', 'device': 'dist_device_sync'}.get(kvstore, kvstore)
    model = model_from_weights(args.model, args.weights)
    crst = crst_of(args)
    # The phases read the target with these tables (cityscapes16 under a synthia source).
    target = get_dataset(target_dataset(args.dataset, args.dataset_tgt))
    check_num_classes(model, target, 'the target %s (with source %s)' % (target.name, args.dataset))
    return RunSettings(args, model, kvstore, horovodrun, crst)


def horovodrun_path():
    """HOROVODRUN_SCRIPT, once Horovod's horovodrun is found beside this Python (a venv's bin)
    or on PATH; a UserError if missing."""
    beside = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
    found = beside if os.path.isfile(beside) else shutil.which('horovodrun')
    if not found:
        raise UserError('--launcher horovod: horovodrun not found. ' + HOROVOD_INSTALL_HINT)
    return HOROVODRUN_SCRIPT


def ignored_flag_warnings(args):
    """One warning line per flag of IGNORED_FLAGS given on the command line and per flag of
    UNREAD_FLAGS given another value than its default."""
    lines = []
    for flag, why in IGNORED_FLAGS.items():
        value = getattr(args, flag[2:].replace('-', '_'))
        if value is not None:
            lines.append('warning: %s %s is accepted and ignored, as upstream (%s)'
                         % (flag, value, why))
    for flag, why in UNREAD_FLAGS.items():
        given, default = getattr(args, flag[2:].replace('-', '_')), default_of(flag)
        if given != default:
            lines.append('warning: %s %s changes nothing, as in yzou2/CBST solve_AO.py: %s'
                         % (flag, py2_str(given), why % py2_str(default)))
    return lines


def round_settings(args):
    """The RoundPlan of every round, as upstream's solve_AO.py main loop updates them: floats
    accumulate unrounded here and are rounded only when written into a child's command line
    (issegm/round_flags.py)."""
    lr, to_epoch = args.base_lr, args.epoch_per_round
    tgt_port, src_port = args.init_tgt_port, args.init_src_port
    for r in range(args.num_round):
        seed = args.seed_int if args.source_sample_policy == 'cumulative' else r
        yield RoundPlan(r, tgt_port, src_port, lr, to_epoch, seed)
        to_epoch += args.epoch_per_round
        lr /= math.sqrt(2)
        if tgt_port < args.max_tgt_port:
            tgt_port += args.step_tgt_port
        if src_port < args.max_src_port:
            src_port += args.step_src_port


def phase_arguments(run, plan, weights):
    """The per-round script's arguments for the round of RoundPlan `plan`, starting from
    `weights`: (val, train), written from issegm/round_flags.py's table."""
    values = dict(vars(run.flags), model=run.model, kvstore=run.kvstore, weights=weights,
                  idx_round=plan.idx_round, init_tgt_port=plan.tgt_port,
                  init_src_port=plan.src_port, base_lr=plan.lr, to_epoch=plan.to_epoch,
                  seed_int=plan.seed, test_flipping=True,
                  mine_id_address=stats_dir(run.flags.output))
    return tuple(child_argv(phase, dict(values, phase=phase)) for phase in ('val', 'train'))


def check_rounds(run):
    """Every round's two command lines through the per-round script's own checks
    (issegm.round_settings, no MXNet): a value a phase would refuse (a batch of 0 images, a
    portion outside [0, 1], in any round as the portions grow) stops the run before round 0."""
    weights = run.flags.weights
    for plan in round_settings(run.flags):
        for phase, argv in zip(('val', 'train'), phase_arguments(run, plan, weights)):
            try:
                check_round_args(parse_round_args(argv), argv)
            except UserError as e:
                if plan.idx_round == 0:
                    raise
                raise UserError('%s (phase %s of round %d)' % (e, phase, plan.idx_round))
        weights = round_weights(run.flags.output, plan.idx_round, run.model, plan.to_epoch)


def result_settings(run):
    """{flag: value} of every flag that changes results (all but RUN_FLAGS_WITHOUT_EFFECT and
    the rows of issegm/round_flags.py marked so), defaults included, paths absolute; --kvstore
    as phase train gets it (--workers and --launcher choose its distributed form)."""
    neutral = set(RUN_FLAGS_WITHOUT_EFFECT) | {row.dest for row in ROUND_FLAGS
                                               if not row.changes_results}
    settings = {}
    for action in build_parser()._actions:
        if action.dest in neutral or not action.option_strings:
            continue
        given = getattr(run.flags, action.dest)
        if action.dest in PATH_FLAGS and given is not None and (
                action.dest.startswith('data_root') or os.sep in given or os.path.exists(given)):
            given = os.path.abspath(given)
        settings[action.option_strings[0]] = given
    settings['--kvstore'] = run.kvstore
    return settings


def check_recorded_run(run, argv):
    """Compare the flags with OUTPUT/run.json (the settings of the rounds already there): a
    difference in a flag that changes results is a UserError listing the flags, unless no phase
    has finished yet or --overwrite discards the earlier run. Writes run.json when there is
    none (or a new one). Returns the names --overwrite discarded."""
    output, current = run.flags.output, result_settings(run)
    path = run_record_path(output)
    discarded = discard_run(output) if run.flags.overwrite else []
    recorded = None
    if os.path.isfile(path):
        try:
            with open(path) as f:
                recorded = json.load(f)['settings']
        except (ValueError, KeyError, TypeError) as e:
            raise UserError('cannot read %s (%s): add --overwrite to start over' % (path, e))
    if recorded == current:
        return discarded
    if recorded is not None and finished_phases(output):
        changed = ['%s %s (now %s)' % (flag, _shown(recorded.get(flag)), _shown(current.get(flag)))
                   for flag in sorted(set(recorded) | set(current), key=_flag_order(current))
                   if recorded.get(flag) != current.get(flag)]
        raise UserError('%s holds rounds run with other settings (%s): %s; resume with those '
                        'values, use another --output, or add --overwrite to discard those '
                        'rounds and start over' % (output, path, ', '.join(changed)))
    write_json(path, {'command': list(argv), 'settings': current})
    return discarded


def _shown(v):
    return '(none)' if v is None else py2_str(v)


def _flag_order(current):
    order = list(current)
    return lambda flag: (order.index(flag) if flag in order else len(order), flag)


def child_command(run, script_args, distributed=False):
    """This Python running the per-round script; for --workers > 1 through issegm.launch (the
    output folder's lock token passed on to every process: util/locks.py) or horovodrun.

    issegm.launch runs the same command for the scheduler, the servers and the workers (on the
    hosts of --hostfile with --launcher ssh: this Python and script path must exist there);
    horovodrun runs it once per worker (rank), on localhost or the hosts of its --hostfile,
    with this environment."""
    args = run.flags
    command = [sys.executable, args.self_training_script] + script_args
    if distributed and args.workers > 1 and args.launcher == 'horovod':
        hosts = (['--hostfile', args.hostfile] if args.hostfile
                 else ['-H', 'localhost:%d' % args.workers])
        command = [sys.executable, run.horovodrun, '-np', str(args.workers)] + hosts + command
    elif distributed and args.workers > 1:
        launch = [sys.executable, LAUNCH_SCRIPT, '-n', str(args.workers)]
        launch += value('-s', args.servers) + ['--launcher', args.launcher, '--env', TOKEN_ENV]
        command = launch + value('-H', args.hostfile) + ['--'] + command
    return command


def run_child(command, env=None):
    log.info('running: %s', ' '.join(command))
    sys.stdout.flush()
    return subprocess.call(command, env=env)


def round_entry(run, plan):
    """The summary.json entry of round `plan`: its schedule, the CRST weights of a CRST run, and
    from phase val's metrics.json (when there is one) the selection and SUMMARY_KEYS (null when
    metrics.json lacks them: --no-health, no target labels, agreement at round 0)."""
    entry = {'round': plan.idx_round, 'tgt_port': plan.tgt_port, 'src_port': plan.src_port,
             'lr': plan.lr}
    entry.update(describe(run.crst))  # nothing for CBST: its summary.json stays as it was
    path = metrics_path(run.flags.output, plan.idx_round)
    if os.path.isfile(path):
        with open(path) as f:
            metrics = json.load(f)
        entry.update({key: metrics.get(key) for key in SUMMARY_KEYS})
    return entry


def round_line(entry):
    """The orchestrator's log line of a summary.json entry: schedule, selected share per class,
    then what is known of the mIoU, the pseudo-label precision, the kept share, the agreement."""
    shares = ' '.join('%s %.1f%%' % (name, 100 * share)
                      for name, share in (entry.get('selected_share') or {}).items())
    line = 'round %d | tgt_port %.4f src_port %.4f lr %.3g | selected: %s' % (
        entry['round'], entry['tgt_port'], entry['src_port'], entry['lr'], shares)
    for key, text in (('miou', 'mIoU %.2f'), ('pseudo_precision_total',
                                              'pseudo-label precision %.1f%%'),
                      ('selected_total', 'kept %.1f%%'), ('agreement', 'agreement %.1f%%')):
        if entry.get(key) is not None:
            line += ' | ' + text % (100 * entry[key])
    return line


def round_summary(run, plan):
    """One log line and one summary.json entry per round (round_entry, round_line); returns all
    entries so far."""
    entry = round_entry(run, plan)
    log.info('%s', round_line(entry))
    summary_path = os.path.join(run.flags.output, 'summary.json')
    rounds = []
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            rounds = [e for e in json.load(f) if e.get('round') != plan.idx_round]
    rounds.append(entry)
    rounds.sort(key=lambda e: e['round'])
    write_json(summary_path, rounds)
    return rounds


def method_name(run):
    """ST, CBST or CBST-SP, as the paper names them, then the CRST regularisers that are on,
    as the CRST paper names them (e.g. CBST + LR-ENT 0.25 + MR-KLD 0.01)."""
    name = 'ST' if run.flags.kc_policy == 'global' else 'CBST'
    name += '-SP' if run.flags.with_prior else ''
    for key, weight in describe(run.crst).items():
        kind = key.split('_')[-1].upper()
        name += ' + %s-%s %g' % ('LR' if key.startswith('lr') else 'MR', kind, weight)
    return name


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    run = parse_args(argv)
    args = run.flags
    check_rounds(run)  # the children's flags, by their own checks: nothing is written before
    new_folder = not os.path.isdir(args.output)
    if new_folder and not args.skip_data_check:  # bad data stops here, before any output
        check_self_training_lists(args)
    with output_lock(args.output, [sys.executable] + sys.argv[:1] + argv) as lock:
        if not new_folder and not args.skip_data_check:  # after a busy folder's refusal
            check_self_training_lists(args)
        discarded = check_recorded_run(run, argv)
        setup_logging(os.path.join(args.output, 'rounds.log'))
        for line in [lock.takeover] + ignored_flag_warnings(args):
            if line:
                log.warning('%s', line)
        if discarded:
            log.info('--overwrite: discarded %s of the earlier run', ', '.join(discarded))
        return run_rounds(run, lock.child_env())


def run_rounds(run, env):
    """The rounds: each phase's child with the environment `env` (the lock's token), skipping
    the phases finished before. Returns the exit status."""
    args = run.flags
    weights = args.weights
    redo_rest = False  # once a phase re-runs, every later phase depends on new results
    for plan in round_settings(args):
        r = plan.idx_round
        for phase, script_args in zip(('val', 'train'), phase_arguments(run, plan, weights)):
            if not redo_rest and finished(args.output, r, phase, script_args):
                log.info('round %d phase %s already finished, skipping', r, phase)
                continue
            redo_rest = True
            status = run_child(child_command(run, script_args, distributed=phase == 'train'),
                               env)
            if status != 0:
                log.info('round %d phase %s failed with exit status %d', r, phase, status)
                return status
        rounds = round_summary(run, plan)
        draw_rounds(os.path.join(args.output, 'rounds.png'), rounds,
                    get_dataset(target_dataset(args.dataset, args.dataset_tgt)),
                    '%s: %s' % (method_name(run), args.output))
        weights = round_weights(args.output, r, run.model, plan.to_epoch)
    log.info('finished %d rounds; final weights %s', args.num_round, weights)
    return 0


if __name__ == '__main__':
    sys.exit(main())
