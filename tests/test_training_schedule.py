"""Learning rate per update and the training log's NLL, against restatements of upstream's rules
(yzou2/CBST issegm/solve_ST.py and train_src.py _train_impl and _get_metric, util/lr_scheduler.py,
MXNet's MultiFactorScheduler and log_train_metric(10, auto_reset=False))."""
import logging

import mxnet as mx
import numpy as np
import pytest

from conftest import write_model_weights
from issegm import training
from util.errors import UserError
from util.lr_scheduler import make_lr_scheduler

MODEL = 'gta_rna-tiny_cls19_s8'


# ----------------------------------------------------------------------------------------------
# Restatements

def upstream_lr_params(lr_type, base_lr, lr_steps):
    """yzou2/CBST solve_ST.py and train_src.py parse_model_label: the lr_params dict. Only
    linear and poly set the type; step fills the args and leaves the type fixed."""
    params = {'type': 'fixed', 'base': 0.1, 'args': None}
    if base_lr is not None:
        params['base'] = base_lr
    if lr_type in ('linear', 'poly'):
        params['type'] = lr_type
    elif lr_type == 'step':
        params['args'] = {'step': [int(x) for x in lr_steps.split(',')], 'factor': 0.1}
    return params


def upstream_lrs(lr_type, base_lr, lr_steps, from_iter, to_iter, count):
    """The lr the original's optimizer applies at updates n = 1 .. count of one process: the
    scheduler _train_impl picks from parse_model_label's lr_params['type']."""
    params = upstream_lr_params(lr_type, base_lr, lr_steps)
    base_lr = params['base']
    if params['type'] == 'fixed':
        return [base_lr] * count
    total = to_iter + 1
    out = []
    for n in range(1, count + 1):
        done = from_iter + n
        if done > total:
            done = total
        if params['type'] == 'linear':
            lr = base_lr * (1 - float(done) / total)
            floor = min(base_lr / 100.0, 1e-6)
        else:
            lr = base_lr * (1 - float(done) / total) ** 0.9
            floor = min(base_lr / 100.0, 1e-8)
        out.append(floor if lr < floor else lr)
    return out


def multistep_lrs(base_lr, lr_steps, from_iter, count):
    """--lr-type multistep (the port's): base_lr times 0.1 for every step s already passed at
    iteration from_iter + n of the whole schedule (passed: from_iter + n > s, as MXNet's
    MultiFactorScheduler counts)."""
    steps = [int(x) for x in lr_steps.split(',')]
    out = []
    for n in range(1, count + 1):
        lr = base_lr
        for step in steps:
            if from_iter + n > step:
                lr *= 0.1  # one factor at a time, as MXNet's scheduler multiplies
        out.append(lr)
    return out


def expected_lrs(lr_type, base_lr, lr_steps, from_iter, to_iter, count):
    if lr_type == 'multistep':
        return multistep_lrs(base_lr, lr_steps, from_iter, count)
    return upstream_lrs(lr_type, base_lr, lr_steps, from_iter, to_iter, count)


def upstream_st_loss(label, pred):
    """solve_ST.py _get_metric for one device: the float32 probability of the true class at
    every labelled pixel (raster order), -log(p + 1e-32) summed in float32; count + 1 if 0."""
    classes = pred.shape[1]
    flat_labels = label.reshape(-1)
    per_class = np.stack([pred[:, k].astype(np.float32).reshape(-1) for k in range(classes)])
    terms = [-np.log(per_class[int(flat_labels[i]), i] + np.float32(1e-32))
             for i in range(flat_labels.size) if flat_labels[i] != 255]
    count = len(terms)
    return np.array(terms, np.float32).sum(), count + (1 if count == 0 else 0)


def upstream_src_loss(label, pred):
    """train_src.py _get_metric: the same pixels, minus the float32 sum of log(p + 1e-6)."""
    batch, classes, height, width = pred.shape
    label = label.reshape(batch, height, width)
    logs = []
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                if label[b, y, x] != 255:
                    logs.append(np.log(pred[b, int(label[b, y, x]), y, x] + np.float32(1e-6)))
    count = len(logs)
    return -np.array(logs, np.float32).sum(), count + (1 if count == 0 else 0)


# ----------------------------------------------------------------------------------------------
# Schedules alone

CONFIGS = [  # lr_type, base_lr, lr_steps, from_iter, to_iter
    ('fixed', 0.0016, '', 0, 30),
    ('step', 0.01, '3,7,12', 0, 20),     # the original's parse: a fixed rate (QUIRK)
    ('step', 0.01, '3,7,12', 8, 20),
    ('multistep', 0.01, '3,7,12', 0, 20),
    ('multistep', 0.01, '3,7,12', 8, 20),  # resumed after two steps: reduced twice, once each
    ('multistep', 0.01, '3,7,12', 7, 20),  # from_iter == step: passed at the first update
    ('linear', 0.01, '', 0, 10),
    ('linear', 0.01, '', 6, 10),         # runs past to_iter: capped, then the 1e-6 floor
    ('linear', 1e-5, '', 4, 12),         # floor base / 100
    ('poly', 0.01, '', 0, 10),
    ('poly', 2.5e-4, '', 9, 10),         # floor min(base / 100, 1e-8)
]


