"""The CBST round loop (yzou2/CBST solve_AO.py, main; docs/algorithm.md section 1): each round runs
the per-round script's phase val, then phase train, as child processes with this Python; their
command lines come from issegm/rounds/run_flags.py. Called again with the same arguments it skips
every finished phase (issegm/rounds/layout.py). Wrapped by solve_AO.py and
script-self-paced-self-trained-segresnet.py.
"""
import collections
import json
import logging
import math
import os
import shutil
import subprocess
import sys
from typing import Optional

from issegm.crst.settings import CrstSettings, weights_on
from issegm.datacheck.lists import check_self_training_lists
from issegm.datasets import get_dataset, target_dataset
from issegm.rounds.layout import (discard_run, finished, finished_phases, metrics_path,
                                round_weights, rounds_log_path, rounds_plot_path,
                                run_record_path, stats_dir, summary_path)
from issegm.rounds import run_flags
from issegm.rounds.run_flags import child_argv, default_of
from issegm.rounds.plot import draw_rounds
from issegm.rounds.phase_settings import crst_of, phase_settings
from issegm.rounds.declare import ORCHESTRATOR, room_values, settings_class, value
from util.errors import UserError, cli_entry
from util.files import write_json
from util.kernels import isa_record, log_kernels, threads_record
from util.flags import HOROVOD_INSTALL_HINT, py2_str
from util.locks import TOKEN_ENV, output_lock
from util.logs import setup_logging
from util.model_label import check_num_classes, model_from_weights
from util.run_record import check_recorded_settings
from util.worker_devices import check_worker_devices, devices_per_worker

log = logging.getLogger('cbst')

ISSEGM = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ROUND_SCRIPT = os.path.join(ISSEGM, 'self-paced-self-trained-segresnet.py')
# Run by path, so it works without installation from any working directory.
LAUNCH_SCRIPT = os.path.join(ISSEGM, 'launch.py')
# horovodrun with the NumPy names MXNet reads restored first (plain horovodrun cannot import
# MXNet on NumPy 1.24+, Python 3.12 and 3.13), run by this Python.
HOROVODRUN_SCRIPT = os.path.join(ISSEGM, 'horovodrun.py')

# Flags yzou2/CBST solve_AO.py accepted and never used: accepted here too, with a warning
# (QUIRK kept; issegm/rounds/run_flags.py says what each does).
IGNORED_FLAGS = {'--to-epoch': 'round r trains until epoch (r + 1) * --epoch-per-round'}
# Flags yzou2/CBST solve_AO.py main passes only to a phase that never reads them (QUIRK kept,
# see issegm/rounds/run_flags.py): a value other than the default changes nothing (a warning
# says so).
UNREAD_FLAGS = {'--mine-thresh': 'passed to phase train only, which never reads it; phase val '
                                 'uses its default %s'}
# What summary.json copies from each round's metrics.json (null when it lacks a key): the
# selection, the target mIoU of phase val, and the pseudo-labels' health (the overall values
# and the per-class precision and recall; issegm/rounds/plot.py draws them).
SUMMARY_KEYS = ('selected_share', 'selected_total', 'miou', 'pseudo_precision_total',
                'pseudo_recall_total', 'pseudo_kept_share_total', 'agreement',
                'mean_entropy_total', 'mean_confidence_total', 'pseudo_precision',
                'pseudo_recall')
# run.json's key of the number of devices each worker of phase train uses
# (util.worker_devices.devices_per_worker):
# it changes results (each device normalises its own slice of a batch, and BatchNorm sees
# that slice), the ids of --gpus do not.
DEVICES_KEY = '--gpus (devices per worker)'
# Flags holding a path: recorded absolute, so a rerun from elsewhere compares the same files.
PATH_FLAGS = ('split', 'split_tgt', 'data_root', 'data_root_tgt', 'weights', 'prior')


def parse_args(argv):
    return check_args(build_parser().parse_args(argv))


def build_parser():
    """The orchestrator's parser: its flags of issegm/rounds/run_flags.py's table."""
    return run_flags.orchestrator_parser(
        description='CBST self-training rounds (orchestrator).',
        epilog='As upstream\'s solve_AO.py, phase val always gets --test-flipping and phase '
               'train --mine-id-address OUTPUT/stats; by default phase val also gets --no-cudnn '
               'and phase train --backward-do-mirror, --prefetcher process and --cache-images '
               '0 (see the flags above to change them). Numbers are passed as Python 2\'s '
               'str() wrote them (12 significant digits).')


