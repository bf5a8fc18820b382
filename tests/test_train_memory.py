"""--backward-do-mirror (util/mirroring.py): the same numbers as without it, less planned memory.

The narrow rna-tiny model stands in for ResNet-38 (the same units, dropout and heads);
benchmarks/bench_train_memory.py measures the full model. MXNet reads
MXNET_BACKWARD_DO_MIRROR each time it builds a training graph, so each test sets it itself.
"""
import json

import mxnet as mx
import numpy as np
import pytest

from issegm import training
from issegm.crst.loss import training_symbol
from issegm.crst.settings import CrstSettings, label_names
from util.mirroring import MIRROR_ATTR, MIRRORED_OPS, mirror_symbol, planned_memory_mb
from util.symbol.resnet38 import parameter_shapes
from util.weights import initial_weights

MODEL = 'gta_rna-tiny_cls19_s8'
CRST = CrstSettings(0.5, 'kld', 0.1)  # LR-ENT and MR-KLD: every label input of the CRST head


@pytest.fixture(autouse=True)
def no_mxnet_mirror(monkeypatch):
    monkeypatch.setenv('MXNET_BACKWARD_DO_MIRROR', '0')


def _inputs(settings, images=2, crop=64, seed=0):
    """A batch: data, then the label inputs of label_names(settings), 1/4 of the pixels 255."""
    rng = np.random.RandomState(seed)
    grid = crop // 8
    hard = rng.randint(0, 19, (images, grid, grid)).astype(np.float32)
    hard[rng.rand(*hard.shape) < 0.25] = 255
    labels = {'softmax_label': hard,
              'crst_soft_label': rng.dirichlet(np.ones(19), (images, grid, grid))
              .transpose(0, 3, 1, 2).astype(np.float32),
              'crst_reg_mask': (rng.rand(images, grid, grid) < 0.5).astype(np.float32)}
    names = label_names(settings)
    data = rng.uniform(-1, 1, (images, 3, crop, crop)).astype(np.float32)
    return mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(labels[n]) for n in names]), names


class Batches:
    """What fit reads of a SegTrainIter, over fixed batches."""

    def __init__(self, batch, names, count):
        self.batches = [batch] * count
        self.batches_per_epoch = count
        self.provide_data = [mx.io.DataDesc('data', batch.data[0].shape)]
        self.provide_label = [mx.io.DataDesc(n, a.shape) for n, a in zip(names, batch.label)]

    def reset(self):
        pass

    def __iter__(self):
        return iter(self.batches)


def _nodes(symbol):
    return json.loads(symbol.tojson())['nodes']


@pytest.mark.parametrize('settings', [None, CRST])
def test_mirror_symbol_marks_batchnorm_relu_and_convolutions_only(settings):
    plain = training_symbol(MODEL, settings)
    before = plain.tojson()
    mirrored = mirror_symbol(plain)
    assert plain.tojson() == before  # the plain symbol is left as it was
    nodes, marked = _nodes(plain), _nodes(mirrored)
    assert [(n['op'], n['name']) for n in nodes] == [(n['op'], n['name']) for n in marked]
    for node, copy in zip(nodes, marked):
        attrs = dict(copy.get('attrs', {}))
        assert (attrs.pop(MIRROR_ATTR, None) == 'True') == (node['op'] in MIRRORED_OPS)
        assert attrs == node.get('attrs', {}), node['name']
    ops = {n['op'] for n in nodes}
    assert set(MIRRORED_OPS) <= ops and {'elemwise_add', 'Dropout'} <= ops
    assert mirrored.list_arguments() == plain.list_arguments()
    assert mirrored.list_outputs() == plain.list_outputs()


def _step(symbol, batch, names, params):
    """One training step as fit takes it: (outputs, {param: gradient}, params after SGD,
    number of recomputed nodes in the executor's graph)."""
    module = training.bind_module(symbol, Batches(batch, names, 1), [mx.cpu()], *params)
    training.init_sgd(module, training.FixedSchedule(0.01), 0.0005, 1, None)
    mx.random.seed(3)  # the dropout masks
    module.forward_backward(batch)
    outputs = [o.asnumpy() for o in module.get_outputs()]
    group = module._exec_group
    grads = {n: g[0].asnumpy() for n, g in zip(group.param_names, group.grad_arrays)}
    module.update()
    arg, aux = module.get_params()
    after = {k: v.asnumpy() for k, v in list(arg.items()) + list(aux.items())}
    return outputs, grads, after, group.execs[0].debug_str().count('_mirror(')


@pytest.mark.parametrize('settings', [None, CRST])
def test_mirrored_step_equals_plain_step(settings):
    """The loss outputs, every parameter gradient and the parameters after one SGD step are
    bitwise those of the plain symbol, and the mirrored graph does recompute nodes."""
    batch, names = _inputs(settings)
    params = initial_weights(parameter_shapes(MODEL), seed=1)
    plain = training_symbol(MODEL, settings)
    out0, grads0, after0, copies0 = _step(plain, batch, names, params)
    out1, grads1, after1, copies1 = _step(mirror_symbol(plain), batch, names, params)
    assert copies0 == 0 and copies1 > 0
    assert all(np.array_equal(a, b) for a, b in zip(out0, out1))
    assert grads0.keys() == grads1.keys()
    for name in grads0:
        assert np.array_equal(grads0[name], grads1[name]), name
    assert any(np.abs(g).max() > 0 for g in grads0.values())
    assert after0.keys() == after1.keys()
    for name in after0:
        assert np.array_equal(after0[name], after1[name]), name


def _planned(symbol, crop=256, images=1):
    grid = crop // 8
    exe = symbol.simple_bind(mx.cpu(), data=(images, 3, crop, crop),
                             softmax_label=(images, grid, grid),
                             grad_req={n: 'null' if n in ('data', 'softmax_label') else 'write'
                                       for n in symbol.list_arguments()})
    return planned_memory_mb(exe)


def test_mirror_plans_less_memory_and_mxnets_switch_more(monkeypatch):
    """MXNet 1.9.1's own switch (set for the flag by yzou2/CBST solve_ST.py) plans more memory
    than none; the port's marks plan at least 30% less."""
    plain = training_symbol(MODEL)
    without = _planned(plain)
    assert _planned(mirror_symbol(plain)) <= 0.7 * without
    monkeypatch.setenv('MXNET_BACKWARD_DO_MIRROR', '1')
    assert _planned(plain) > without


@pytest.mark.slow
def test_fit_with_mirror_writes_the_same_checkpoint(tmp_path):
    """fit(mirror=True) over two batches: the checkpoint and the symbol json are bitwise those
    of fit(mirror=False)."""
    batch, names = _inputs(None, seed=4)
    params = initial_weights(parameter_shapes(MODEL), seed=2)
    symbol = training_symbol(MODEL)  # once: MXNet numbers the unnamed sums of each build
    files = []
    for mirror in (False, True):
        prefix = str(tmp_path / str(mirror) / 'm_ep')
        mx.random.seed(5)
        history = training.fit(symbol, Batches(batch, names, 2), [mx.cpu()], params,
                               training.FitSettings(0, 1, prefix, 0.01, progress=False,
                                                    mirror=mirror))
        assert history[0]['batches'] == 2
        with open(prefix + '-0001.params', 'rb') as f, open(prefix + '-symbol.json') as g:
            files.append((history[0]['nll'], f.read(), g.read()))
    assert files[0] == files[1]
    assert MIRROR_ATTR not in files[1][2]
