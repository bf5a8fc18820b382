"""SGD training of a segmentation Module, shared by phase train and train_src.py (yzou2/CBST
solve_ST.py and train_src.py, _train_impl; docs/algorithm.md section 3): fit, on the devices of
one process, parameter-server workers or Horovod ranks (docs/internals.md, section 4).
"""
import collections
import dataclasses
import functools
import json
import logging
import math
import os
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from issegm.crst import loss as crst_loss
from util import hvd
from util.errors import UserError, exit_hard_on_errors
from util.files import atomic_path
from util.flags import KVSTORES
from util.ps_launcher import install_fail_fast
from util.lr_scheduler import FixedSchedule
from util.mirroring import mirror_symbol
from util.model_label import checkpoint_path
from util.weights import save_weights

log = logging.getLogger('cbst')


# The epsilon inside -log(p + eps) of the training NLL: yzou2/CBST issegm/solve_ST.py _get_metric
# uses 1e-32, issegm/train_src.py _get_metric 1e-6.
NLL_EPS_SELF_TRAINING = 1e-32
NLL_EPS_SOURCE = 1e-6


def nll_sum(label, pred, eps):
    """(sum of -log(p + eps) over the valid pixels, valid count + (count == 0)) for one device's
    labels (B, h, w) and softmax output (B, C, h, w): upstream's _get_metric (solve_ST.py and
    train_src.py), p = the output at the true class of each pixel whose label is not 255.

    QUIRK kept, as that _get_metric: p is float32 and p + eps, the log and the sum stay float32 (NumPy 1.x keeps a
    float32 array op a Python float in float32); the +1 for a slice without valid pixels keeps
    the division defined and is counted in the mean.
    """
    labels = np.asarray(label).ravel()
    valid = labels != 255
    num_classes = pred.shape[1]
    probs = np.moveaxis(np.asarray(pred, np.float32), 1, 0).reshape(num_classes, -1)
    picked = probs[labels[valid].astype(np.int64), np.flatnonzero(valid)]
    count = int(valid.sum())
    return float((-np.log(picked + eps)).sum()), count + (count == 0)


def nll_metric(eps, symbol=None):
    """An MXNet CustomMetric named 'loss' over nll_sum, as upstream passed to Module.fit: Module
    feeds it each device's slice of the batch, it sums the sums and the counts, and its value
    is sum / count since the last reset (the start of the epoch). For a `symbol` with the CRST
    head (issegm/crst/loss.py: two outputs, up to three labels) it reads the head's probabilities
    and the hard label."""
    names = {}
    if symbol is not None and crst_loss.PROB_OUTPUT in symbol.list_outputs():
        names = dict(output_names=[crst_loss.PROB_OUTPUT], label_names=[crst_loss.LABEL])
    return mx.metric.CustomMetric(functools.partial(nll_sum, eps=eps), name='loss', **names)


class HorovodStore:
    """What stands for the kvstore with `--kvstore horovod`: this process's rank among the
    horovodrun workers. There is no MXNet kvstore then (MXNet 1.9.1's 'horovod' kvstore is
    silently a local one): gradients go through util.hvd.distributed_optimizer."""
    type = 'horovod'

    def __init__(self):
        _, self.rank, self.num_workers, self.local_rank = hvd.init()


def is_horovod(kvstore):
    return isinstance(kvstore, HorovodStore)


def is_distributed(kvstore):
    """True for several workers: a parameter-server (dist_*) kvstore or Horovod."""
    return kvstore is not None and ('dist' in kvstore.type or is_horovod(kvstore))


def create_kvstore(kind, num_devices):
    """An MXNet kvstore for `--kvstore` (None when a single device trains without one).

    'horovod' gives a HorovodStore (run under horovodrun).
    A dist kvstore needs the environment issegm.launch sets (DMLC_ROLE, ...). Once it exists,
    this process leaves with os._exit on an uncaught exception or a reported UserError:
    a normal exit would wait in the kvstore finalizer for the other workers and hang
    instead of ending with a non-zero status (see util/ps_launcher.py)."""
    if kind not in KVSTORES:
        raise UserError('unknown --kvstore %r (allowed: %s)' % (kind, ', '.join(KVSTORES)))
    if kind.startswith('dist'):
        if 'DMLC_ROLE' not in os.environ or 'DMLC_NUM_WORKER' not in os.environ:
            raise UserError('--kvstore %s needs the parameter-server environment: start the '
                            'script with python -m issegm.launch -n WORKERS -- COMMAND' % kind)
        kv = mx.kvstore.create(kind)
        install_fail_fast(1)
        exit_hard_on_errors()
        return kv
    if kind == 'horovod':
        return HorovodStore()
    if num_devices == 1:
        return None
    return mx.kvstore.create(kind)


