"""The CBST round loop (SPEC 2.1): for each round, run the per-round script's phase val, then
phase train, each as a child process with this Python. Wrapped by
issegm/script-self-paced-self-trained-segresnet.py (and upstream's later name solve_AO.py).

Calling it again with the same arguments skips every phase that finished (each phase leaves
`OUTPUT/R/val.done` / `train.done` holding its command line) and continues where it stopped.
"""
import argparse
import json
import logging
import math
import os
import subprocess
import sys

from issegm.self_training import (SOURCE_SAMPLE_POLICIES, TRAIN_DONE, VAL_DONE, KC_POLICIES,
                                  add_shared_args)
from util.errors import UserError, cli_entry
from util.files import write_json

log = logging.getLogger('cbst')

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ROUND_SCRIPT = os.path.join(HERE, 'self-paced-self-trained-segresnet.py')


def parse_args(argv):
    parser = argparse.ArgumentParser(description='CBST self-training rounds (orchestrator).')
    add_shared_args(parser)
    a = parser.add_argument
    a('--self-training-script', default=DEFAULT_ROUND_SCRIPT,
      help='the per-round script run for each phase')
    a('--workers', type=int, default=1,
      help='run phase train on N workers via issegm.launch (phase val stays one process); '
           'with N > 1 --kvstore local means dist_sync and device means dist_device_sync')
    a('--servers', type=int, help='parameter servers for --workers (default: as many as workers)')
    a('--launcher', default='local', help='local or ssh (with --workers)')
    a('--hostfile', help='hosts for --launcher ssh, one per line')
    a('--no-progress', action='store_true', help='no progress bars in the children')
    args = parser.parse_args(argv)
    if args.kc_policy not in KC_POLICIES:
        raise UserError('unknown --kc-policy %r (allowed: %s)' % (args.kc_policy, ', '.join(KC_POLICIES)))
    if args.source_sample_policy not in SOURCE_SAMPLE_POLICIES:
        raise UserError('unknown --source-sample-policy %r (allowed: %s)'
                        % (args.source_sample_policy, ', '.join(SOURCE_SAMPLE_POLICIES)))
    if not os.path.isfile(args.self_training_script):
        raise UserError('--self-training-script not found: %s' % args.self_training_script)
    if not os.path.isfile(args.weights):
        raise UserError('weight file not found: %s' % args.weights)
    if args.launcher not in ('local', 'ssh'):
        raise UserError('unknown --launcher %r (allowed: local, ssh)' % args.launcher)
    if args.workers < 1 or (args.servers is not None and args.servers < 1):
        raise UserError('--workers and --servers must be at least 1')
    if args.workers > 1:
        if args.launcher == 'ssh' and not args.hostfile:
            raise UserError('--launcher ssh needs --hostfile (one host per line)')
        if args.hostfile and not os.path.isfile(args.hostfile):
            raise UserError('--hostfile not found: %s' % args.hostfile)
        # Workers of one job must share a parameter server: the single-machine kvstores
        # become their distributed counterparts.
        args.kvstore = {'local': 'dist_sync', 'device': 'dist_device_sync'}.get(
            args.kvstore, args.kvstore)
    from util.model_label import model_from_weights
    args.model = model_from_weights(args.model, args.weights)
    return args


def _flag(name, value):
    return [] if value is None else ['--' + name, str(value)]


def phase_arguments(args, r, weights, tgt_port, src_port, lr, to_epoch, seed):
    """The per-round script's arguments for round r: (val, train)."""
    common = (_flag('dataset', args.dataset) + _flag('dataset-tgt', args.dataset_tgt)
              + _flag('split', args.split) + _flag('split-tgt', args.split_tgt)
              + _flag('data-root', args.data_root) + _flag('data-root-tgt', args.data_root_tgt)
              + _flag('output', args.output) + _flag('model', args.model)
              + _flag('weights', weights) + _flag('idx-round', r) + _flag('gpus', args.gpus)
              + (['--no-progress'] if args.no_progress else []))
    val = (['--phase', 'val'] + common + _flag('init-tgt-port', tgt_port)
           + _flag('test-scales', args.test_scales) + ['--test-flipping']
           + _flag('with-prior', str(bool(args.with_prior))) + _flag('prior', args.prior)
           + _flag('kc-policy', args.kc_policy) + _flag('mine-id-number', args.mine_id_number)
           + _flag('mine-thresh', args.mine_thresh)
           + (['--keep-probmaps'] if args.keep_probmaps else []))
    train = (['--phase', 'train'] + common + _flag('init-src-port', src_port)
             + _flag('base-lr', lr) + _flag('to-epoch', to_epoch) + _flag('seed-int', seed)
             + _flag('mine-port', args.mine_port) + _flag('mine-id-number', args.mine_id_number)
             + _flag('mine-thresh', args.mine_thresh)
             + _flag('mine-id-address', os.path.join(args.output, 'stats'))
             + _flag('crop-size', args.crop_size) + _flag('scale-rate-range', args.scale_rate_range)
             + _flag('origin-size', args.origin_size) + _flag('origin-size-tgt', args.origin_size_tgt)
             + _flag('batch-images', args.batch_images)
             + _flag('prefetch-threads', args.prefetch_threads)
             + _flag('prefetcher', args.prefetcher) + _flag('kvstore', args.kvstore))
    return val, train


