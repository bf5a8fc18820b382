"""SGD training of a segmentation Module, shared by phase train and train_src.py (SPEC 6).

SGD with momentum 0.9, rescale_grad = 1 / devices, Xavier (gaussian, fan-in, magnitude 2) for
parameters missing from the weights, frozen BN statistics (in the symbol), one atomic checkpoint
per epoch end, only on rank 0 of a distributed run.
"""
import logging
import math
import os

import mxnet as mx
import numpy as np
from tqdm import tqdm

from util.errors import UserError
from util.lr_scheduler import make_lr_scheduler
from util.weights import save_weights

log = logging.getLogger('cbst')


def checkpoint_path(prefix, epoch):
    """`PREFIX-%04d.params`, e.g. OUTPUT/0/cityscapes_rna-a1_cls19_s8_ep-0002.params."""
    return '%s-%04d.params' % (prefix, epoch)


def mean_nll(probs, labels):
    """Mean negative log-likelihood of the true class over valid (non-255) pixels.

    Returns (sum of -log p, number of valid pixels) so callers can average over batches.
    """
    labels = labels.astype(np.int64)
    valid = labels != 255
    if not valid.any():
        return 0.0, 0
    b, c = probs.shape[:2]
    flat = probs.reshape(b, c, -1)
    idx = labels.reshape(b, -1)
    bi, pi = np.nonzero(valid.reshape(b, -1))
    p = flat[bi, idx[bi, pi], pi]
    return float(-np.log(np.maximum(p, 1e-30)).sum()), int(p.size)


def create_kvstore(kind, num_devices):
    """An MXNet kvstore for `--kvstore` (None when a single device trains without one)."""
    allowed = ('local', 'device', 'dist_sync', 'dist_device_sync', 'dist_async')
    if kind not in allowed:
        raise UserError('unknown --kvstore %r (allowed: %s)' % (kind, ', '.join(allowed)))
    if num_devices == 1 and not kind.startswith('dist'):
        return None
    return mx.kvstore.create(kind)


def fit(symbol, train_iter, contexts, arg_params, aux_params, begin_epoch, end_epoch, prefix,
        base_lr, weight_decay=0.0005, lr_type='fixed', lr_steps=None, kvstore=None,
        allow_missing=False, log_every=10, progress=True):
    """Train epochs [begin_epoch, end_epoch); checkpoint `PREFIX-%04d.params` after each.

    Returns a list of per-epoch dicts {epoch, nll, batches}. A NaN/inf loss is a UserError.
    """
    rank = kvstore.rank if kvstore is not None else 0
    num_workers = kvstore.num_workers if kvstore is not None else 1
    module = mx.mod.Module(symbol, data_names=('data',), label_names=('softmax_label',),
                           context=contexts)
    module.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label,
                for_training=True)
    initializer = mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
    module.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                       allow_missing=allow_missing, allow_extra=True)
    batches_per_epoch = train_iter.batches_per_epoch
    scheduler = make_lr_scheduler(lr_type, base_lr, batches_per_epoch, end_epoch, lr_steps)
    optimizer_params = dict(learning_rate=base_lr, momentum=0.9, wd=weight_decay,
                            rescale_grad=1.0 / len(contexts))
    if scheduler is not None:
        scheduler.base_lr = base_lr
        optimizer_params['lr_scheduler'] = scheduler
    module.init_optimizer(kvstore=kvstore if kvstore is not None else 'local', optimizer='sgd',
                          optimizer_params=optimizer_params)
    if scheduler is not None:  # continue the schedule where the earlier epochs left it
        module._optimizer.num_update = begin_epoch * batches_per_epoch
    if rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
        symbol.save('%s-symbol.json' % prefix)
    history = []
    for epoch in range(begin_epoch, end_epoch):
        train_iter.reset()
        total_nll, total_pixels, window_nll, window_pixels = 0.0, 0, 0.0, 0
        bar = tqdm(train_iter, total=batches_per_epoch, disable=not progress or rank != 0,
                   desc='epoch %d' % epoch, unit='batch', dynamic_ncols=True, leave=False)
        nbatch = 0
        for nbatch, batch in enumerate(bar, 1):
            module.forward_backward(batch)
            module.update()
            nll, pixels = mean_nll(module.get_outputs()[0].asnumpy(), batch.label[0].asnumpy())
            if not math.isfinite(nll):
                raise UserError('training loss became %s at epoch %d batch %d; try a lower '
                                '--base-lr' % (nll, epoch, nbatch))
            total_nll, total_pixels = total_nll + nll, total_pixels + pixels
            window_nll, window_pixels = window_nll + nll, window_pixels + pixels
            if nbatch % log_every == 0:
                value = window_nll / max(window_pixels, 1)
                bar.set_postfix(nll='%.4f' % value)
                log.info('Epoch[%d] Batch [%d] worker %d/%d NLL=%.5f lr=%g', epoch, nbatch,
                         rank, num_workers, value, module._optimizer.learning_rate)
                window_nll, window_pixels = 0.0, 0
        bar.close()
        epoch_nll = total_nll / max(total_pixels, 1)
        if not math.isfinite(epoch_nll):
            raise UserError('training loss became %s in epoch %d; try a lower --base-lr'
                            % (epoch_nll, epoch))
        arg, aux = module.get_params()
        if rank == 0:
            path = checkpoint_path(prefix, epoch + 1)
            save_weights(path, arg, aux)
            log.info('Epoch[%d] done: %d batches, NLL=%.5f, saved %s', epoch, nbatch, epoch_nll,
                     path)
        history.append({'epoch': epoch, 'nll': epoch_nll, 'batches': nbatch})
    return history