def start_worker(kind, contexts):
    """(kvstore, this process's contexts, Worker) for `--kvstore kind` and the `--gpus`
    contexts. A Horovod rank takes one device: the one of its local rank (ranks on one host
    share a CPU)."""
    kvstore = create_kvstore(kind, len(contexts))
    if is_horovod(kvstore):
        if kvstore.local_rank >= len(contexts) and contexts[0].device_type != 'cpu':
            raise UserError('Horovod rank %d on this host has no device: --gpus lists %d '
                            '(one per rank of a host)' % (kvstore.local_rank, len(contexts)))
        contexts = [contexts[kvstore.local_rank % len(contexts)]]
    return kvstore, contexts, worker_of(kvstore)


SHARED_FILE_WAIT = 60.0  # seconds a worker waits for another worker's file to become visible


def reduce_over_workers(kvstore, values, folder, tag):
    """Sum a few numbers over all workers of a dist kvstore; every worker gets the sums.

    Why files and not the kvstore itself: with MXNet's update_on_kvstore (the default for dist
    kvstores, and what keeps the workers' weights identical) the servers run the optimizer on
    EVERY pushed key, so a metric pushed to the training kvstore comes back as an SGD step on
    it (verified with MXNet 1.9.1: pushing 1 and 2 to a zero key with lr 0.1 pulls -0.3, not
    3), and a second dist kvstore in the process talks to the same servers. Turning
    update_on_kvstore off (MXNET_UPDATE_ON_KVSTORE=0) would move the optimizer, its momentum
    and an extra weight broadcast onto every worker and does not work for dist_async. So each
    worker writes its numbers to FOLDER/.TAG.rankR.json, all meet at a kvstore barrier (which
    involves the scheduler only, not the servers), every worker reads all files, a second
    barrier, and rank 0 removes them. FOLDER must be on a file system all workers share (the
    output folder is anyway: rank 0 writes the checkpoints the next phase reads everywhere).
    """
    rank, num_workers = kvstore.rank, kvstore.num_workers
    os.makedirs(folder, exist_ok=True)

    def path(r):
        return os.path.join(folder, '.%s.rank%d.json' % (tag, r))

    tmp = '%s.tmp%d' % (path(rank), os.getpid())
    with open(tmp, 'w') as f:
        json.dump([float(v) for v in values], f)
    os.replace(tmp, path(rank))
    kvstore._barrier()
    totals = [0.0] * len(values)
    for r in range(num_workers):
        deadline = time.time() + SHARED_FILE_WAIT
        while True:
            try:
                with open(path(r)) as f:
                    theirs = json.load(f)
                break
            except (OSError, ValueError):
                if time.time() > deadline:
                    raise UserError('worker %d cannot read %s written by worker %d: the output '
                                    'folder must be on a file system shared by all workers'
                                    % (rank, path(r), r))
                time.sleep(0.2)
        totals = [a + b for a, b in zip(totals, theirs)]
    kvstore._barrier()
    if rank == 0:
        for r in range(num_workers):
            try:
                os.remove(path(r))
            except OSError:
                pass
    return totals


# This process's place in a run: dist (a parameter-server kvstore), its rank, the worker count.
Worker = collections.namedtuple('Worker', 'dist rank num_workers')


def worker_of(kvstore):
    """The Worker of this process for its kvstore (rank 0 of 1 without a dist kvstore)."""
    if is_distributed(kvstore):
        return Worker(True, kvstore.rank, kvstore.num_workers)
    return Worker(False, 0, 1)


def bind_module(symbol, train_iter, contexts, arg_params, aux_params, allow_missing=False):
    """A Module bound for training on `contexts`, its parameters from arg/aux_params; with
    allow_missing, the ones absent there are drawn by Xavier (gaussian, fan-in, magnitude 2).
    The label inputs are those train_iter provides (softmax_label; CRST's in addition)."""
    module = mx.mod.Module(symbol, data_names=('data',),
                           label_names=tuple(d.name for d in train_iter.provide_label),
                           context=contexts)
    module.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label,
                for_training=True)
    initializer = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
    module.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                       allow_missing=allow_missing, allow_extra=True)
    return module