def run_settings_class():
    """RunSettings for run_flags.SETTINGS as it is: a field per flag the orchestrator takes
    (model: --model, else the weights file's name before _ep-; kvstore: as phase train gets it,
    with --workers > 1 the distributed counterpart of --kvstore, or horovod), then horovodrun's
    path (--launcher horovod) and the CRST settings."""
    return settings_class(run_flags.SETTINGS, ORCHESTRATOR, 'RunSettings',
                          (('horovodrun', Optional[str]), ('crst', CrstSettings)),
                          run_settings_class.__doc__)


# One round's values as solve_AO.py main updates them from round to round, named as the
# settings they fill in on the children's command lines.
RoundPlan = collections.namedtuple(
    'RoundPlan', 'idx_round init_tgt_port init_src_port base_lr to_epoch seed_int')


def check_args(args):
    """Validate the flags and files; the RunSettings."""
    given = vars(args)
    values = room_values(run_flags.SETTINGS, ORCHESTRATOR, given)
    script = values['self_training_script'] or DEFAULT_ROUND_SCRIPT
    if not os.path.isfile(script):
        raise UserError('--self-training-script not found: %s' % script)
    if not os.path.isfile(values['weights']):
        raise UserError('weight file not found: %s' % values['weights'])
    kvstore, horovodrun = values['kvstore'], None
    if values['workers'] > 1:
        if values['launcher'] == 'ssh' and not values['hostfile']:
            raise UserError('--launcher ssh needs --hostfile (one host per line)')
        if values['hostfile'] and not os.path.isfile(values['hostfile']):
            raise UserError('--hostfile not found: %s' % values['hostfile'])
        if values['launcher'] == 'horovod':
            kvstore, horovodrun = 'horovod', horovodrun_path()
        else:
            # Workers of one job must share a parameter server: the single-machine kvstores
            # become their distributed counterparts.
            kvstore = {'local': 'dist_sync', 'device': 'dist_device_sync'}.get(kvstore, kvstore)
    check_worker_devices(values['gpus'], values['workers'], values['launcher'],
                         values['hostfile'])
    model = model_from_weights(values['model'], values['weights'])
    crst = crst_of(given)
    # The phases read the target with these tables (cityscapes16 under a synthia source).
    target = get_dataset(target_dataset(values['dataset'], values['dataset_tgt']))
    check_num_classes(model, target, 'the target %s (with source %s)'
                      % (target.name, values['dataset']))
    values.update(self_training_script=script, model=model, kvstore=kvstore)
    return run_settings_class()(horovodrun=horovodrun, crst=crst, **values)


def horovodrun_path():
    """HOROVODRUN_SCRIPT, once Horovod's horovodrun is found beside this Python (a venv's bin)
    or on PATH; a UserError if missing."""
    beside = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
    found = beside if os.path.isfile(beside) else shutil.which('horovodrun')
    if not found:
        raise UserError('--launcher horovod: horovodrun not found. ' + HOROVOD_INSTALL_HINT)
    return HOROVODRUN_SCRIPT


def ignored_flag_warnings(run):
    """One warning line per flag of IGNORED_FLAGS given on the command line and per flag of
    UNREAD_FLAGS given another value than its default."""
    lines = []
    for flag, why in IGNORED_FLAGS.items():
        value = getattr(run, run_flags.setting(flag).dest)
        if value is not None:
            lines.append('warning: %s %s is accepted and ignored, as upstream (%s)'
                         % (flag, value, why))
    for flag, why in UNREAD_FLAGS.items():
        given, default = getattr(run, run_flags.setting(flag).dest), default_of(flag)
        if given != default:
            lines.append('warning: %s %s changes nothing, as in yzou2/CBST solve_AO.py: %s'
                         % (flag, py2_str(given), why % py2_str(default)))
    return lines


def round_plans(run):
    """The RoundPlan of every round, as upstream's solve_AO.py main loop updates them: floats
    accumulate unrounded here and are rounded only when written into a child's command line
    (issegm/rounds/run_flags.py)."""
    lr, to_epoch = run.base_lr, run.epoch_per_round
    tgt_port, src_port = run.init_tgt_port, run.init_src_port
    for r in range(run.num_round):
        seed = run.seed_int if run.source_sample_policy == 'cumulative' else r
        yield RoundPlan(r, tgt_port, src_port, lr, to_epoch, seed)
        to_epoch += run.epoch_per_round
        lr /= math.sqrt(2)
        if tgt_port < run.max_tgt_port:
            tgt_port += run.step_tgt_port
        if src_port < run.max_src_port:
            src_port += run.step_src_port


