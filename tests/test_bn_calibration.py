"""util/bn_calibration.py: frozen BatchNorm layers get the statistics of their inputs, so each
normalises what it sees to mean beta and standard deviation gamma; and the demo's start weights
(issegm/demo/source_start.py) are the seed's random weights with only those statistics set."""
import numpy as np
import pytest
from PIL import Image

from util.bn_calibration import batchnorm_layers, calibrate_batchnorm
from util.symbol.resnet38 import build_symbol, parameter_shapes
from util.weights import initial_weights

MODEL = 'gta_rna-tiny_cls19_s8'


def _images(n=3, size=(40, 56), seed=5):
    rng = np.random.RandomState(seed)
    return (rng.randn(n, 3, *size) * 1.5 + 0.3).astype(np.float32)


def _layer_output(symbol, name, images, arg, aux):
    import mxnet as mx
    out = symbol.get_internals()[name + '_output']
    args = {'data': mx.nd.array(images)}
    args.update({k: arg[k] for k in out.list_arguments() if k != 'data'})
    ex = out.bind(mx.cpu(), args=args, grad_req='null',
                  aux_states={k: aux[k] for k in out.list_auxiliary_states()})
    return ex.forward(is_train=False)[0].asnumpy()


def test_batchnorm_layers_are_every_frozen_layer_in_graph_order():
    names = batchnorm_layers(build_symbol(MODEL))
    aux = [n[:-len('_moving_mean')] for kind, n, _ in parameter_shapes(MODEL)
           if kind == 'aux' and n.endswith('_moving_mean')]
    assert sorted(names) == sorted(aux) and len(names) == 19
    assert names[0] == 'bn2a_branch2a' and names[-1] == 'bn7'
    assert names.index('bn4a_branch2a') < names.index('bn4b1_branch2a')


@pytest.mark.slow
def test_every_layer_normalises_its_input_after_calibration():
    symbol = build_symbol(MODEL)
    arg, aux = initial_weights(parameter_shapes(MODEL), seed=2)
    weights_before = {k: v.asnumpy().copy() for k, v in arg.items()}
    images = _images()
    spread = calibrate_batchnorm(symbol, arg, aux, images)
    assert set(spread) == set(batchnorm_layers(symbol))
    # gamma 1, beta 0: each layer's output over the calibration images has per-channel mean 0
    # and variance 1 (up to BatchNorm's eps); before calibration the first layer saw the
    # images' own spread (1.5)
    for name in ('bn2a_branch2a', 'bn5b1_branch2b1', 'bn7'):
        out = _layer_output(symbol, name, images, arg, aux)
        assert np.allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-3), name
        var = out.var(axis=(0, 2, 3))
        assert np.allclose(var[var > 1e-6], 1, atol=2e-2), name
    assert spread['bn2a_branch2a'] > 1.0
    # only the statistics change
    for k, v in arg.items():
        assert np.array_equal(v.asnumpy(), weights_before[k]), k
    for name in spread:
        assert aux[name + '_moving_var'].dtype == np.float32
        assert aux[name + '_moving_mean'].shape == aux[name + '_moving_var'].shape


@pytest.mark.slow
def test_demo_start_weights_are_the_seed_s_weights_with_measured_statistics(tmp_path):
    from issegm.demo.source_start import start_weights
    paths = []
    for i in range(3):
        pixels = np.random.RandomState(i).randint(0, 256, (24, 40, 3)).astype(np.uint8)
        paths.append(str(tmp_path / ('%d.png' % i)))
        Image.fromarray(pixels).save(paths[-1])
    arg, aux = start_weights(MODEL, paths, seed=4)
    plain_arg, plain_aux = initial_weights(parameter_shapes(MODEL), seed=4)
    assert set(arg) == set(plain_arg) and set(aux) == set(plain_aux)
    for k in arg:
        assert np.array_equal(arg[k].asnumpy(), plain_arg[k].asnumpy()), k
    assert not np.array_equal(aux['bn3a_branch2a_moving_var'].asnumpy(),
                              plain_aux['bn3a_branch2a_moving_var'].asnumpy())
    again = start_weights(MODEL, paths, seed=4)[1]
    assert all(np.array_equal(aux[k].asnumpy(), again[k].asnumpy()) for k in aux)