def init_sgd(module, scheduler, weight_decay, num_devices, kvstore):
    """Upstream's optimizer on the module: SGD, momentum 0.9, the lr `scheduler`, through
    `kvstore` ('local' without one)."""
    # rescale_grad = 1 / devices of this worker, as yzou2/CBST solve_ST.py _train_impl (what
    # that means with dist_sync: docs/internals.md section 4); begin_num_update stays 0 as in
    # yzou2/CBST solve_ST.py's Module.fit call.
    # The scheduler is part of the optimizer, so it also reaches the copy that MXNet pickles
    # to the parameter servers (which run the updates there).
    optimizer_params = dict(learning_rate=scheduler.base_lr, lr_scheduler=scheduler,
                            momentum=0.9, wd=weight_decay, rescale_grad=1.0 / num_devices)
    if is_horovod(kvstore):
        # Rank 0's starting weights everywhere, then an optimizer that all-reduces the
        # gradients (Horovod multiplies rescale_grad, 1 here, by 1 / ranks: the mean).
        hvd.broadcast_parameters(module)
        module.init_optimizer(kvstore=None,
                              optimizer=hvd.distributed_optimizer(module, **optimizer_params))
        return
    module.init_optimizer(kvstore=kvstore if kvstore is not None else 'local', optimizer='sgd',
                          optimizer_params=optimizer_params)
    if is_distributed(kvstore) and not module._update_on_kvstore:
        # MXNET_UPDATE_ON_KVSTORE=0: the servers only sum the gradients and every worker runs
        # the optimizer itself. Module then merely initialises the kvstore (from rank 0), so
        # fetch rank 0's starting weights as Gluon does, or randomly initialised parameters
        # would differ between workers for good. dist_async cannot work that way.
        if 'async' in kvstore.type:
            raise UserError('--kvstore %s needs the optimizer on the servers: unset '
                            'MXNET_UPDATE_ON_KVSTORE' % kvstore.type)
        group = module._exec_group
        for i, name in enumerate(group.param_names):
            kvstore.pull(name, out=group.param_arrays[i], priority=-i)


def train_epoch(module, train_iter, metric, epoch, scheduler, updates, worker, settings):
    """One epoch: forward, backward and update for every batch of `train_iter`, the NLL
    `metric` from 0 (reset first), a log line every settings.log_every batches (FitSettings).
    `updates` counts this process's updates before the epoch. Returns (batches, updates after
    the epoch)."""
    train_iter.reset()
    metric.reset()
    log_every, batch_end_callback = settings.log_every, settings.batch_end_callback
    bar = tqdm(train_iter, total=train_iter.batches_per_epoch,
               disable=not settings.progress or worker.rank != 0, desc='epoch %d' % epoch,
               unit='batch', dynamic_ncols=True, leave=False)
    batches = 0
    for nbatch, batch in enumerate(bar):
        batches += 1
        module.forward_backward(batch)
        module.update()
        updates += 1
        module.update_metric(metric, batch.label)
        if not math.isfinite(metric.sum_metric):
            raise UserError('training loss became %s at epoch %d batch %d; try a lower '
                            '--base-lr' % (metric.sum_metric, epoch, nbatch))
        if nbatch % log_every == 0:
            value = metric.get()[1]
            bar.set_postfix(nll='%.4f' % value)
            # The local optimizer does not count updates run on the servers: compute it.
            _log_batch(epoch, nbatch, value, scheduler(updates), worker)
        if batch_end_callback is not None:
            batch_end_callback(epoch, nbatch, module)
    bar.close()
    return batches, updates


def _log_batch(epoch, nbatch, value, rate, worker):
    if worker.dist:
        log.info('Epoch[%d] Batch[%d] worker %d/%d Train-loss=%f lr=%g', epoch, nbatch,
                 worker.rank, worker.num_workers, value, rate)
    else:
        log.info('Epoch[%d] Batch[%d] Train-loss=%f lr=%g', epoch, nbatch, value, rate)


def epoch_entry(metric, epoch, batches, kvstore, worker, prefix):
    """The history entry of an epoch: {epoch, batches, workers, nll, pixels} from the metric,
    summed over all workers (files beside `prefix`, see reduce_over_workers), plus
    worker_nll / worker_pixels with a dist kvstore. A NaN/inf NLL is a UserError."""
    total_nll, total_pixels = float(metric.sum_metric), int(metric.num_inst)
    entry = {'epoch': epoch, 'batches': batches, 'workers': worker.num_workers}
    if worker.dist:
        entry['worker_nll'] = total_nll / max(total_pixels, 1)
        entry['worker_pixels'] = total_pixels
        if is_horovod(kvstore):
            total_nll, total_pixels = hvd.allreduce_sum((total_nll, total_pixels),
                                                        'nll%d' % epoch)
        else:
            total_nll, total_pixels = reduce_over_workers(
                kvstore, (total_nll, total_pixels), os.path.dirname(os.path.abspath(prefix)),
                '%s-%04d.nll' % (os.path.basename(prefix), epoch + 1))
        total_pixels = int(round(total_pixels))
    epoch_nll = total_nll / max(total_pixels, 1)
    entry.update(nll=epoch_nll, pixels=total_pixels)
    if not math.isfinite(epoch_nll):
        raise UserError('training loss became %s in epoch %d; try a lower --base-lr'
                        % (epoch_nll, epoch))
    return entry


