"""Tests of issegm/crst/loss.py: the CRST loss head's value and gradient against NumPy statements
of the formulas (finite differences), SoftmaxOutput's gradient and per-device normalisation,
the released code's weight (yzou2/CRST crst_seg.py, reg_loss_calc), and the plain symbol when
every weight is 0."""
import mxnet as mx
import numpy as np
import pytest

from issegm.crst import loss as crst_loss
from issegm.crst.loss import CrstSettings, crst_settings, label_names, training_symbol
from util.errors import UserError
from util.symbol.resnet38 import build_symbol
from util.weights import initial_weights

NUM_CLASSES = 4


# ----------------------------------------------------------------------------------------------
# NumPy statements of the loss (float64), one device's slice at a time.

def np_log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def ref_loss(logits, label, soft=None, mask=None, kind=None, weight=0.0):
    """sum over valid pixels of the cross-entropy / max(#valid, 1) + W * sum over valid masked
    pixels of the regulariser / max(#those, 1)."""
    log_p = np_log_softmax(np.asarray(logits, np.float64))
    p = np.exp(log_p)
    num_classes = log_p.shape[1]
    valid = label != 255
    ce = np.zeros(label.shape)
    for b, i, j in zip(*np.nonzero(valid)):
        if soft is None:
            ce[b, i, j] = -log_p[b, int(label[b, i, j]), i, j]
        else:
            ce[b, i, j] = -(soft[b, :, i, j] * log_p[b, :, i, j]).sum()
    loss = ce.sum() / max(valid.sum(), 1)
    if kind is not None:
        reg = {'kld': -log_p.sum(axis=1) / num_classes,
               'l2': (p ** 2).sum(axis=1),
               'ent': (p * log_p).sum(axis=1)}[kind]
        target = (mask != 0) & valid
        loss += weight * (reg * target).sum() / max(target.sum(), 1)
    return loss