LAUNCH_SCRIPT = os.path.join(HERE, 'launch.py')


def child_command(args, script_args, distributed=False):
    """This Python running the per-round script; through issegm.launch for --workers > 1.

    The launcher runs the same command for the scheduler, the servers and the workers (on the
    hosts of --hostfile with --launcher ssh: this Python and script path must exist there)."""
    command = [sys.executable, args.self_training_script] + script_args
    if distributed and args.workers > 1:
        # By path, so it works without installation from any working directory.
        launch = [sys.executable, LAUNCH_SCRIPT, '-n', str(args.workers)]
        launch += _flag('s', args.servers) + ['--launcher', args.launcher] + _flag('H', args.hostfile)
        command = launch + ['--'] + command
    return command


def _finished(marker, script_args):
    """True when a phase left its marker and ran with exactly these arguments."""
    if not os.path.isfile(marker):
        return False
    try:
        with open(marker) as f:
            recorded = json.load(f).get('argv')
    except (OSError, ValueError):
        return False
    return recorded == script_args


def run_child(command):
    log.info('running: %s', ' '.join(command))
    sys.stdout.flush()
    return subprocess.call(command)


def round_summary(args, r, tgt_port, src_port, lr):
    """One line and one summary.json entry per round, from phase val's metrics.json."""
    path = os.path.join(args.output, str(r), 'metrics.json')
    entry = {'round': r, 'tgt_port': tgt_port, 'src_port': src_port, 'lr': lr}
    if os.path.isfile(path):
        with open(path) as f:
            metrics = json.load(f)
        entry['selected_share'] = metrics.get('selected_share')
        entry['selected_total'] = metrics.get('selected_total')
        entry['miou'] = metrics.get('miou')
    shares = ' '.join('%s %.1f%%' % (name, 100 * share)
                      for name, share in (entry.get('selected_share') or {}).items())
    miou = '' if entry.get('miou') is None else ' | mIoU %.2f' % (100 * entry['miou'])
    log.info('round %d | tgt_port %.4f src_port %.4f lr %.3g | selected: %s%s',
             r, tgt_port, src_port, lr, shares, miou)
    summary_path = os.path.join(args.output, 'summary.json')
    rounds = []
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            rounds = [e for e in json.load(f) if e.get('round') != r]
    rounds.append(entry)
    rounds.sort(key=lambda e: e['round'])
    write_json(summary_path, rounds)
    return entry


@cli_entry
def main(argv=None):
    from util.logs import setup_logging
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    setup_logging(os.path.join(args.output, 'rounds.log'))
    weights, lr = args.weights, args.base_lr
    tgt_port, src_port, to_epoch = args.init_tgt_port, args.init_src_port, args.epoch_per_round
    redo_rest = False  # once a phase re-runs, every later phase depends on new results
    for r in range(args.num_round):
        seed = args.seed_int if args.source_sample_policy == 'cumulative' else r
        val, train = phase_arguments(args, r, weights, tgt_port, src_port, lr, to_epoch, seed)
        for phase, script_args, marker in (('val', val, VAL_DONE), ('train', train, TRAIN_DONE)):
            if not redo_rest and _finished(os.path.join(args.output, str(r), marker), script_args):
                log.info('round %d phase %s already finished, skipping', r, phase)
                continue
            redo_rest = True
            status = run_child(child_command(args, script_args, distributed=phase == 'train'))
            if status != 0:
                log.info('round %d phase %s failed with exit status %d', r, phase, status)
                return status
        round_summary(args, r, tgt_port, src_port, lr)
        weights = os.path.join(args.output, str(r), '%s_ep-%04d.params' % (args.model, to_epoch))
        to_epoch += args.epoch_per_round
        lr /= math.sqrt(2)
        if tgt_port < args.max_tgt_port:
            tgt_port += args.step_tgt_port
        if src_port < args.max_src_port:
            src_port += args.step_src_port
    log.info('finished %d rounds; final weights %s', args.num_round, weights)
    return 0


if __name__ == '__main__':
    sys.exit(main())