@pytest.mark.parametrize('config', CONFIGS)
def test_schedule_equals_upstream_per_update(config):
    lr_type, base_lr, steps, from_iter, to_iter = config
    schedule = make_lr_scheduler(lr_type, base_lr, steps, from_iter, to_iter)
    count = 25
    got = [schedule(n) for n in range(1, count + 1)]
    assert got == expected_lrs(lr_type, base_lr, steps, from_iter, to_iter, count)
    # calling it again (e.g. for a log line) changes nothing
    assert [schedule(n) for n in range(1, count + 1)] == got


def test_step_schedule_flag_errors():
    for lr_type in ('step', 'multistep'):
        for bad in ('', 'a,b', '5,3', '0,4'):
            with pytest.raises(UserError, match='lr-steps'):
                make_lr_scheduler(lr_type, 0.1, bad, 0, 10)
    with pytest.raises(UserError, match='unknown --lr-type'):
        make_lr_scheduler('cosine', 0.1, '', 0, 10)


def test_step_is_a_fixed_rate_with_a_warning():
    """The original's --lr-type step never reached its step branch: one warning line says so.
    (A handler on the project logger itself: setup_logging stops its propagation to pytest's.)"""
    logger = logging.getLogger('cbst')
    handler = ListHandler()
    logger.addHandler(handler)
    try:
        schedule = make_lr_scheduler('step', 0.01, '3,7', 0, 20)
    finally:
        logger.removeHandler(handler)
    assert [schedule(n) for n in (1, 4, 8, 20)] == [0.01] * 4
    assert len(handler.messages) == 1
    assert 'fixed rate' in handler.messages[0] and 'multistep' in handler.messages[0]


def test_multistep_resumed_equals_one_run():
    """A schedule resumed at from_iter continues the lrs of one uninterrupted run."""
    whole = make_lr_scheduler('multistep', 0.01, '3,7,12', 0, 20)
    resumed = make_lr_scheduler('multistep', 0.01, '3,7,12', 8, 20)
    assert [resumed(n) for n in range(1, 13)] == [whole(8 + n) for n in range(1, 13)]


# ----------------------------------------------------------------------------------------------
# fit: the lr the optimizer applies at each update

class Batches(mx.io.NDArrayIter):
    """Fixed batches in order; batches_per_epoch as SegTrainIter has it."""

    @property
    def batches_per_epoch(self):
        return self.num_data // self.batch_size


def _data(num, seed=0, empty=()):
    rng = np.random.RandomState(seed)
    data = rng.randn(num, 3, 64, 64).astype(np.float32)
    label = rng.randint(0, 19, (num, 8, 8)).astype(np.float32)
    label[:, :2] = 255  # some ignored pixels everywhere
    for i in empty:
        label[i] = 255  # images without any labelled pixel
    return data, label


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp('schedule') / ('%s_ep-0000.params' % MODEL)
    return write_model_weights(path, MODEL, seed=4)


def _fit(weights, tmp_path, schedule, data, label, from_epoch, stop_epoch, contexts, **kw):
    from util.symbol.resnet38 import build_symbol
    from util.weights import load_weights
    arg, aux = load_weights(weights)
    it = Batches(data, label, batch_size=2, label_name='softmax_label')
    kv = training.create_kvstore('local', len(contexts))
    seen = []

    def record(epoch, nbatch, module):
        opt = module._optimizer
        outputs = [o.asnumpy() for o in module.get_outputs(merge_multi_context=False)[0]]
        seen.append({'epoch': epoch, 'nbatch': nbatch, 'num_update': opt.num_update,
                     'begin': opt.begin_num_update, 'lr': opt.learning_rate,
                     'outputs': outputs})
    settings = training.FitSettings(from_epoch, stop_epoch, str(tmp_path / (MODEL + '_ep')),
                                    schedule, progress=False, batch_end_callback=record, **kw)
    history = training.fit(build_symbol(MODEL), it, contexts, (arg, aux), settings, kv)
    return history, seen


FIT_CONFIGS = [  # lr_type, lr_steps, from_epoch, stop_epoch, to_epoch, schedule batches/epoch
    ('fixed', '', 0, 1, 2, 3),
    ('step', '2,4,20', 2, 4, 5, 3),   # the original's parse: fixed
    ('multistep', '2,4,20', 2, 4, 5, 3),  # from_iter 6: two steps passed, the third at 20
    ('linear', '', 1, 3, 3, 5),       # schedule epochs of 5 batches, iterator epochs of 3
    ('linear', '', 0, 2, 2, 1),       # past the end of the schedule: the floor
    ('poly', '', 1, 2, 4, 3),         # --stop-epoch 2 of a schedule to epoch 4
]


