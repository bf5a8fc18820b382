"""Phase train of a CBST round (yzou2/CBST issegm/solve_ST.py, _train_impl): `run` checks the
round's files, then retrains on the selected source images and the pseudo-labelled target
(docs/algorithm.md section 3).
"""
import dataclasses
import logging
import os

import numpy as np

from issegm.crst import netmaps
from issegm.crst.loss import training_symbol
from issegm.crst.settings import is_active, weights_on
from issegm.data_iter import Domain, LoaderSettings, SegTrainIter, self_training_samples
from issegm.datasets import get_dataset, load_samples, resolve_split
from issegm.rounds.layout import marker_path, round_dir, target_list_path, write_marker
from issegm.training import NLL_EPS_SELF_TRAINING, FitSettings, fit, start_worker
from util.devices import parse_devices
from util.errors import UserError
from util.kernels import log_kernels
from util.logs import rank_log_file, setup_logging
from util.lr_scheduler import make_lr_scheduler
from util.model_label import checkpoint_path, checkpoint_prefix
from util.symbol.resnet38 import parameter_shapes
from util.weights import load_for_model

__all__ = ['run', 'schedule_batches_per_epoch', 'mining_statistics']

log = logging.getLogger('cbst')


def schedule_batches_per_epoch(settings):
    """Batches per epoch of the lr schedule: the number of lines of the SOURCE list file //
    --batch-images (yzou2/CBST issegm/solve_ST.py, _train_impl). QUIRK kept: not the number of
    samples this phase trains on (selected source + pseudo-labelled target)."""
    source = settings.round.source
    with open(resolve_split(source.dataset, source.split)) as f:
        lines = len(f.readlines())
    return lines // settings.batch_images


def mining_statistics(settings):
    """(mine_id, mine_id_priority) as lists from --mine-id-address (phase val's OUTPUT/stats);
    empty without mining (--mine-port 0)."""
    if settings.crops.mine_port <= 0:
        return (), ()
    if not settings.mine_id_address:
        raise UserError('--mine-id-address is required in phase train when --mine-port > 0 '
                        '(the stats folder written by phase val, e.g. OUTPUT/stats)')
    files = [os.path.join(settings.mine_id_address, n + '.npy')
             for n in ('mine_id', 'mine_id_priority')]
    for f in files:
        if not os.path.isfile(f):
            raise UserError('mining statistics not found: %s' % f)
    mine_id, mine_id_priority = (np.load(f).astype(int).tolist() for f in files)
    return mine_id, mine_id_priority


def run(settings):
    """Phase train as the TrainSettings `settings` say (yzou2/CBST solve_ST.py _train_impl):
    the checks of the round's files (the flags are checked by
    issegm.rounds.phase_settings), then _train_round. Returns the history of fit."""
    rnd = settings.round
    infos = get_dataset(rnd.source.dataset), get_dataset(rnd.target.dataset)
    tgt_list = target_list_path(rnd.output, rnd.idx_round, rnd.target.split)
    if not os.path.isfile(tgt_list):
        raise UserError('pseudo-label list %s not found: run phase val of round %d first'
                        % (tgt_list, rnd.idx_round))
    mining = mining_statistics(settings)
    batches = schedule_batches_per_epoch(settings)
    schedule = make_lr_scheduler(settings.lr_type, settings.base_lr, settings.lr_steps,
                                 settings.from_epoch * batches, settings.to_epoch * batches)
    return _train_round(settings, infos, tgt_list, mining, batches, schedule)


def _clear_round_outputs(settings, prefix):
    """A redone phase starts clean: no checkpoints or marker of an earlier, killed attempt."""
    for epoch in range(settings.from_epoch + 1, settings.stop_epoch + 1):
        stale = checkpoint_path(prefix, epoch)
        if os.path.exists(stale):
            os.remove(stale)
    done = marker_path(settings.round.output, settings.round.idx_round, 'train')
    if os.path.exists(done):
        os.remove(done)


def _round_samples(settings, infos, tgt_list):
    """The round's TrainSamples: the selected source images, then the pseudo-labelled target
    (with LR-ENT's soft-label sources)."""
    rnd = settings.round
    source = load_samples(rnd.source.data_root, rnd.source.split, rnd.source.dataset)
    target = load_samples(rnd.target.data_root, tgt_list, rnd.target.dataset)
    soft = (netmaps.soft_sources(os.path.dirname(tgt_list), rnd.crst.lr_weight_ent, target)
            if rnd.crst.lr_weight_ent > 0 else None)
    samples = self_training_samples(
        source, Domain(infos[0], settings.origin_size),
        target, Domain(infos[1], settings.origin_size_tgt),
        settings.init_src_port, settings.seed_int, soft)
    return samples, len(target)


def _train_round(settings, infos, tgt_list, mining, batches, schedule):
    """Phase train's MXNet part: devices, weights, kvstore, the round's samples, fit."""
    rnd = settings.round
    arg_params, aux_params = load_for_model(rnd.weights, parameter_shapes(rnd.model),
                                            allow_missing=settings.from_epoch == 0)
    # a Horovod rank keeps one device of --gpus (start_worker): --debug is checked on that one
    contexts = parse_devices(rnd.gpus, rnd.debug and settings.kvstore != 'horovod')
    kv, contexts, (_, rank, workers) = start_worker(settings.kvstore, contexts)
    if rank > 0:
        setup_logging(rank_log_file(rnd.log_file, rank), debug=rnd.debug)
    samples, num_target = _round_samples(settings, infos, tgt_list)
    loading = LoaderSettings(settings.prefetch_threads, settings.prefetcher,
                             bool(settings.cache_images))
    crops = dataclasses.replace(settings.crops, mine_id=mining[0], mine_id_priority=mining[1],
                                num_classes=len(infos[1].class_names))
    train_iter = SegTrainIter(samples, settings.batch_images, crops,
                              seed=settings.seed_int + rnd.idx_round, loading=loading,
                              num_parts=workers, part_index=rank)
    folder = round_dir(rnd.output, rnd.idx_round)
    prefix = checkpoint_prefix(folder, rnd.model)
    os.makedirs(folder, exist_ok=True)
    if rank == 0:
        _clear_round_outputs(settings, prefix)
    log.info('round %d phase train: %d source (portion %s, seed %d) + %d target samples, '
             'epochs %d..%d of a schedule to %d (%d batches per epoch), lr %s %g, %d device(s) %s, '
             'worker %d/%d', rnd.idx_round, len(samples) - num_target, settings.init_src_port,
             settings.seed_int, num_target, settings.from_epoch, settings.stop_epoch,
             settings.to_epoch, batches, settings.lr_type, settings.base_lr, len(contexts),
             ','.join(map(str, contexts)), rank, workers)
    log_kernels(log)
    if is_active(rnd.crst):
        log.info('CRST: %s', ', '.join('%s %g' % kv for kv in weights_on(rnd.crst).items()))
    fitting = FitSettings(settings.from_epoch, settings.stop_epoch, prefix, schedule,
                          settings.weight_decay, allow_missing=settings.from_epoch == 0,
                          nll_eps=NLL_EPS_SELF_TRAINING, progress=not rnd.no_progress,
                          mirror=rnd.backward_do_mirror)
    try:
        history = fit(training_symbol(rnd.parsed_model, rnd.crst), train_iter, contexts,
                      (arg_params, aux_params), fitting, kv)
    finally:
        train_iter.close()
    if rank == 0:
        write_marker(rnd.output, rnd.idx_round, 'train', rnd.argv, history=history)
    return history