def finite_difference_gradient(fn, x, step=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += step
        minus[idx] -= step
        grad[idx] = (fn(plus) - fn(minus)) / (2 * step)
    return grad


# ----------------------------------------------------------------------------------------------
# Inputs

def random_case(seed, batch=2, height=3, width=5, ignored=0.3, num_classes=NUM_CLASSES):
    rng = np.random.RandomState(seed)
    logits = rng.randn(batch, num_classes, height, width) * 2
    label = rng.randint(0, num_classes, (batch, height, width)).astype(np.float64)
    label[rng.rand(*label.shape) < ignored] = 255
    soft = rng.dirichlet(np.full(num_classes, 0.5), size=(batch, height, width))
    soft = soft.transpose(0, 3, 1, 2) * (label != 255)[:, None]  # 0 on ignored pixels
    mask = np.zeros(label.shape)
    mask[batch // 2:] = 1  # the second half of the batch: target samples
    return logits, label, soft, mask


def one_hot(label, num_classes=NUM_CLASSES):
    out = np.zeros((label.shape[0], num_classes) + label.shape[1:])
    for k in range(num_classes):
        out[:, k] = label == k
    return out


def head_executor(settings, shape, dtype=np.float64):
    """An executor of crst_head on a free `logits` input (its gradient written)."""
    sym = crst_loss.crst_head(mx.sym.Variable('logits'), settings)
    batch, num_classes, height, width = shape
    shapes = {'logits': shape, crst_loss.LABEL: (batch, height, width),
              crst_loss.SOFT_LABEL: shape, crst_loss.REG_MASK: (batch, height, width)}
    names = sym.list_arguments()
    assert set(names) == {'logits'} | set(label_names(settings))
    return sym.simple_bind(mx.cpu(), grad_req={n: 'write' if n == 'logits' else 'null'
                                               for n in names},
                           type_dict={n: dtype for n in names},
                           **{n: shapes[n] for n in names})


def run_head(settings, logits, label, soft, mask, dtype=np.float64):
    """(probabilities, loss, d loss / d logits) from the MXNet head."""
    ex = head_executor(settings, logits.shape, dtype)
    values = {'logits': logits, crst_loss.LABEL: label, crst_loss.SOFT_LABEL: soft,
              crst_loss.REG_MASK: mask}
    for name, arr in ex.arg_dict.items():
        arr[:] = values[name]
    ex.forward(is_train=True)
    ex.backward()
    return (ex.outputs[0].asnumpy(), float(ex.outputs[1].asnumpy()[0]),
            ex.grad_dict['logits'].asnumpy())


SETTINGS = [CrstSettings(0.0, kind, w) for kind, w in [(None, 0.0), ('kld', 0.7), ('l2', 1.3),
                                                      ('ent', 0.4)]]
SETTINGS += [CrstSettings(0.25, kind, w) for kind, w in [(None, 0.0), ('kld', 0.01), ('l2', 2.0),
                                                        ('ent', 0.5)]]


# ----------------------------------------------------------------------------------------------
# Value and gradient

@pytest.mark.parametrize('settings', SETTINGS, ids=lambda s: 'soft%s-%s' % (s.lr_weight_ent,
                                                                            s.regulariser))
@pytest.mark.parametrize('ignored', [0.0, 0.4])
def test_value_and_gradient_equal_numpy(settings, ignored):
    logits, label, soft, mask = random_case(1, ignored=ignored)
    use_soft = soft if settings.lr_weight_ent > 0 else None

    def loss_of(x):
        return ref_loss(x, label, use_soft, mask, settings.regulariser, settings.mr_weight)

    prob, value, grad = run_head(settings, logits, label, soft, mask)
    assert value == pytest.approx(loss_of(logits), rel=1e-12)
    np.testing.assert_allclose(grad, finite_difference_gradient(loss_of, logits), atol=1e-8)
    np.testing.assert_allclose(prob, np.exp(np_log_softmax(logits)), rtol=1e-12)
    # float32, the training dtype
    prob32, value32, grad32 = run_head(settings, logits, label, soft, mask, np.float32)
    assert value32 == pytest.approx(loss_of(logits), rel=1e-5)
    np.testing.assert_allclose(grad32, grad, atol=1e-6)


def test_regulariser_is_zero_without_target_pixels_and_loss_zero_without_labels():
    logits, label, soft, mask = random_case(2)
    settings = CrstSettings(0.0, 'kld', 5.0)
    plain = CrstSettings(0.0, None, 0.0)
    no_target = np.zeros_like(mask)
    _, value, grad = run_head(settings, logits, label, soft, no_target)
    _, value_plain, grad_plain = run_head(plain, logits, label, soft, no_target)
    assert value == value_plain and np.array_equal(grad, grad_plain)
    # target pixels that are all ignored are not regularised either
    all_ignored_target = label.copy()
    all_ignored_target[mask != 0] = 255
    _, value, _ = run_head(settings, logits, all_ignored_target, soft, mask)
    _, value_plain, _ = run_head(plain, logits, all_ignored_target, soft, mask)
    assert value == value_plain
    # no valid pixel at all: 0, not NaN (SoftmaxOutput divides by 1 then too)
    _, value, grad = run_head(settings, logits, np.full_like(label, 255), soft * 0, mask)
    assert value == 0 and not grad.any()


def test_regulariser_is_restricted_to_the_mask():
    logits, label, soft, mask = random_case(3, ignored=0.0)
    settings = CrstSettings(0.0, 'l2', 1.0)
    _, with_target, _ = run_head(settings, logits, label, soft, mask)
    _, all_pixels, _ = run_head(settings, logits, label, soft, np.ones_like(mask))
    assert with_target != pytest.approx(all_pixels)  # the mask matters
    # a mask of 2s selects the same pixels as 1s (non-zero = target)
    _, twos, _ = run_head(settings, logits, label, soft, 2 * mask)
    assert twos == with_target


# ----------------------------------------------------------------------------------------------
# SoftmaxOutput

def softmax_output_gradient(logits, label):
    sym = mx.sym.SoftmaxOutput(mx.sym.Variable('logits'), mx.sym.Variable('softmax_label'),
                               multi_output=True, use_ignore=True, ignore_label=255,
                               normalization='valid')
    ex = sym.simple_bind(mx.cpu(), logits=logits.shape, softmax_label=label.shape,
                         grad_req={'logits': 'write', 'softmax_label': 'null'})
    ex.arg_dict['logits'][:] = logits
    ex.arg_dict['softmax_label'][:] = label
    ex.forward(is_train=True)
    ex.backward()
    return ex.grad_dict['logits'].asnumpy()


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_one_hot_soft_labels_give_softmax_output_gradient(seed):
    logits, label, _, mask = random_case(seed, batch=3, height=6, width=7, ignored=0.3,
                                         num_classes=19)
    expected = softmax_output_gradient(logits, label)
    for settings, soft in [(CrstSettings(0.3, None, 0.0), one_hot(label, 19)),
                           (CrstSettings(0.0, None, 0.0), None)]:
        _, _, grad = run_head(settings, logits, label,
                              soft if soft is not None else np.zeros(logits.shape), mask,
                              np.float32)
        np.testing.assert_allclose(grad, expected, atol=2e-8)
        assert np.abs(expected).max() > 1e-3


def _conv_net(settings):
    """data -> 1x1 convolution (weight 'w', C x 3) -> CRST head or SoftmaxOutput."""
    logits = mx.sym.Convolution(mx.sym.Variable('data'), weight=mx.sym.Variable('w'),
                                num_filter=NUM_CLASSES, kernel=(1, 1), no_bias=True, name='conv')
    if settings is None:
        return mx.sym.SoftmaxOutput(logits, name='softmax', multi_output=True, use_ignore=True,
                                    ignore_label=255, normalization='valid')
    return crst_loss.crst_head(logits, settings)


def _module_weight_gradient(settings, data, labels, weight, contexts):
    names = label_names(settings) if settings is not None else ('softmax_label',)
    mod = mx.mod.Module(_conv_net(settings), data_names=('data',), label_names=names,
                        context=contexts)
    mod.bind(data_shapes=[('data', data.shape)],
             label_shapes=[(n, labels[n].shape) for n in names], for_training=True)
    mod.init_params(arg_params={'w': mx.nd.array(weight)}, aux_params={})
    batch = mx.io.DataBatch(data=[mx.nd.array(data)], label=[mx.nd.array(labels[n])
                                                            for n in names])
    mod.forward_backward(batch)
    grads = mod._exec_group.grad_arrays[mod._exec_group.param_names.index('w')]
    assert len(grads) == len(contexts)
    return sum(g.asnumpy().astype(np.float64) for g in grads)


def test_two_devices_normalise_per_device_like_softmax_output():
    rng = np.random.RandomState(4)
    batch, height, width = 4, 5, 6
    data = rng.randn(batch, 3, height, width).astype(np.float32)
    weight = (rng.randn(NUM_CLASSES, 3, 1, 1) * 0.7).astype(np.float32)
    label = rng.randint(0, NUM_CLASSES, (batch, height, width)).astype(np.float32)
    label[:2][rng.rand(2, height, width) < 0.85] = 255  # device 0: few valid pixels
    label[2:][rng.rand(2, height, width) < 0.05] = 255  # device 1: many
    mask = np.zeros(label.shape, np.float32)
    mask[[1, 3]] = 1  # one target sample per device
    soft = one_hot(label).astype(np.float32)
    labels = {crst_loss.LABEL: label, crst_loss.SOFT_LABEL: soft, crst_loss.REG_MASK: mask}
    devices = [mx.cpu(0), mx.cpu(1)]

    def ref_total(w, settings, per_device=True):
        """Sum over the devices of each device's loss (its own normalisation)."""
        logits = np.einsum('kc,bchw->bkhw', w.reshape(NUM_CLASSES, 3), data.astype(np.float64))
        soft_in = soft if settings.lr_weight_ent > 0 else None
        if not per_device:
            return 2 * ref_loss(logits, label, soft_in, mask, settings.regulariser,
                                settings.mr_weight)
        total = 0.0
        for part in (slice(0, 2), slice(2, 4)):
            total += ref_loss(logits[part], label[part],
                              None if soft_in is None else soft_in[part], mask[part],
                              settings.regulariser, settings.mr_weight)
        return total

    w64 = weight.astype(np.float64)
    plain = _module_weight_gradient(None, data, labels, weight, devices)
    for settings in (CrstSettings(0.5, None, 0.0), CrstSettings(0.0, None, 0.0)):
        grad = _module_weight_gradient(settings, data, labels, weight, devices)
        np.testing.assert_allclose(grad, plain, atol=1e-6)  # SoftmaxOutput's, device by device
    for settings in (CrstSettings(0.5, 'kld', 0.3), CrstSettings(0.0, 'ent', 0.8),
                     CrstSettings(0.0, 'l2', 1.1)):
        grad = _module_weight_gradient(settings, data, labels, weight, devices)
        expected = finite_difference_gradient(lambda w: ref_total(w, settings), w64)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)
        pooled = finite_difference_gradient(lambda w: ref_total(w, settings, False), w64)
        assert np.abs(pooled - expected).max() > 1e-3  # one pooled count would differ


def test_probability_output_feeds_the_nll_metric():
    # The training log's NLL (a CustomMetric over label and softmax output) reads the head's
    # first output and first label when told their names; it then equals the plain symbol's.
    rng = np.random.RandomState(5)
    data = rng.randn(2, 3, 4, 5).astype(np.float32)
    weight = rng.randn(NUM_CLASSES, 3, 1, 1).astype(np.float32)
    label = rng.randint(0, NUM_CLASSES, (2, 4, 5)).astype(np.float32)
    label[0, 0] = 255
    labels = {crst_loss.LABEL: label, crst_loss.SOFT_LABEL: one_hot(label).astype(np.float32),
              crst_loss.REG_MASK: np.ones(label.shape, np.float32)}

    def nll(lab, prob):
        valid = lab != 255
        picked = np.take_along_axis(prob, np.where(valid, lab, 0).astype(int)[:, None], 1)[:, 0]
        return float(-np.log(picked[valid]).sum()), int(valid.sum())

    values = []
    for settings in (None, CrstSettings(0.3, 'kld', 0.01)):
        names = label_names(settings) if settings is not None else ('softmax_label',)
        mod = mx.mod.Module(_conv_net(settings), data_names=('data',), label_names=names,
                            context=[mx.cpu(0), mx.cpu(1)])
        mod.bind(data_shapes=[('data', data.shape)],
                 label_shapes=[(n, labels[n].shape) for n in names])
        mod.init_params(arg_params={'w': mx.nd.array(weight)}, aux_params={})
        batch = mx.io.DataBatch(data=[mx.nd.array(data)],
                                label=[mx.nd.array(labels[n]) for n in names])
        mod.forward(batch, is_train=True)
        output = mod.output_names[0]
        metric = mx.metric.CustomMetric(nll, name='loss', output_names=[output],
                                        label_names=['softmax_label'])
        mod.update_metric(metric, batch.label)
        values.append(metric.get()[1])
    assert values[1] == pytest.approx(values[0], rel=1e-6)
    assert values[0] > 0


# ----------------------------------------------------------------------------------------------
# The released code's weight

def ref_released_reg_loss_calc(logits, label, reg_weights, mr_weight_kld):
    """yzou2/CRST crst_seg.py, reg_loss_calc, restated in NumPy on one batch: the per-sample
    reg_weights (the dataset's reg_weight: args.mr_weight_kld for target samples, --mr-weight-src
    = 0 for source ones) multiply -log_softmax / num_class on the valid pixels, the sum is
    multiplied by mr_weight_kld again and divided by the valid pixels of the samples whose
    reg_weight is non-zero."""
    log_p = np_log_softmax(np.asarray(logits, np.float64))
    num_class = float(log_p.shape[1])
    valid = label != 255
    valid_num = valid.sum()
    valid_reg_num = valid[np.asarray(reg_weights) != 0].sum()
    ce = 0.0
    kld = 0.0
    for b, i, j in zip(*np.nonzero(valid)):
        ce += -log_p[b, int(label[b, i, j]), i, j]
        kld += (-log_p[b, :, i, j] / num_class * reg_weights[b]).sum()
    if valid_reg_num > 0:
        return ce / valid_num + (mr_weight_kld * kld) / valid_reg_num
    return ce / valid_num


def test_released_mr_weight_kld_is_squared():
    logits, label, _, _ = random_case(6, batch=2, ignored=0.2)
    w = 0.1  # mrkld.sh: --mr-weight-kld 0.1
    released = ref_released_reg_loss_calc(logits, label, [0.0, w], w)  # [source, target]
    mask = np.zeros(label.shape)
    mask[1] = 1
    _, ours, _ = run_head(CrstSettings(0.0, 'kld', w * w), logits, label, np.zeros(logits.shape),
                          mask)
    assert ours == pytest.approx(released, rel=1e-12)
    _, not_squared, _ = run_head(CrstSettings(0.0, 'kld', w), logits, label,
                                 np.zeros(logits.shape), mask)
    assert not_squared != pytest.approx(released, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# Settings, names, the plain symbol

def test_settings_checks():
    assert crst_settings() == CrstSettings(0.0, None, 0.0)
    assert crst_settings(0.25, mr_weight_kld=0.01) == CrstSettings(0.25, 'kld', 0.01)
    assert crst_settings(mr_weight_l2='0.5') == CrstSettings(0.0, 'l2', 0.5)
    assert crst_settings(mr_weight_ent=2) == CrstSettings(0.0, 'ent', 2.0)
    for kwargs in ({'lr_weight_ent': -0.1}, {'mr_weight_kld': -1}, {'mr_weight_l2': float('nan')},
                   {'mr_weight_ent': float('inf')}, {'mr_weight_kld': 'x'}):
        with pytest.raises(UserError):
            crst_settings(**kwargs)
    with pytest.raises(UserError, match='only one model regulariser'):
        crst_settings(mr_weight_kld=0.1, mr_weight_ent=0.1)


def test_label_names():
    assert label_names(CrstSettings(0.0, None, 0.0)) == ('softmax_label',)
    assert label_names(CrstSettings(0.3, None, 0.0)) == ('softmax_label', 'crst_soft_label')
    assert label_names(CrstSettings(0.0, 'ent', 1.0)) == ('softmax_label', 'crst_reg_mask')
    assert label_names(CrstSettings(0.3, 'kld', 1.0)) == ('softmax_label', 'crst_soft_label',
                                                         'crst_reg_mask')


MODEL = 'gta_rna-tiny_cls19_s8'


def fresh_names(build, *args):
    """Build a symbol with MXNet's automatic names (_plus0, ...) counted from 0."""
    with mx.name.NameManager():
        return build(*args)


def test_all_weights_zero_give_the_plain_symbol():
    plain = fresh_names(build_symbol, MODEL).tojson()
    assert fresh_names(training_symbol, MODEL).tojson() == plain
    assert fresh_names(training_symbol, MODEL, crst_settings()).tojson() == plain
    assert fresh_names(training_symbol, MODEL, crst_settings(0.2)).tojson() != plain


@pytest.mark.parametrize('settings', [CrstSettings(0.25, 'kld', 0.01),
                                      CrstSettings(0.0, 'l2', 1.0)])
def test_network_and_frozen_batchnorm_are_the_plain_symbols(settings):
    plain = fresh_names(build_symbol, MODEL)
    sym = fresh_names(training_symbol, MODEL, settings)
    # the same network below the head: same logits graph, same parameters and BN statistics
    logits_name = plain.get_children()[0].name + '_output'
    assert (sym.get_internals()[logits_name].tojson()
            == plain.get_internals()[logits_name].tojson())
    params = [n for n in plain.list_arguments() if n != 'softmax_label']
    assert [n for n in sym.list_arguments() if n not in label_names(settings)] == params
    assert sym.list_auxiliary_states() == plain.list_auxiliary_states()
    assert sym.list_outputs() == ['crst_prob_output', 'crst_loss_output']
    # one SGD step changes the weights but not the frozen BN statistics
    shape, label_hw = (2, 3, 64, 64), (2, 8, 8)
    arg_shapes, _, aux_shapes = plain.infer_shape(data=shape)
    expected = [('arg', n, s) for n, s in zip(plain.list_arguments(), arg_shapes)
                if n not in ('data', 'softmax_label')]
    expected += [('aux', n, s) for n, s in zip(plain.list_auxiliary_states(), aux_shapes)]
    arg, aux = initial_weights(expected, seed=3)
    aux = {n: v * 0.5 + 0.2 for n, v in aux.items()}  # non-trivial statistics
    names = label_names(settings)
    label_shapes = {crst_loss.LABEL: label_hw, crst_loss.SOFT_LABEL: (2, 19) + label_hw[1:],
                    crst_loss.REG_MASK: label_hw}
    mod = mx.mod.Module(sym, data_names=('data',), label_names=names, context=mx.cpu())
    mod.bind(data_shapes=[('data', shape)], label_shapes=[(n, label_shapes[n]) for n in names])
    mod.init_params(arg_params=arg, aux_params=aux)
    mod.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 0.1})
    rng = np.random.RandomState(0)
    label = rng.randint(0, 19, label_hw).astype(np.float32)
    values = {crst_loss.LABEL: label, crst_loss.SOFT_LABEL: one_hot(label, 19),
              crst_loss.REG_MASK: np.ones(label_hw)}
    mod.forward_backward(mx.io.DataBatch(data=[mx.nd.array(rng.randn(*shape))],
                                         label=[mx.nd.array(values[n]) for n in names]))
    mod.update()
    new_arg, new_aux = mod.get_params()
    for name, value in aux.items():
        np.testing.assert_array_equal(new_aux[name].asnumpy(), value.asnumpy())
    last = 'linear19_weight'
    assert not np.array_equal(new_arg[last].asnumpy(), arg[last].asnumpy())
