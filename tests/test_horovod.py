"""--kvstore horovod: ranks launched by horovodrun (Gloo), gradients all-reduced by Horovod's
DistributedOptimizer. Needs Horovod built against MXNet (`make install HOROVOD=1`, which
`make test` runs)."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import (ROUND_CRST, ROUND_CRST_IDS, check_two_worker_round, copy_with_broken_images,
                      procs_mentioning, two_worker_round, write_model_weights)

pytestmark = pytest.mark.slow  # subprocesses, Horovod or long runs: not in `make test-quick`

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# issegm/horovodrun.py: horovodrun with the NumPy names MXNet reads restored (Python 3.12, 3.13)
HOROVODRUN = [sys.executable, os.path.join(REPO, 'issegm', 'horovodrun.py')]
MODEL = 'gta_rna-tiny_cls19_s8'
TIMEOUT = 240

# Two images of one fixed batch of four per rank (rank r: images 2r, 2r + 1), dropout off,
# one SGD step through fit(). Rank 1 starts from disturbed weights: rank 0's must win.
WORKER = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, %(repo)r)
    import util  # first: util/__init__ prepares NumPy for MXNet (util/numpy_compat.py)
    import mxnet as mx
    import numpy as np
    from issegm.training import FitSettings, fit, start_worker
    from util.devices import parse_devices
    from util.symbol import resnet38
    from util.weights import load_weights

    out, weights = sys.argv[1:3]
    resnet38.DROPOUT = {6: 0.0, 7: 0.0}
    kv, contexts, worker = start_worker('horovod', parse_devices('cpu'))
    rng = np.random.RandomState(0)
    data = rng.randn(4, 3, 64, 64).astype(np.float32)
    label = rng.randint(0, 19, (4, 8, 8)).astype(np.float32)
    mine = slice(2 * worker.rank, 2 * worker.rank + 2)

    class OneBatch(mx.io.NDArrayIter):
        batches_per_epoch = 1

    it = OneBatch(data[mine], label[mine], batch_size=2, label_name='softmax_label')
    arg, aux = load_weights(weights)
    if worker.rank == 1:
        arg = {k: v + 0.01 for k, v in arg.items()}
    final = {}
    settings = FitSettings(0, 1, os.path.join(out, %(model)r + '_ep'), 0.05, progress=False,
                           epoch_end_callback=lambda e, s, a, x: final.update(a))
    history = fit(resnet38.build_symbol(%(model)r), it, contexts, (arg, aux), settings, kv)
    mx.nd.save(os.path.join(out, 'final.rank%%d.params' %% worker.rank), final)
    with open(os.path.join(out, 'worker.rank%%d.json' %% worker.rank), 'w') as f:
        json.dump({'history': history, 'worker': list(worker), 'contexts': str(contexts)}, f)
''') % {'repo': REPO, 'model': MODEL}


def horovodrun(ranks, command, **kwargs):
    return subprocess.run(HOROVODRUN + ['-np', str(ranks), '-H', 'localhost:%d' % ranks]
                          + command, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, **kwargs)


def one_process_step(monkeypatch, weights, prefix):
    """The reference: one process, one device, the whole batch of four, rank 0's head."""
    import mxnet as mx
    from issegm.training import FitSettings, fit
    from util.symbol import resnet38
    from util.weights import load_weights
    monkeypatch.setattr(resnet38, 'DROPOUT', {6: 0.0, 7: 0.0})
    rng = np.random.RandomState(0)
    data = rng.randn(4, 3, 64, 64).astype(np.float32)
    label = rng.randint(0, 19, (4, 8, 8)).astype(np.float32)

    class OneBatch(mx.io.NDArrayIter):
        batches_per_epoch = 1

    arg, aux = load_weights(weights)
    history = fit(resnet38.build_symbol(MODEL), OneBatch(data, label, batch_size=4,
                                                          label_name='softmax_label'),
                  [mx.cpu()], (arg, aux), FitSettings(0, 1, prefix, 0.05, progress=False))
    return load_weights(prefix + '-0001.params')[0], history[0]


def test_two_ranks_equal_one_process_with_twice_the_batch(monkeypatch, tmp_path):
    """Rank 0's starting weights everywhere, the same weights on both ranks after the step,
    and that step is the one of a single process with both ranks' images (same rule as the
    --gpus cpu:2 test: every device holds the same number of valid pixels, dropout off)."""
    import mxnet as mx
    from util.weights import load_weights
    weights = write_model_weights(tmp_path / ('%s_ep-0000.params' % MODEL), MODEL, seed=3)
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    out = tmp_path / 'out'
    out.mkdir()
    res = horovodrun(2, [sys.executable, str(script), str(out), weights])
    assert res.returncode == 0, res.stdout[-4000:]
    reports = [json.loads((out / ('worker.rank%d.json' % r)).read_text()) for r in (0, 1)]
    assert [r['worker'] for r in reports] == [[True, 0, 2], [True, 1, 2]]
    finals = [mx.nd.load(str(out / ('final.rank%d.params' % r))) for r in (0, 1)]
    for name in finals[0]:
        np.testing.assert_array_equal(finals[0][name].asnumpy(), finals[1][name].asnumpy(),
                                      err_msg=name)
    # only rank 0 saved
    assert sorted(p.name for p in out.iterdir() if p.name.endswith('.params')) == sorted([
        '%s_ep-0001.params' % MODEL, 'final.rank0.params', 'final.rank1.params'])

    # that step is a single process's with all four images, from rank 0's (the file's) weights
    start, _ = load_weights(weights)
    ckpt = load_weights(str(out / ('%s_ep-0001.params' % MODEL)))[0]
    ref, ref_entry = one_process_step(monkeypatch, weights, str(tmp_path / 'one' / 'm_ep'))
    moved = 0
    for name in ref:
        s = start[name].asnumpy()
        d_hvd, d_ref = ckpt[name].asnumpy() - s, ref[name].asnumpy() - s
        scale = max(np.abs(d_ref).max(), 1e-12)
        np.testing.assert_allclose(d_hvd, d_ref, rtol=0, atol=1e-3 * scale + 1e-7, err_msg=name)
        moved += np.abs(d_ref).max() > 1e-6
    assert moved > len(ref) // 2
    # the epoch NLL is all-reduced: both ranks report the one process's value over all pixels
    for r in reports:
        entry = r['history'][0]
        assert entry['workers'] == 2 and entry['pixels'] == ref_entry['pixels'] == 4 * 64
        assert entry['nll'] == pytest.approx(ref_entry['nll'], rel=1e-5)
    assert reports[0]['history'][0]['worker_nll'] != reports[1]['history'][0]['worker_nll']


