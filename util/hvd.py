"""Horovod glue for Module training (`--kvstore horovod`): ring all-reduce instead of a parameter
server, launched by `horovodrun`; what it must respect with horovod 0.28.1 and MXNet 1.9.1:
docs/internals.md, section 4, "Horovod glue".
"""
import mxnet as mx
import numpy as np

from util.errors import UserError
from util.flags import HOROVOD_INSTALL_HINT

__all__ = ['import_horovod', 'init', 'distributed_optimizer', 'broadcast_parameters',
           'allreduce_sum', 'barrier']



def import_horovod():
    """horovod.mxnet, or a UserError saying how to install it (an optional dependency, hence
    imported here and not at the top)."""
    try:
        import horovod.mxnet as hvd
    except ImportError as e:
        raise UserError('%s (import failed: %s)' % (HOROVOD_INSTALL_HINT, e))
    if not (hvd.gloo_built() or hvd.mpi_built()):
        raise UserError('%s (this Horovod has neither Gloo nor MPI)' % HOROVOD_INSTALL_HINT)
    return hvd


def init():
    """Initialise Horovod; returns (hvd, rank, size, local_rank)."""
    hvd = import_horovod()
    hvd.init()
    return hvd, hvd.rank(), hvd.size(), hvd.local_rank()


def broadcast_parameters(module):
    """Give every rank rank 0's parameters (randomly initialised ones included)."""
    hvd = import_horovod()
    arg_params, aux_params = module.get_params()
    hvd.broadcast_parameters(arg_params, root_rank=0)
    hvd.broadcast_parameters(aux_params, root_rank=0)
    mx.nd.waitall()
    module.set_params(arg_params, aux_params)


def distributed_optimizer(module, name='sgd', **params):
    """An optimizer for Module.init_optimizer(kvstore=None, ...) whose updates all-reduce the
    gradients over the ranks. `params` are the inner optimizer's (learning_rate, momentum,
    wd, lr_scheduler, rescale_grad, ...); Horovod multiplies rescale_grad by 1 / ranks."""
    hvd = import_horovod()
    idx2name = dict(enumerate(module._exec_group.param_names))
    inner = mx.optimizer.create(name, sym=module.symbol, param_idx2name=idx2name, **params)
    return hvd.DistributedOptimizer(inner)


def allreduce_sum(values, name):
    """Sums of a few numbers over all ranks (float64), as a list."""
    hvd = import_horovod()
    arr = mx.nd.array(np.asarray(values, np.float64), dtype=np.float64)
    return [float(v) for v in hvd.allreduce(arr, op=hvd.Sum, name=name).asnumpy()]


def barrier(name='barrier'):
    """Wait for all pending work and for every rank (horovod.mxnet 0.28 has no barrier)."""
    hvd = import_horovod()
    mx.nd.waitall()
    hvd.allreduce(mx.nd.zeros((1,)), name=name).asnumpy()