def phase_arguments(run, plan, weights):
    """The per-round script's arguments for the round of RoundPlan `plan`, starting from
    `weights`: (val, train), written from issegm/rounds/run_flags.py's table: the run's settings,
    the plan's, and those the round loop always passes (as upstream's solve_AO.py)."""
    values = dict(vars(run), weights=weights, test_flipping=True,
                  mine_id_address=stats_dir(run.output), **plan._asdict())
    return tuple(child_argv(phase, dict(values, phase=phase)) for phase in ('val', 'train'))


def check_rounds(run):
    """Every round's two command lines through the per-round script's own checks
    (issegm.rounds.phase_settings, no MXNet): a value a phase would refuse (a batch of 0 images, a
    portion outside [0, 1], in any round as the portions grow) stops the run before round 0."""
    weights = run.weights
    for plan in round_plans(run):
        for phase, argv in zip(('val', 'train'), phase_arguments(run, plan, weights)):
            try:
                phase_settings(argv)
            except UserError as e:
                if plan.idx_round == 0:
                    raise
                raise UserError('%s (phase %s of round %d)' % (e, phase, plan.idx_round))
        weights = round_weights(run.output, plan.idx_round, run.model, plan.to_epoch)


def result_settings(run):
    """{flag: value} of every flag of the orchestrator that changes results (run_flags:
    `recorded`, else `changes_results`), defaults included, paths absolute; --kvstore as phase
    train gets it (--workers and --launcher choose its distributed form)."""
    settings = {}
    for row in run_flags.SETTINGS:
        if ORCHESTRATOR not in row.parsers or not row.in_run_record:
            continue
        given = getattr(run, row.dest)
        if row.dest in PATH_FLAGS and given is not None and (
                row.dest.startswith('data_root') or os.sep in given or os.path.exists(given)):
            given = os.path.abspath(given)
        settings[row.flag] = given
    settings[DEVICES_KEY] = devices_per_worker(run.gpus, run.workers, run.launcher)
    return settings


def check_recorded_run(run, argv):
    """Compare the flags with OUTPUT/run.json (the settings of the rounds already there): a
    difference in a flag that changes results is a UserError listing the flags, unless no phase
    has finished yet or --overwrite discards the earlier run. Writes run.json when there is
    none (or a new one; util.run_record.check_recorded_settings). Returns the names --overwrite
    discarded."""
    output = run.output
    path = run_record_path(output)
    discarded = discard_run(output) if run.overwrite else []
    current = result_settings(run)
    check_recorded_settings(
        path, current, argv, lambda: finished_phases(output),
        lambda changed: '%s holds rounds run with other settings (%s): %s; resume with those '
        'values, use another --output, or add --overwrite to discard those rounds and start '
        'over' % (output, path, changed),
        # a run.json written before the device count was recorded: taken as this run's count
        defaults={DEVICES_KEY: current[DEVICES_KEY]},
        extra={'cpu_isa': isa_record(), 'cpu_threads': threads_record()})
    return discarded


def kernels_change_warning(output):
    """A warning line when run.json records other CPU kernels (the instruction set, the OpenMP
    threads: util/kernels.py) for the rounds already there than this process runs: the rounds
    added now may differ from a run on one machine. None when they agree or it does not say."""
    try:
        with open(run_record_path(output)) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return None
    changed = []
    for key, variable, current in (('cpu_isa', 'DNNL_MAX_CPU_ISA', isa_record()),
                                   ('cpu_threads', 'OMP_NUM_THREADS', threads_record())):
        before = (recorded.get(key) or {}).get('effective') if isinstance(recorded, dict) else None
        if before is not None and before != current['effective']:
            changed.append('%s %s (now %s: set %s=%s for the same numbers)' % (
                key, before, current['effective'], variable, before))
    if not changed:
        return None
    return '%s records rounds computed with other CPU kernels: %s' % (
        run_record_path(output), ', '.join(changed))