def finish_epoch(module, entry, prefix, worker):
    """The epoch's log line and, on rank 0, its checkpoint PREFIX-%04d.params (epoch + 1).
    Returns the module's (arg_params, aux_params)."""
    arg, aux = module.get_params()
    epoch, batches, epoch_nll = entry['epoch'], entry['batches'], entry['nll']
    if worker.dist and worker.rank != 0:
        log.info('Epoch[%d] done: %d batches on worker %d/%d, NLL=%.5f here, %.5f over '
                 'all workers', epoch, batches, worker.rank, worker.num_workers,
                 entry['worker_nll'], epoch_nll)
    if worker.rank == 0:
        path = checkpoint_path(prefix, epoch + 1)
        save_weights(path, arg, aux)
        log.info('Epoch[%d] done: %d batches%s, NLL=%.5f, saved %s', epoch, batches,
                 ' x %d workers' % worker.num_workers if worker.dist else '', epoch_nll, path)
    return arg, aux


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """What `fit` trains: epochs [begin_epoch, end_epoch) with checkpoints PREFIX-%04d.params.

    lr: a learning rate (fixed) or a schedule from util.lr_scheduler.make_lr_scheduler; as the
    Module.fit of yzou2/CBST solve_ST.py, the optimizer counts updates from 0 in this process
    (MXNet's num_update is 1 at the first update) and the schedule carries any offset itself.
    allow_missing: parameters absent from the weights are initialised (Xavier).
    nll_eps: the epsilon of the logged NLL (see nll_sum; NLL_EPS_SOURCE for train_src).
    Every `log_every` batches (nbatch 0, 10, 20, ...) the log shows the NLL since the epoch
    started, as mx.callback.log_train_metric(10, auto_reset=False) of yzou2/CBST solve_ST.py.
    epoch_end_callback(epoch, symbol, arg_params, aux_params), MXNet's signature, is called on
    every worker after each epoch (e.g. mx.callback.do_checkpoint(PREFIX) on one machine);
    batch_end_callback(epoch, nbatch, module), nbatch counted from 0, after each batch.
    mirror: `--backward-do-mirror`, bind util.mirroring.mirror_symbol(symbol) (each residual
    unit recomputed in the backward pass: less memory, the same gradients); the symbol json
    is the plain symbol's either way.
    """
    begin_epoch: int
    end_epoch: int
    prefix: str
    lr: object
    weight_decay: float = 0.0005
    allow_missing: bool = False
    nll_eps: float = NLL_EPS_SELF_TRAINING
    log_every: int = 10
    progress: bool = True
    epoch_end_callback: object = None
    batch_end_callback: object = None
    mirror: bool = False


def fit(symbol, train_iter, contexts, params, settings, kvstore=None):
    """Train `symbol` from params = (arg_params, aux_params) as the FitSettings `settings` say;
    checkpoint PREFIX-%04d.params after each epoch.

    kvstore: None (one device), a local/device kvstore (several devices), a dist kvstore or a
    HorovodStore (several workers; train_iter must read this worker's shard; see
    start_worker). Only rank 0 writes files.
    Returns a list of per-epoch dicts {epoch, nll, pixels, batches, workers}: nll is the
    metric's value over the epoch, summed over all workers (pixels: its count, the valid pixels
    plus one per device slice without any), batches is per worker; with several workers also
    worker_nll / worker_pixels (this worker's own). A NaN/inf loss is a UserError.
    """
    worker = worker_of(kvstore)
    prefix, lr = settings.prefix, settings.lr
    module = bind_module(mirror_symbol(symbol) if settings.mirror else symbol, train_iter,
                         contexts, params[0], params[1], settings.allow_missing)
    scheduler = lr if callable(lr) else FixedSchedule(lr)
    init_sgd(module, scheduler, settings.weight_decay, len(contexts), kvstore)
    if worker.rank == 0:
        with atomic_path('%s-symbol.json' % prefix) as tmp:
            symbol.save(tmp)
    metric = nll_metric(settings.nll_eps, symbol)
    updates = 0  # this process's updates: the optimizer's num_update (the servers' copy too)
    history = []
    for epoch in range(settings.begin_epoch, settings.end_epoch):
        batches, updates = train_epoch(module, train_iter, metric, epoch, scheduler, updates,
                                       worker, settings)
        entry = epoch_entry(metric, epoch, batches, kvstore, worker, prefix)
        arg, aux = finish_epoch(module, entry, prefix, worker)
        if settings.epoch_end_callback is not None:
            settings.epoch_end_callback(epoch, symbol, arg, aux)
        history.append(entry)
    if is_horovod(kvstore):
        hvd.barrier()  # no rank may leave while another still waits in a collective
    return history
