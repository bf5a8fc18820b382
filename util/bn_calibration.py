"""BatchNorm statistics measured on data, for a network that starts from random weights.

The symbols freeze BatchNorm (`use_global_stats=True`), so a layer normalises with its stored
statistics; random weights store mean 0 and variance 1, which normalise nothing. A pretrained
model's were measured on images: `calibrate_batchnorm` measures them so (docs/demo.md).
"""
import json

import mxnet as mx
import numpy as np

__all__ = ['batchnorm_layers', 'calibrate_batchnorm']


def batchnorm_layers(symbol):
    """Names of the BatchNorm layers of a symbol, inputs before outputs (the graph's order)."""
    nodes = json.loads(symbol.tojson())['nodes']
    return [node['name'] for node in nodes if node['op'] == 'BatchNorm']


def _layer_input(symbol, name):
    return symbol.get_internals()[name + '_output'].get_children()[0]


def _forward(symbol, images, arg_params, aux_params):
    ctx = mx.cpu()
    args = {'data': mx.nd.array(images, ctx=ctx)}
    args.update({n: arg_params[n].as_in_context(ctx) for n in symbol.list_arguments()
                 if n != 'data'})
    aux = {n: aux_params[n].as_in_context(ctx) for n in symbol.list_auxiliary_states()}
    executor = symbol.bind(ctx, args=args, aux_states=aux, grad_req='null')
    return executor.forward(is_train=False)[0].asnumpy()


def calibrate_batchnorm(symbol, arg_params, aux_params, images):
    """Set every BatchNorm layer's `_moving_mean`/`_moving_var` (in `aux_params`, in place) to
    the per-channel mean and variance of its input over `images` (float32 N x 3 x H x W,
    normalised as training normalises), layer by layer in the graph's order, each measured
    with the layers before it already set (so every layer sees what it will normalise).
    Returns {layer: standard deviation of its input before its own statistics were set}."""
    images = np.asarray(images, dtype=np.float32)
    spread = {}
    for name in batchnorm_layers(symbol):
        inputs = _forward(_layer_input(symbol, name), images, arg_params, aux_params)
        mean = inputs.mean(axis=(0, 2, 3), dtype=np.float64)
        var = inputs.var(axis=(0, 2, 3), dtype=np.float64)
        aux_params[name + '_moving_mean'] = mx.nd.array(mean.astype(np.float32))
        aux_params[name + '_moving_var'] = mx.nd.array(var.astype(np.float32))
        spread[name] = float(np.sqrt(var.mean()))
    return spread
