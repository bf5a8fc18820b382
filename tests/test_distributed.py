"""Data-parallel training: several workers through issegm.launch (dist_sync), a failing worker,
several CPU contexts in one process, and the orchestrator's train phase on two workers."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import (ROUND_CRST, ROUND_CRST_IDS, check_two_worker_round, copy_with_broken_images,
                      procs_mentioning, run_timed, two_worker_round, write_model_weights)

pytestmark = pytest.mark.slow  # subprocesses, Horovod or long runs: not in `make test-quick`

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = [sys.executable, '-m', 'issegm.launch']
MODEL = 'gta_rna-tiny_cls19_s8'
LAUNCH_TIMEOUT = 120

# A worker that trains with the library's fit() and dumps what the test compares: its final
# weights, the sample indices of its shard, the history and which ranks saved checkpoints.
WORKER = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, %(repo)r)
    out, root, lst, weights = sys.argv[1:5]
    import util  # first: util/__init__ prepares NumPy for MXNet (util/numpy_compat.py)
    import mxnet as mx  # servers and the scheduler run their loop here and exit
    from issegm import training
    from issegm.data_iter import LoaderSettings, SegTrainIter, source_only_samples
    from issegm.datasets import get_dataset, load_samples
    from issegm.sampling import CropSettings
    from util.symbol.resnet38 import build_symbol
    from util.weights import load_weights

    kv = training.create_kvstore('dist_sync', 1)
    saves = []
    real_save = training.save_weights

    def recording_save(path, arg, aux):
        saves.append(path)
        real_save(path, arg, aux)
    training.save_weights = recording_save

    info = get_dataset('gta')
    samples = source_only_samples(load_samples(root, lst, 'gta'), info, 96)
    it = SegTrainIter(samples, 2, CropSettings(64), seed=3, loading=LoaderSettings(0),
                      num_parts=kv.num_workers, part_index=kv.rank)
    # different dropout masks and a different random head on purpose: the head is
    # initialised on every worker, the kvstore must hand out rank 0's
    mx.random.seed(100 + kv.rank)
    arg, aux = load_weights(weights)
    del arg['linear19_weight'], arg['linear19_bias']
    final = {}
    settings = training.FitSettings(0, 1, os.path.join(out, %(model)r + '_ep'), 0.01,
                                    allow_missing=True, progress=False,
                                    epoch_end_callback=lambda e, s, a, x: final.update(a))
    history = training.fit(build_symbol(%(model)r), it, [mx.cpu()], (arg, aux), settings, kv)
    mx.nd.save(os.path.join(out, 'final.rank%%d.params' %% kv.rank), final)
    with open(os.path.join(out, 'worker.rank%%d.json' %% kv.rank), 'w') as f:
        json.dump({'indices': [int(i) for i in it.epoch_indices], 'history': history,
                   'saves': saves, 'num_workers': kv.num_workers}, f)
    it.close()
''') % {'repo': REPO, 'model': MODEL}



@pytest.mark.parametrize('update_on_kvstore', ['1', '0'])
def test_two_workers_dist_sync_end_identical(gta8, tmp_path, update_on_kvstore):
    """MXNET_UPDATE_ON_KVSTORE=1 (MXNet's default): the servers run SGD; 0: they sum the
    gradients and each worker runs SGD itself."""
    root, lst, weights = gta8
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    out = tmp_path / 'out'
    out.mkdir()
    res = subprocess.run(LAUNCH + ['-n', '2', '-s', '2', '--timeout', str(LAUNCH_TIMEOUT),
                                   '--env', 'MXNET_UPDATE_ON_KVSTORE=' + update_on_kvstore, '--',
                                   sys.executable, str(script), str(out), root, lst, weights],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=LAUNCH_TIMEOUT + 30)
    assert res.returncode == 0, res.stdout[-4000:]
    reports = [json.loads((out / ('worker.rank%d.json' % r)).read_text()) for r in (0, 1)]
    assert [r['num_workers'] for r in reports] == [2, 2]

    # identical weights at the end, and training did change them
    import mxnet as mx
    finals = [mx.nd.load(str(out / ('final.rank%d.params' % r))) for r in (0, 1)]
    start = {k.split(':', 1)[1]: v for k, v in mx.nd.load(weights).items()
             if k.startswith('arg:')}
    assert set(finals[0]) == set(finals[1]) == set(start)
    for name in finals[0]:
        np.testing.assert_allclose(finals[0][name].asnumpy(), finals[1][name].asnumpy(),
                                   rtol=0, atol=1e-6, err_msg=name)
    assert not np.allclose(finals[0]['conv6a_weight'].asnumpy(),
                           start['conv6a_weight'].asnumpy())
    # ... and the checkpoint rank 0 wrote holds them
    ckpt = mx.nd.load(str(out / ('%s_ep-0001.params' % MODEL)))
    np.testing.assert_array_equal(ckpt['arg:linear19_weight'].asnumpy(),
                                  finals[0]['linear19_weight'].asnumpy())

    # only rank 0 wrote the checkpoint; the metric exchange left no files behind
    assert reports[0]['saves'] == [str(out / ('%s_ep-0001.params' % MODEL))]
    assert reports[1]['saves'] == []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ['%s_ep-0001.params' % MODEL, '%s_ep-symbol.json' % MODEL, 'final.rank0.params',
         'final.rank1.params', 'worker.rank0.json', 'worker.rank1.json'])

    # the shards were disjoint and each worker read len(samples) // 2 // batch = 2 batches
    shards = [set(r['indices']) for r in reports]
    assert len(reports[0]['indices']) == len(reports[1]['indices']) == 4
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(8))

    # the epoch NLL is reduced over the workers: both know the global mean over all pixels
    h = [r['history'][0] for r in reports]
    pooled = (sum(x['worker_nll'] * x['worker_pixels'] for x in h)
              / sum(x['worker_pixels'] for x in h))
    for x in h:
        assert x['workers'] == 2 and x['batches'] == 2
        assert x['pixels'] == h[0]['worker_pixels'] + h[1]['worker_pixels']
        assert x['nll'] == pytest.approx(pooled, rel=1e-9)
    assert h[0]['worker_nll'] != h[1]['worker_nll']


def test_failing_worker_stops_the_launch(gta8, tmp_path):
    """Worker task 1 reads undecodable images: its UserError (raised after the dist kvstore
    exists, while training) ends the whole job quickly with its status."""
    root, lst, weights = gta8
    bad = tmp_path / 'bad_root'
    copy_with_broken_images(root, lst, bad)
    out = tmp_path / 'out'
    train_src = [sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'), '--gpus', 'cpu',
                 '--split', lst, '--output', str(out), '--model', MODEL, '--weights', weights,
                 '--batch-images', '2', '--crop-size', '64', '--to-epoch', '1',
                 '--skip-data-check',  # fail while training, after the kvstore exists
                 '--kvstore', 'dist_sync', '--prefetch-threads', '1', '--no-progress']
    script = ('root=%s; if [ "$DMLC_ROLE" = worker ] && [ "$DMLC_TASK_ID" = 1 ]; then root=%s; '
              'fi; exec %s --data-root "$root"' % (root, bad, ' '.join(train_src)))
    returncode, lines, ended = run_timed(
        LAUNCH + ['-n', '2', '--timeout', str(LAUNCH_TIMEOUT), '--', 'sh', '-c', script],
        LAUNCH_TIMEOUT + 30, cwd=REPO)
    stdout = lines.text()
    assert returncode == 1, stdout[-4000:]
    # timed from the worker's error line, not from the start (slow on a busy machine)
    went_on = ended - lines.first('error: cannot decode image')
    assert went_on < 60, 'the job went on %.0f s after worker 1 failed' % went_on
    assert '[launch] worker 1 exited with status 1' in stdout
    assert 'Traceback' not in stdout
    assert not (out / ('%s_ep-0001.params' % MODEL)).exists()
    deadline = time.time() + 60
    while procs_mentioning(str(out)) and time.time() < deadline:
        time.sleep(0.2)
    assert procs_mentioning(str(out)) == []
    assert procs_mentioning(str(bad)) == []


def crst_labels(label, settings):
    """The label inputs of a batch of hard labels for CRST `settings` (None: CBST's alone):
    soft labels as a mix of the one-hot label and a random distribution, and the images 0 and
    2 as target images (the regulariser mask), so that both halves of the batch hold as many
    regularised pixels."""
    from issegm.crst.settings import label_names
    rng = np.random.RandomState(1)
    one_hot = (label[:, None] == np.arange(19)[None, :, None, None]).astype(np.float32)
    noise = rng.dirichlet(np.ones(19), label.shape).transpose(0, 3, 1, 2).astype(np.float32)
    values = {'softmax_label': label, 'crst_soft_label': 0.7 * one_hot + 0.3 * noise,
              'crst_reg_mask': np.array([1, 0, 1, 0], np.float32)[:, None, None]
              * np.ones_like(label)}
    return {name: values[name] for name in label_names(settings)}


@pytest.mark.parametrize('settings', [None, (0.25, 'kld', 0.01), (0.0, 'ent', 0.5)],
                         ids=['cbst', 'lrent+mrkld', 'mrent'])
def test_two_cpu_contexts_equal_one_context_with_twice_the_batch(monkeypatch, tmp_path,
                                                                 settings):
    """--gpus cpu:2 (local kvstore, rescale_grad 1/2) makes the same SGD step as one context
    with the whole batch: every device holds the same number of valid pixels (no ignore label)
    and of regularised ones (CRST head), and dropout is off so that both forwards are
    deterministic."""
    import mxnet as mx
    from issegm.training import FitSettings, create_kvstore, fit
    from issegm.crst.loss import training_symbol
    from issegm.crst.settings import CrstSettings
    from util.symbol import resnet38
    from util.devices import parse_devices
    from util.weights import load_weights
    monkeypatch.setattr(resnet38, 'DROPOUT', {6: 0.0, 7: 0.0})
    settings = CrstSettings(*settings) if settings else None
    symbol = training_symbol(MODEL, settings)
    assert not [n for n in symbol.get_internals().list_outputs() if 'dropout' in n]
    assert ('crst_prob_output' in symbol.list_outputs()) == (settings is not None)

    rng = np.random.RandomState(0)
    data = rng.randn(4, 3, 64, 64).astype(np.float32)
    label = rng.randint(0, 19, (4, 8, 8)).astype(np.float32)

    class OneBatch(mx.io.NDArrayIter):
        batches_per_epoch = 1

    weights = write_model_weights(tmp_path / ('%s_ep-0000.params' % MODEL), MODEL, seed=3)
    results = {}
    for spec in ('cpu:2', 'cpu'):
        contexts = parse_devices(spec)
        kv = create_kvstore('local', len(contexts))
        assert (kv is None) == (spec == 'cpu')
        arg, aux = load_weights(weights)
        it = OneBatch(data, crst_labels(label, settings), batch_size=4)
        prefix = str(tmp_path / spec.replace(':', '') / (MODEL + '_ep'))
        history = fit(symbol, it, contexts, (arg, aux),
                      FitSettings(0, 1, prefix, 0.05, progress=False), kv)
        assert history[0]['batches'] == 1 and history[0]['pixels'] == 4 * 64
        results[spec] = (load_weights(prefix + '-0001.params')[0], history[0]['nll'])
    start, _ = load_weights(weights)
    (two, nll_two), (one, nll_one) = results['cpu:2'], results['cpu']
    assert nll_two == pytest.approx(nll_one, rel=1e-5)
    moved = 0
    for name in start:
        s = start[name].asnumpy()
        d_two, d_one = two[name].asnumpy() - s, one[name].asnumpy() - s
        scale = max(np.abs(d_one).max(), 1e-12)
        np.testing.assert_allclose(d_two, d_one, rtol=0, atol=1e-3 * scale + 1e-7, err_msg=name)
        moved += np.abs(d_one).max() > 1e-6
    assert moved > len(start) // 2  # the step did change most parameters


@pytest.mark.parametrize('crst', ROUND_CRST, ids=ROUND_CRST_IDS)
def test_orchestrator_train_phase_on_two_workers(tmp_path, crst):
    """One round whose phase train runs through issegm.launch on two local workers."""
    res, out = two_worker_round(tmp_path, 'script-self-paced-self-trained-segresnet.py', crst,
                                timeout=300)
    check_two_worker_round(res, out, crst)
    assert 'issegm/launch.py -n 2 --launcher local --' in res.stdout
    assert '--kvstore dist_sync' in res.stdout
    assert '[worker 0]' in res.stdout and '[worker 1]' in res.stdout
    assert not [p for p in (out / '0').iterdir() if p.name.startswith('.')]


def test_lr_schedules_unpickle_without_mxnet():
    """A dist kvstore pickles the optimizer (scheduler included) to the servers, which unpickle
    it while `import mxnet` is still running: the schedules must load without MXNet."""
    import pickle
    from util.lr_scheduler import make_lr_scheduler
    schedules = [make_lr_scheduler(t, 0.1, '10,20', 10, 30)
                 for t in ('fixed', 'step', 'multistep', 'linear', 'poly')]
    blobs = [pickle.dumps(s, 0) for s in schedules]
    code = ('import pickle, sys; sys.path.insert(0, %r)\n'
            'for blob in %r:\n'
            '    s = pickle.loads(blob); print(repr(s(15)))\n'
            'assert "mxnet" not in sys.modules' % (REPO, blobs))
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert [float(v) for v in res.stdout.split()] == [s(15) for s in schedules]


def test_dist_kvstore_outside_a_launch_is_a_user_error(monkeypatch):
    from issegm.training import create_kvstore
    from util.errors import UserError
    for var in ('DMLC_ROLE', 'DMLC_NUM_WORKER'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UserError, match='python -m issegm.launch'):
        create_kvstore('dist_sync', 1)