@pytest.mark.slow
@pytest.mark.parametrize('config', FIT_CONFIGS)
def test_fit_applies_upstream_lr_at_every_update(weights, tmp_path, config):
    lr_type, steps, from_epoch, stop_epoch, to_epoch, per_epoch = config
    base_lr = 0.01
    schedule = make_lr_scheduler(lr_type, base_lr, steps, from_epoch * per_epoch,
                                 to_epoch * per_epoch)
    data, label = _data(6)
    history, seen = _fit(weights, tmp_path, schedule, data, label, from_epoch, stop_epoch,
                         [mx.cpu()])
    count = (stop_epoch - from_epoch) * 3
    assert [h['epoch'] for h in history] == list(range(from_epoch, stop_epoch))
    assert [s['num_update'] for s in seen] == list(range(1, count + 1))
    assert {s['begin'] for s in seen} == {0}
    expected = expected_lrs(lr_type, base_lr, steps, from_epoch * per_epoch,
                            to_epoch * per_epoch, count)
    assert [s['lr'] for s in seen] == expected
    # only the epochs up to --stop-epoch are written
    written = sorted(p.name for p in tmp_path.glob('*.params'))
    assert written == ['%s_ep-%04d.params' % (MODEL, e) for e in range(from_epoch + 1,
                                                                      stop_epoch + 1)]


@pytest.mark.slow
def test_fit_lr_on_two_devices(weights, tmp_path):
    """With a local kvstore over two devices the optimizer runs in the kvstore: same lrs."""
    schedule = make_lr_scheduler('multistep', 0.01, '1,3', 0, 6)
    data, label = _data(4)
    _, seen = _fit(weights, tmp_path, schedule, data, label, 0, 2, [mx.cpu(0), mx.cpu(1)])
    assert [s['num_update'] for s in seen] == [1, 2, 3, 4]
    assert [s['lr'] for s in seen] == multistep_lrs(0.01, '1,3', 0, 4)


# ----------------------------------------------------------------------------------------------
# The NLL: per device slice, cumulative over the epoch, logged at batches 0, 10, 20, ...

def _random_case(rng, batch, classes=19, hw=(8, 8), empty=False):
    pred = rng.dirichlet(np.ones(classes), size=(batch,) + hw).transpose(0, 3, 1, 2)
    pred = pred.astype(np.float32)
    pred[0, :, 0, 0] = 0  # a true-class probability of exactly 0
    pred[0, :, 0, 1] = 1e-40  # a denormal float32
    label = rng.randint(0, classes, (batch,) + hw).astype(np.float32)
    label[:, 1] = 255
    if empty:
        label[:] = 255
    return label, pred


@pytest.mark.parametrize('empty', [False, True])
def test_nll_sum_equals_upstream_metrics(empty):
    rng = np.random.RandomState(1)
    for _ in range(3):
        label, pred = _random_case(rng, 2, empty=empty)
        st = training.nll_sum(label, pred, training.NLL_EPS_SELF_TRAINING)
        src = training.nll_sum(label, pred, training.NLL_EPS_SOURCE)
        assert st == tuple(float(v) for v in upstream_st_loss(label, pred))
        assert src == tuple(float(v) for v in upstream_src_loss(label, pred))
        assert (st[1] == 1) == empty


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize('eps,restated', [(training.NLL_EPS_SELF_TRAINING, upstream_st_loss),
                                          (training.NLL_EPS_SOURCE, upstream_src_loss)])
@pytest.mark.slow
def test_logged_nll_is_cumulative_over_the_epoch(weights, tmp_path, eps, restated):
    logger = logging.getLogger('cbst')
    handler = ListHandler()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        data, label = _data(24, seed=2, empty=(2, 7))  # batches 1 and 3 have an empty slice
        history, seen = _fit(weights, tmp_path, 1e-3, data, label, 0, 1,
                             [mx.cpu(0), mx.cpu(1)], nll_eps=eps)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    # CustomMetric: each device's (sum, count) added since the epoch started
    total, count, expected = 0.0, 0, {}
    for s in seen:
        for device, output in enumerate(s['outputs']):
            image = 2 * s['nbatch'] + device
            part_sum, part_count = restated(label[image:image + 1], output)
            total += float(part_sum)  # a Python float, as the metric sums (NumPy 2: else float32)
            count += part_count
        if s['nbatch'] % 10 == 0:
            expected[s['nbatch']] = '%f' % (total / count)
    logged = {int(m.split('Batch[')[1].split(']')[0]): m.split('Train-loss=')[1].split()[0]
              for m in handler.messages if 'Train-loss=' in m}
    assert sorted(logged) == [0, 10] and logged == expected
    assert history[0]['nll'] == pytest.approx(total / count, rel=1e-12)
    assert history[0]['pixels'] == count