def test_failing_rank_stops_the_job(gta8, tmp_path):
    """Rank 1 reads undecodable images: its one-line error ends the whole job soon after it
    fails (not at the subprocess timeout), with a non-zero status, nothing is saved and no
    rank is left running.

    Timed from rank 1's error (the time its stderr file was last written), not from the start:
    on a busy machine two ranks take a minute or more to import MXNet and start, which says
    nothing about the stop. Each rank's stderr goes to a file of its own (the shell execs the
    script, so horovodrun still signals the Python process itself)."""
    root, lst, weights = gta8
    bad = tmp_path / 'bad_root'
    copy_with_broken_images(root, lst, bad)
    out = tmp_path / 'out'
    train_src = [sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'), '--gpus', 'cpu',
                 '--split', lst, '--output', str(out), '--model', MODEL, '--weights', weights,
                 '--batch-images', '2', '--crop-size', '64', '--to-epoch', '1',
                 '--skip-data-check',  # fail while training, after the kvstore exists
                 '--origin-size', '96', '--kvstore', 'horovod', '--prefetch-threads', '1',
                 '--no-progress']
    script = ('root=%s; if [ "$HOROVOD_RANK" = 1 ]; then root=%s; fi; exec %s --data-root '
              '"$root" 2> %s/stderr.rank$HOROVOD_RANK' % (root, bad, ' '.join(train_src),
                                                          tmp_path))
    res = horovodrun(2, ['sh', '-c', script])
    job_ended = time.time()
    errors = tmp_path / 'stderr.rank1'
    assert res.returncode != 0, res.stdout[-4000:]
    assert 'error: cannot decode image' in errors.read_text()
    went_on = job_ended - os.path.getmtime(errors)
    assert went_on < 60, 'the job went on %.0f s after rank 1 failed' % went_on
    assert not (out / ('%s_ep-0001.params' % MODEL)).exists()
    deadline = time.time() + 60
    while procs_mentioning(str(out)) and time.time() < deadline:
        time.sleep(0.2)
    assert procs_mentioning(str(out)) == []


def test_train_src_on_two_ranks(gta8, tmp_path):
    """train_src.py itself under horovodrun: disjoint shards of equal size, rank 0 saves, each
    rank logs to its own file."""
    root, lst, weights = gta8
    out = tmp_path / 'out'
    res = horovodrun(2, [sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'),
                         '--gpus', 'cpu', '--data-root', root, '--split', lst,
                         '--output', str(out), '--model', MODEL, '--weights', weights,
                         '--batch-images', '2', '--crop-size', '64', '--to-epoch', '1',
                         '--origin-size', '96', '--kvstore', 'horovod', '--no-progress'])
    assert res.returncode == 0, res.stdout[-4000:]
    assert (out / ('%s_ep-0001.params' % MODEL)).is_file()
    assert (out / 'train_src.log').is_file() and (out / 'train_src.rank1.log').is_file()
    # 8 samples, 2 ranks, 2 images per batch: 2 batches on each rank
    assert 'Epoch[0] done: 2 batches x 2 workers' in (out / 'train_src.log').read_text()


@pytest.mark.parametrize('crst', ROUND_CRST, ids=ROUND_CRST_IDS)
def test_orchestrator_round_on_two_horovod_ranks(tmp_path, crst):
    """One round whose phase train runs under horovodrun on two local ranks."""
    res, out = two_worker_round(tmp_path, 'solve_AO.py',
                                ['--launcher', 'horovod', '--prefetcher', 'thread'] + crst,
                                timeout=TIMEOUT)
    check_two_worker_round(res, out, crst)
    assert 'issegm/horovodrun.py -np 2 -H localhost:2 ' in res.stdout
    assert '--kvstore horovod' in res.stdout


def test_kvstore_horovod_without_horovod_is_one_error_line(gta8, tmp_path):
    """A Python where `import horovod.mxnet` fails: one error line saying how to install it."""
    root, lst, weights = gta8
    fake = tmp_path / 'fake' / 'horovod'
    fake.mkdir(parents=True)
    (fake / '__init__.py').write_text('raise ImportError("no horovod here")\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path / 'fake'))
    res = subprocess.run([sys.executable, os.path.join(REPO, 'issegm', 'train_src.py'),
                          '--gpus', 'cpu', '--data-root', root, '--split', lst,
                          '--output', str(tmp_path / 'out'), '--model', MODEL,
                          '--weights', weights, '--to-epoch', '1', '--kvstore', 'horovod'],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode != 0
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: ') and 'HOROVOD=1' in lines[0], \
        res.stderr
    assert not (tmp_path / 'out' / ('%s_ep-0001.params' % MODEL)).exists()
