"""The test-time path (phase val and evaluate.py) against a plain restatement of the original's
`_val_impl` and `interp_preds_as` (yzou2/CBST issegm/solve_ST.py, issegm/evaluate.py), with
util/transformer.py Scale, ColorScale, ColorNormalize and util/util.py get_interp_method.

A fake network (a deterministic float32 function of each input, depending on the position
inside each stride cell and on the absolute position, so shifts and mirroring show) stands in
for MXNet, so the whole path is compared bit for bit and fast.
"""
import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from issegm.testtime import one_image
from issegm.testtime.one_image import Predictor, upsample_probs
from test_image import original_interp  # get_interp_method, restated
from util.errors import UserError
from util.flags import check_test_steps
from util.symbol.resnet38 import parameter_shapes
from util.weights import initial_weights

STRIDE = 8
CLASSES = 5
_MIX = np.random.RandomState(7).randn(CLASSES, 3).astype(np.float32)
_CELL = np.random.RandomState(8).rand(STRIDE, STRIDE).astype(np.float32)


def fake_network(batch):
    """(n, 3, H, W) float32 -> (n, CLASSES, H/8, W/8) softmax, one image at a time."""
    out = []
    for x in batch:
        _, hh, ww = x.shape
        cells = x.reshape(3, hh // STRIDE, STRIDE, ww // STRIDE, STRIDE)
        pooled = np.zeros((3, hh // STRIDE, ww // STRIDE), np.float32)
        for a in range(STRIDE):
            for b in range(STRIDE):
                pooled += cells[:, :, a, :, b] * _CELL[a, b]
        rows = np.arange(hh // STRIDE, dtype=np.float32)[:, None]
        cols = np.arange(ww // STRIDE, dtype=np.float32)[None, :]
        logits = np.empty((CLASSES,) + pooled.shape[1:], np.float32)
        for k in range(CLASSES):
            logits[k] = (_MIX[k, 0] * pooled[0] + _MIX[k, 1] * pooled[1] + _MIX[k, 2] * pooled[2]
                         + np.float32(0.3) * np.sin(np.float32(0.9 * k + 0.5) * rows
                                                    + np.float32(0.4 * k) * cols))
        e = np.exp(logits - logits.max(0))
        out.append(e / e.sum(0))
    return np.stack(out).astype(np.float32)


@pytest.fixture
def fake_predictor(monkeypatch):
    monkeypatch.setattr(Predictor, '_forward', lambda self, batch: fake_network(batch))

    def make(test_steps=1, threads=2):
        return Predictor('cityscapes_rna-tiny_cls19_s8', {}, {}, mx.cpu(), STRIDE, test_steps,
                         upsample_threads=threads)
    return make


# ----------------------------------------------------------- restatement of the original
def upstream_scale(rgb, size):
    # Scale(size, Image.CUBIC, shorter_side=False): the longer side becomes `size`
    h, w = rgb.shape[:2]
    if max(h, w) == size:
        return rgb
    if max(h, w) == w:
        nw, nh = size, int(np.round(1. * size * h / w))
    else:
        nw, nh = int(np.round(1. * size * w / h)), size
    return np.array(Image.fromarray(rgb).resize((nw, nh), original_interp(h, w, nh, nw)))


def upstream_normalise(im):
    # ColorScale(np.single(1/255)) then ColorNormalize(float64 mean, std)
    x = im.astype(np.float32)
    x *= np.single(1.0 / 255)
    x = x.astype(np.float64)
    x -= np.array([0.485, 0.456, 0.406]).reshape((1, 1, 3))
    x /= np.array([0.229, 0.224, 0.225]).reshape((1, 1, 3))
    return x


def upstream_test_time(rgb, scale, steps, flip, heights_only=False):
    """(net_preds, interp_preds) of one image, step by step as _val_impl does."""
    im = upstream_normalise(upstream_scale(rgb, scale))
    imh, imw = im.shape[:2]
    input_h = int(np.ceil(float(imh) / STRIDE) * STRIDE)
    input_w = int(np.ceil(float(imw) / STRIDE) * STRIDE)
    label_h, label_w = input_h // STRIDE, input_w // STRIDE
    pred_stride = STRIDE // steps
    pred_h, pred_w = label_h * steps, label_w * steps
    nim = np.zeros((3, imh + STRIDE, imw + STRIDE), np.single)
    nim[:, STRIDE // 2:STRIDE // 2 + imh, STRIDE // 2:STRIDE // 2 + imw] = im.transpose(2, 0, 1)
    net_preds = np.zeros((CLASSES, pred_h, pred_w), np.single)
    sy = sx = pred_stride // 2 + np.arange(steps) * pred_stride
    for ix in range(steps):
        for iy in range(steps):
            input_data = np.zeros((1, 3, input_h, input_w), np.single)
            input_data[0, :, :imh, :imw] = nim[:, sy[iy]:sy[iy] + imh, sx[ix]:sx[ix] + imw]
            preds = fake_network(input_data)[0]
            if flip:
                mirrored = fake_network(input_data[:, :, :, ::-1])[0]
                preds = 0.5 * (preds + mirrored[:, :, ::-1])
            net_preds[:, iy:iy + pred_h:steps, ix:ix + pred_w:steps] = preds
    imh0, imw0 = rgb.shape[:2]
    planes = []
    for pred in net_preds:  # interp_preds_as, one class at a time
        big = np.array(Image.fromarray(pred).resize((pred_w * pred_stride, pred_h * pred_stride),
                                                    Image.BICUBIC))  # Image.CUBIC
        same = imh0 == imh if heights_only else (imh0, imw0) == (imh, imw)
        if same:
            planes.append(big[:imh, :imw])
        else:
            method = original_interp(imh, imw, imh0, imw0)
            planes.append(np.array(Image.fromarray(big[:imh, :imw]).resize((imw0, imh0), method)))
    return net_preds, np.array(planes)


# ------------------------------------------------------------------------------- the tests
CASES = [  # (image h, w), test scale -> scaled size; filters of the image and of the maps
    ((30, 45), 40),   # 27x40: Lanczos down, bicubic back up; padded to 32x40, cropped
    ((30, 45), 70),   # 47x70: bicubic up, Lanczos back down
    ((45, 30), 52),   # portrait, 52x35: bicubic up, Lanczos down
    ((26, 52), 52),   # the longer side is the scale: no resize, padded to 32x56
    ((24, 48), 48),   # no resize, no padding, no crop
    ((17, 90), 40),   # 8x40: one stride high
]


@pytest.mark.parametrize('steps', [1, 2, 4])
@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('hw,scale', CASES)
def test_predictor_equals_the_original_bit_for_bit(fake_predictor, hw, scale, steps, flip):
    rgb = np.random.RandomState(hw[0] * 100 + scale).randint(0, 256, hw + (3,)).astype(np.uint8)
    want_net, want = upstream_test_time(rgb, scale, steps, flip)
    predictor = fake_predictor(steps)
    net, scaled_hw = predictor.network_probs(rgb, scale, flip)
    assert net.dtype == np.float32 and predictor.pred_stride == STRIDE // steps
    np.testing.assert_array_equal(net, want_net)
    got = predictor.predict(rgb, [scale], flip)
    assert got.dtype == np.float32 and got.shape == (CLASSES,) + hw
    np.testing.assert_array_equal(got, want)


def test_steps_and_flipping_change_the_numbers(fake_predictor):
    """The restatement above can tell its variants apart (so its equality means something)."""
    rgb = np.random.RandomState(0).randint(0, 256, (30, 45, 3)).astype(np.uint8)
    results = [fake_predictor(steps).predict(rgb, [40], flip)
               for steps in (1, 2, 4) for flip in (False, True)]
    for i in range(len(results)):
        for j in range(i):
            assert np.abs(results[i] - results[j]).max() > 1e-3, (i, j)


def test_heights_only_quirk_is_not_kept(fake_predictor):
    """Upstream skips the last resize when only the heights agree; a 20x41 image at scale 40
    is scaled to 20x40, so upstream's map would be 40 wide. Ours resizes to 20x41 (bilinear:
    one side grows, the other stays)."""
    rgb = np.random.RandomState(5).randint(0, 256, (20, 41, 3)).astype(np.uint8)
    _, quirk = upstream_test_time(rgb, 40, 1, True, heights_only=True)
    assert quirk.shape == (CLASSES, 20, 40)  # does not fit the 20x41 image
    _, want = upstream_test_time(rgb, 40, 1, True)
    got = fake_predictor().predict(rgb, [40], True)
    assert got.shape == (CLASSES, 20, 41)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('bad', [0, -1, 3, 5, 16])
def test_bad_test_steps(bad):
    with pytest.raises(UserError, match='must divide the model.s stride 8'):
        check_test_steps(bad, 8)
    with pytest.raises(UserError):
        Predictor('cityscapes_rna-tiny_cls19_s8', {}, {}, mx.cpu(), STRIDE, bad)
    assert [n for n in range(-2, 20) if n in (1, 2, 4, 8)] == [
        check_test_steps(n, 8) for n in (1, 2, 4, 8)]


@pytest.mark.parametrize('scaled_hw,original_hw', [
    ((30, 37), (30, 37)), ((30, 37), (60, 74)), ((30, 37), (20, 25)), ((32, 40), (32, 90)),
    ((32, 40), (32, 40))])
@pytest.mark.parametrize('pred_stride', [8, 4, 2])
def test_upsample_probs_threads_and_copies(scaled_hw, original_hw, pred_stride):
    rng = np.random.RandomState(1)
    h, w = (-(-v // pred_stride) for v in scaled_hw)
    net = rng.rand(7, h, w).astype(np.float32)
    want = []
    for plane in net:
        big = np.asarray(Image.fromarray(plane).resize((w * pred_stride, h * pred_stride),
                                                       Image.BICUBIC))
        crop = big[:scaled_hw[0], :scaled_hw[1]]
        if scaled_hw != original_hw:
            crop = np.asarray(Image.fromarray(crop).resize(
                original_hw[::-1], original_interp(*(scaled_hw + original_hw))))
        want.append(crop)
    for threads in (1, 2, 3):
        got = upsample_probs(net, pred_stride, scaled_hw, original_hw, threads)
        assert got.shape == (7,) + original_hw and got.flags.c_contiguous
        np.testing.assert_array_equal(got, np.array(want))
    reused = np.full((7,) + original_hw, np.nan, np.float32)  # every value is overwritten
    assert upsample_probs(net, pred_stride, scaled_hw, original_hw, out=reused) is reused
    np.testing.assert_array_equal(reused, np.array(want))
    with pytest.raises(ValueError):
        upsample_probs(net, pred_stride, scaled_hw, original_hw, out=reused[:6])


def test_copy_image_into_checks_the_target():
    image = Image.fromarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    out = np.zeros((3, 4), np.float32)
    one_image._copy_image_into(out, image)
    np.testing.assert_array_equal(out, np.asarray(image))
    for bad in (np.zeros((4, 3), np.float32), np.zeros((3, 4), np.float64),
                np.zeros((3, 8), np.float32)[:, ::2]):
        with pytest.raises(ValueError):
            one_image._copy_image_into(bad, image)


# ------------------------------------------------------------ the real (tiny) network
def tiny_predictor(test_steps=1, ctx=None):
    arg, aux = initial_weights(parameter_shapes('gta_rna-tiny_cls19_s8'), seed=3)
    return Predictor('gta_rna-tiny_cls19_s8', arg, aux, ctx or mx.cpu(), 8, test_steps)


@pytest.mark.slow
def test_every_cpu_context_gives_cpu0s_numbers(monkeypatch):
    """MXNet optimises the graph (MKLDNN subgraphs) on cpu(0) only; Predictor makes the same
    partition on cpu(1), cpu(2), ...: bit-identical maps on every CPU context (--gpus cpu:N)."""
    image = (np.random.RandomState(2).rand(40, 70, 3) * 255).astype(np.uint8)
    first = tiny_predictor(2)
    assert '_sg_mkldnn' not in first.symbol.tojson()  # MXNet partitions it when it binds
    on_cpu0 = first.network_probs(image, 64, flip=True)[0]
    for ctx in (mx.cpu(1), mx.cpu(2)):
        predictor = tiny_predictor(2, ctx)
        assert '_sg_mkldnn_conv' in predictor.symbol.tojson()  # the fused convolutions
        np.testing.assert_array_equal(predictor.network_probs(image, 64, flip=True)[0], on_cpu0)
    # With MXNet's optimisation switched off (MXNET_SUBGRAPH_BACKEND=NONE) nothing is added.
    monkeypatch.setenv('MXNET_SUBGRAPH_BACKEND', 'NONE')
    assert '_sg_mkldnn' not in tiny_predictor(ctx=mx.cpu(1)).symbol.tojson()


@pytest.mark.slow
def test_network_probs_pads_to_stride_and_scales_longer_side():
    predictor = tiny_predictor()
    image = (np.random.RandomState(0).rand(50, 75, 3) * 255).astype(np.uint8)
    net, scaled_hw = predictor.network_probs(image, 100, flip=False)
    assert scaled_hw == (67, 100)  # longer side 100, other side rounded
    assert net.shape == (19, 9, 13)  # 67x100 padded to 72x104, at stride 8
    np.testing.assert_allclose(net.sum(0), 1.0, rtol=1e-5)
    two, _ = tiny_predictor(2).network_probs(image, 100, flip=True)
    assert two.shape == (19, 18, 26) and two.dtype == np.float32
    np.testing.assert_allclose(two.sum(0), 1.0, rtol=1e-5)


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
    net_f, _ = predictor.network_probs(image, 64, flip=True)
    # The mirrored pass sees the mirrored PADDED input (64x40 pads to 64x40: no padding here).
    net_m, _ = predictor.network_probs(np.ascontiguousarray(image[:, ::-1]), 64, flip=False)
    np.testing.assert_allclose(net_f, 0.5 * (net + net_m[:, :, ::-1]), rtol=1e-5, atol=1e-6)
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


# ------------------------------------------- evaluate.py's softmax: float64, rounded to float32
class RestatedOhemSoftmax(mx.operator.CustomOp):
    """The forward of yzou2/CBST util/symbol/layer.py OhemSoftmax, restated: the input in
    float64, exp(x - max over classes), divided by the sum over classes, stored as float32."""

    def forward(self, is_train, req, in_data, out_data, aux):
        x = in_data[0].asnumpy().astype(np.float64)
        y = np.exp(x - x.max(axis=1, keepdims=True))
        y = y / y.sum(axis=1, keepdims=True)
        self.assign(out_data[0], req[0], mx.nd.array(y.astype(np.float32)))


@mx.operator.register('restated_ohem_softmax')
class RestatedOhemSoftmaxProp(mx.operator.CustomOpProp):
    def __init__(self):
        super().__init__(need_top_grad=False)

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], []

    def create_operator(self, ctx, shapes, dtypes):
        return RestatedOhemSoftmax()


def _restated_evaluation_network(arg, aux, batch):
    """The original's evaluation network: the logits, then the float64 custom-op softmax."""
    from util.symbol.resnet38 import build_symbol
    logits = build_symbol('gta_rna-tiny_cls19_s8').get_children()[0]
    net = mx.sym.Custom(data=logits, op_type='restated_ohem_softmax', name='softmax')
    mod = mx.mod.Module(net, data_names=('data',), label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', batch.shape)], for_training=False)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    mod.forward(mx.io.DataBatch(data=[mx.nd.array(batch)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


def test_float64_softmax_equals_the_original_evaluation_network():
    arg, aux = initial_weights(parameter_shapes('gta_rna-tiny_cls19_s8'), seed=3)
    batch = np.random.RandomState(4).randn(2, 3, 48, 64).astype(np.float32)
    evaluation = Predictor('gta_rna-tiny_cls19_s8', arg, aux, mx.cpu(), 8, float64_softmax=True)
    got = evaluation._forward(batch)
    expected = _restated_evaluation_network(arg, aux, batch)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # phase val's float32 softmax is another function: it differs in the last bits
    float32 = Predictor('gta_rna-tiny_cls19_s8', arg, aux, mx.cpu(), 8)._forward(batch)
    np.testing.assert_allclose(float32, expected, rtol=1e-5, atol=1e-7)
    assert (float32 != expected).any()


def test_evaluate_uses_the_float64_softmax(tmp_path, monkeypatch):
    """evaluate.py's predictors are built with float64_softmax (and only they)."""
    made = []
    real = one_image.make_predictors

    def spy(*args, **kwargs):
        made.append(kwargs.get('float64_softmax', False))
        return real(*args, **kwargs)
    monkeypatch.setattr(one_image, "make_predictors", spy)
    from conftest import make_layout, write_model_weights
    from issegm import evaluate
    from issegm.datasets import write_list
    pairs = make_layout(str(tmp_path / 'data'), 'cityscapes', 1, hw=(32, 64))
    lst = str(tmp_path / 'val.lst')
    write_list(lst, pairs)
    weights = write_model_weights(tmp_path / 'cityscapes_rna-tiny_cls19_s8_ep-0001.params',
                                  'cityscapes_rna-tiny_cls19_s8', seed=1)
    assert evaluate.main(['--data-root', str(tmp_path / 'data'), '--split', lst, '--weights',
                          weights, '--output', str(tmp_path / 'out'), '--gpus', 'cpu',
                          '--no-progress', '--test-scales', '64']) == 0
    assert made == [True]
