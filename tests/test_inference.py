"""The test-time path (SPEC 5 steps 1-3) shared by phase val and evaluate.py."""
import mxnet as mx
import numpy as np

from issegm.inference import Predictor, upsample_probs
from util.symbols import parameter_shapes
from util.weights import initial_weights


def tiny_predictor():
    arg, aux = initial_weights(parameter_shapes('gta_rna-tiny_cls19_s8'), seed=3)
    return Predictor('gta_rna-tiny_cls19_s8', arg, aux, mx.cpu(), 8)


def test_network_probs_pads_to_stride_and_scales_longer_side():
    predictor = tiny_predictor()
    image = (np.random.RandomState(0).rand(50, 75, 3) * 255).astype(np.uint8)
    net, scaled_hw = predictor.network_probs(image, 100, flip=False)
    assert scaled_hw == (67, 100)  # longer side 100, other side rounded
    assert net.shape == (19, 9, 13)  # 67x100 padded to 72x104, at stride 8
    np.testing.assert_allclose(net.sum(0), 1.0, rtol=1e-5)


def test_predict_returns_original_size_and_averages_scales_and_flips():
    predictor = tiny_predictor()
    image = (np.random.RandomState(1).rand(40, 64, 3) * 255).astype(np.uint8)
    one = predictor.predict(image, [64], flip=False)
    assert one.shape == (19, 40, 64) and one.dtype == np.float32
    np.testing.assert_allclose(one.sum(0), 1.0, atol=0.05)  # bicubic keeps sums near 1
    two = predictor.predict(image, [64, 96], flip=False)
    other = predictor.predict(image, [96], flip=False)
    np.testing.assert_allclose(two, (one + other) / 2, rtol=1e-5, atol=1e-6)
    flipped = predictor.predict(image, [64], flip=True)
    net, hw = predictor.network_probs(image, 64, flip=False)
    net_m, _ = predictor.network_probs(np.ascontiguousarray(image[:, ::-1]), 64, flip=False)
    net_f, _ = predictor.network_probs(image, 64, flip=True)
    np.testing.assert_allclose(net_f, (net + net_m[:, :, ::-1]) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(flipped, one)


def test_upsample_probs_crops_then_resizes():
    net = np.zeros((2, 4, 5), np.float32)
    net[0] = 1.0  # class 0 everywhere stays class 0 everywhere
    out = upsample_probs(net, 8, (30, 37), (60, 74))
    assert out.shape == (2, 60, 74)
    np.testing.assert_allclose(out[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(out[1], 0.0, atol=1e-5)
    # A feature in the padded area (beyond the scaled size) is cropped away.
    net2 = np.zeros((1, 4, 5), np.float32)
    net2[0, :, 4] = 1.0
    assert upsample_probs(net2, 8, (32, 24), (32, 24)).max() < 0.2