def child_command(run, script_args, distributed=False):
    """This Python running the per-round script; for --workers > 1 through issegm.launch (the
    output folder's lock token passed on to every process: util/locks.py) or horovodrun.

    issegm.launch runs the same command for the scheduler, the servers and the workers (on the
    hosts of --hostfile with --launcher ssh: this Python and script path must exist there);
    horovodrun runs it once per worker (rank), on localhost or the hosts of its --hostfile,
    with this environment."""
    command = [sys.executable, run.self_training_script] + script_args
    if distributed and run.workers > 1 and run.launcher == 'horovod':
        hosts = (['--hostfile', run.hostfile] if run.hostfile
                 else ['-H', 'localhost:%d' % run.workers])
        command = [sys.executable, run.horovodrun, '-np', str(run.workers)] + hosts + command
    elif distributed and run.workers > 1:
        launch = [sys.executable, LAUNCH_SCRIPT, '-n', str(run.workers)]
        launch += value('-s', run.servers) + ['--launcher', run.launcher, '--env', TOKEN_ENV]
        command = launch + value('-H', run.hostfile) + ['--'] + command
    return command


def run_child(command, env=None):
    log.info('running: %s', ' '.join(command))
    sys.stdout.flush()
    return subprocess.call(command, env=env)


def round_entry(run, plan):
    """The summary.json entry of round `plan`: its schedule, the CRST weights of a CRST run, and
    from phase val's metrics.json (when there is one) the selection and SUMMARY_KEYS (null when
    metrics.json lacks them: --no-health, no target labels, agreement at round 0)."""
    entry = {'round': plan.idx_round, 'tgt_port': plan.init_tgt_port,
             'src_port': plan.init_src_port, 'lr': plan.base_lr}
    entry.update(weights_on(run.crst))  # nothing for CBST: its summary.json stays as it was
    path = metrics_path(run.output, plan.idx_round)
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
    path = summary_path(run.output)
    rounds = []
    if os.path.isfile(path):
        with open(path) as f:
            rounds = [e for e in json.load(f) if e.get('round') != plan.idx_round]
    rounds.append(entry)
    rounds.sort(key=lambda e: e['round'])
    write_json(path, rounds)
    return rounds


def method_name(run):
    """ST, CBST or CBST-SP, as the paper names them, then the CRST regularisers that are on,
    as the CRST paper names them (e.g. CBST + LR-ENT 0.25 + MR-KLD 0.01)."""
    name = 'ST' if run.kc_policy == 'global' else 'CBST'
    name += '-SP' if run.with_prior else ''
    for key, weight in weights_on(run.crst).items():
        kind = key.split('_')[-1].upper()
        name += ' + %s-%s %g' % ('LR' if key.startswith('lr') else 'MR', kind, weight)
    return name


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    run = parse_args(argv)
    check_rounds(run)  # the children's flags, by their own checks: nothing is written before
    new_folder = not os.path.isdir(run.output)
    if new_folder and not run.skip_data_check:  # bad data stops here, before any output
        check_self_training_lists(run)
    with output_lock(run.output, [sys.executable] + sys.argv[:1] + argv) as lock:
        if not new_folder and not run.skip_data_check:  # after a busy folder's refusal
            check_self_training_lists(run)
        discarded = check_recorded_run(run, argv)
        setup_logging(rounds_log_path(run.output))
        log_kernels(log)
        for line in [lock.takeover, kernels_change_warning(run.output)] + \
                ignored_flag_warnings(run):
            if line:
                log.warning('%s', line)
        if discarded:
            log.info('--overwrite: discarded %s of the earlier run', ', '.join(discarded))
        return run_rounds(run, lock.child_env())


def run_rounds(run, env):
    """The rounds: each phase's child with the environment `env` (the lock's token), skipping
    the phases finished before. Returns the exit status."""
    weights = run.weights
    redo_rest = False  # once a phase re-runs, every later phase depends on new results
    for plan in round_plans(run):
        r = plan.idx_round
        for phase, script_args in zip(('val', 'train'), phase_arguments(run, plan, weights)):
            if not redo_rest and finished(run.output, r, phase, script_args):
                log.info('round %d phase %s already finished, skipping', r, phase)
                continue
            redo_rest = True
            status = run_child(child_command(run, script_args, distributed=phase == 'train'),
                               env)
            if status != 0:
                log.info('round %d phase %s failed with exit status %d', r, phase, status)
                return status
        rounds = round_summary(run, plan)
        draw_rounds(rounds_plot_path(run.output), rounds,
                    get_dataset(target_dataset(run.dataset, run.dataset_tgt)),
                    '%s: %s' % (method_name(run), run.output))
        weights = round_weights(run.output, r, run.model, plan.to_epoch)
    log.info('finished %d rounds; final weights %s', run.num_round, weights)
    return 0


if __name__ == '__main__':
    sys.exit(main())
