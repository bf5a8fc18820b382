"""Phase val end to end (full s8 model, published-format weights) against the NumPy core."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from conftest import make_layout
from issegm import cbst
from issegm.datasets import get_dataset, read_label, read_list, write_list

ROUND_SCRIPT = 'issegm/self-paced-self-trained-segresnet.py'


def run(*args):
    return subprocess.run([sys.executable] + [str(a) for a in args], capture_output=True,
                          text=True)


@pytest.fixture(scope='module')
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp('cityscapes')
    pairs = make_layout(str(root), 'cityscapes', 3, hw=(48, 96), split='val', seed=1)
    lst = root / 'val.lst'
    write_list(str(lst), pairs)
    return str(root), str(lst)


def val_args(target, weights, output, *extra):
    root, lst = target
    return [ROUND_SCRIPT, '--phase', 'val', '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
            '--data-root-tgt', root, '--split-tgt', lst, '--output', output,
            '--model', 'cityscapes_rna-a1_cls19_s8', '--weights', weights, '--gpus', 'cpu',
            '--test-scales', '64', '--test-flipping', '--no-progress'] + list(extra)


@pytest.mark.slow
@pytest.mark.parametrize('policy', ['cb', 'global'])
def test_phase_val_pseudo_labels_equal_core_on_kept_maps(target, gta_s8_weights, tmp_path, policy):
    out = tmp_path / 'run'
    res = run(*val_args(target, gta_s8_weights, out, '--kc-policy', policy,
                        '--init-tgt-port', '0.3', '--keep-probmaps'))
    assert res.returncode == 0, res.stderr[-2000:]
    info = get_dataset('cityscapes')
    names = [os.path.splitext(os.path.basename(img))[0] for img, _ in read_list(target[1])]
    maps = [np.load(out / 'probmap' / (n + '.npy')) for n in names]
    assert maps[0].shape == (19, 48, 96) and maps[0].dtype == np.float32
    pool = cbst.ConfidencePool(19, policy)
    for m in maps:
        pool.add(m)
    thresh, size = pool.thresholds(0.3)
    np.testing.assert_array_equal(np.load(out / 'stats' / 'cls_thresh.npy'), thresh)
    np.testing.assert_array_equal(np.load(out / 'stats' / 'cls_size.npy'), size)
    mine_id, priority = cbst.mining_classes(size, 3, 0.001)
    np.testing.assert_array_equal(np.load(out / 'stats' / 'mine_id.npy'), mine_id)
    np.testing.assert_array_equal(np.load(out / 'stats' / 'mine_id_priority.npy'), priority)
    for name, m in zip(names, maps):
        saved = read_label(str(out / '0' / 'self_train' / 'pseudo_labelIds' / (name + '.png')))
        np.testing.assert_array_equal(
            saved, info.train_to_label[cbst.pseudo_label_maps(m, thresh)[0]])
        argmax = read_label(str(out / '0' / 'results' / 'nplabelIds' / (name + '.png')))
        np.testing.assert_array_equal(argmax, info.train_to_label[m.argmax(0)])
        rw = out / '0' / 'self_train' / 'rwlabelIds' / (name + '.png')
        assert rw.exists() == (policy == 'cb')
    metrics = json.loads((out / '0' / 'metrics.json').read_text())
    assert 0 <= metrics['miou'] <= 1 and set(metrics['iou']) == set(info.class_names)
    assert abs(sum(metrics['selected_share'].values()) - metrics['selected_total']) < 1e-9
    # The training list lives under OUTPUT and points at this round's pseudo-labels.
    rows = read_list(str(out / '0' / 'self_train' / 'val_training.lst'))
    assert [os.path.basename(label) for _, label in rows] == [n + '.png' for n in names]
    assert all(os.path.isfile(label) for _, label in rows)
    # Nothing of the two-pass cache is left behind.
    assert not list(out.rglob('cache')) and not (tmp_path / 'run' / '0.val-partial').exists()
    assert (out / '0' / 'val.done').exists()


@pytest.mark.slow
def test_phase_val_with_prior(target, gta_s8_weights, tmp_path):
    prior = np.random.RandomState(0).rand(19, 48, 96).astype(np.float32)
    prior /= prior.sum(0, keepdims=True)
    scipy.io.savemat(str(tmp_path / 'prior_array.mat'), {'prior_array': prior})
    out = tmp_path / 'run'
    res = run(*val_args(target, gta_s8_weights, out, '--with-prior', 'True', '--prior',
                        tmp_path / 'prior_array.mat', '--keep-probmaps'))
    assert res.returncode == 0, res.stderr[-2000:]
    name = os.path.splitext(os.path.basename(read_list(target[1])[0][0]))[0]
    kept = np.load(out / 'probmap' / (name + '.npy'))
    sp = read_label(str(out / '0' / 'self_train' / 'splabelIds' / (name + '.png')))
    np.testing.assert_array_equal(sp, get_dataset('cityscapes').train_to_label[kept.argmax(0)])
    # A prior of another size is one clear error, and no round output is left half-written.
    scipy.io.savemat(str(tmp_path / 'small.mat'), {'prior_array': prior[:, :24]})
    out2 = tmp_path / 'run2'
    res = run(*val_args(target, gta_s8_weights, out2, '--with-prior', 'True', '--prior',
                        tmp_path / 'small.mat'))
    assert res.returncode != 0 and 'Traceback' not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith('error:') and 'prior' in res.stderr
    assert not (out2 / '0').exists()


@pytest.mark.slow
def test_phase_val_test_steps(target, tmp_path):
    """--test-steps 2: the kept maps are those of a Predictor with 2 steps, and the thresholds
    and pseudo-labels follow from them."""
    import mxnet as mx
    from conftest import write_model_weights
    from issegm.datasets import read_image
    from issegm.testtime.one_image import Predictor
    from util.weights import load_weights
    model = 'cityscapes_rna-tiny_cls19_s8'
    weights = write_model_weights(tmp_path / ('%s_ep-0000.params' % model), model, seed=4)
    out = tmp_path / 'run'
    args = val_args(target, weights, out, '--test-steps', '2', '--keep-probmaps')
    args[args.index('--model') + 1] = model
    res = run(*args)
    assert res.returncode == 0, res.stderr[-2000:]
    arg, aux = load_weights(weights)
    predictor = Predictor(model, arg, aux, mx.cpu(), 8, test_steps=2)
    root, lst = target
    pool = cbst.ConfidencePool(19, 'cb')
    maps = []
    for image, _ in read_list(lst):
        name = os.path.splitext(os.path.basename(image))[0]
        want = predictor.predict(read_image(os.path.join(root, image)), [64], True)
        kept = np.load(out / 'probmap' / (name + '.npy'))
        np.testing.assert_array_equal(kept, want)
        pool.add(want)
        maps.append((name, want))
    thresh, _ = pool.thresholds(0.3)
    np.testing.assert_array_equal(np.load(out / 'stats' / 'cls_thresh.npy'), thresh)
    info = get_dataset('cityscapes')
    for name, m in maps:
        saved = read_label(str(out / '0' / 'self_train' / 'pseudo_labelIds' / (name + '.png')))
        np.testing.assert_array_equal(
            saved, info.train_to_label[cbst.pseudo_label_maps(m, thresh)[0]])


@pytest.mark.parametrize('extra,message', [
    (['--kc-policy', 'bogus'], "unknown --kc-policy 'bogus'"),
    (['--model', 'cityscapes_rna-a1_cls16_s8'], 'does not fit'),
    (['--test-scales', '64,96'], 'one test scale'),
    (['--test-steps', '3'], "bad --test-steps 3: it must divide the model's stride 8"),
    (['--test-steps', '0'], 'bad --test-steps 0'),
])
@pytest.mark.slow
def test_phase_val_bad_input(target, gta_s8_weights, tmp_path, extra, message):
    args = val_args(target, gta_s8_weights, tmp_path / 'run')
    if extra[0] == '--model':
        args[args.index('--model') + 1] = extra[1]
        args[args.index('--dataset-tgt') + 1] = 'cityscapes16'
        extra = []
    res = run(*(args + extra))
    assert res.returncode != 0
    assert message in res.stderr and 'Traceback' not in res.stderr


@pytest.mark.slow
def test_phase_train_needs_pseudo_labels_and_mining_stats(target, gta_s8_weights, tmp_path):
    args = val_args(target, gta_s8_weights, tmp_path / 'run')
    args[args.index('val')] = 'train'
    res = run(*(args + ['--mine-port', '0.5']))
    assert res.returncode != 0 and 'run phase val of round 0 first' in res.stderr
    assert 'Traceback' not in res.stderr
    # With the pseudo-label list in place, mining needs the statistics of phase val.
    root, lst = target
    write_list(str(tmp_path / 'run' / '0' / 'self_train' / 'val_training.lst'), read_list(lst))
    res = run(*(args + ['--mine-port', '0.5']))
    assert res.returncode != 0 and '--mine-id-address is required' in res.stderr
    res = run(*(args + ['--mine-port', '0.5', '--mine-id-address', tmp_path / 'nostats']))
    assert res.returncode != 0 and 'mining statistics not found' in res.stderr
    assert 'Traceback' not in res.stderr


def test_phase_train_schedule_and_epochs_as_upstream(tmp_path, monkeypatch, capsys):
    """Phase train hands fit the epochs from-epoch .. stop-epoch, a schedule over to-epoch with
    batches per epoch = lines of the SOURCE list // batch-images (not the samples trained on),
    the self-training NLL epsilon and mirror=False without --backward-do-mirror."""
    from conftest import write_model_weights
    from issegm import training
    from issegm.rounds import phase_train, phase as self_training
    from test_training_schedule import upstream_lrs
    gta, cs, out = tmp_path / 'gta', tmp_path / 'cs', tmp_path / 'out'
    write_list(str(gta / 'train.lst'), make_layout(str(gta), 'gta', 9, hw=(32, 64)))
    with open(gta / 'train.lst', 'a') as f:
        f.write('\n')  # a blank last line: upstream's readlines() counts it
    cs_pairs = make_layout(str(cs), 'cityscapes', 3, hw=(32, 64), split='val', seed=2)
    write_list(str(cs / 'val.lst'), cs_pairs)
    write_list(str(out / '0' / 'self_train' / 'val_training.lst'), cs_pairs)
    weights = write_model_weights(tmp_path / 'gta_rna-tiny_cls19_s8_ep-0000.params',
                                  'gta_rna-tiny_cls19_s8')
    calls = []

    def fake_fit(symbol, train_iter, contexts, params, settings, kvstore=None):
        calls.append((len(train_iter.samples), train_iter.batches_per_epoch,
                      settings.begin_epoch, settings.end_epoch, settings.lr, settings.nll_eps,
                      settings.mirror))
        return []
    monkeypatch.setattr(phase_train, 'fit', fake_fit)
    argv = ['--phase', 'train', '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
            '--split', str(gta / 'train.lst'), '--split-tgt', str(cs / 'val.lst'),
            '--data-root', str(gta), '--data-root-tgt', str(cs), '--output', str(out),
            '--model', 'cityscapes_rna-tiny_cls19_s8', '--weights', weights, '--gpus', 'cpu',
            '--batch-images', '2', '--crop-size', '64', '--init-src-port', '0.5',
            '--mine-port', '0', '--prefetch-threads', '0', '--no-progress',
            '--lr-type', 'linear', '--base-lr', '0.01', '--from-epoch', '2', '--stop-epoch', '3',
            '--to-epoch', '5']
    assert self_training.main(argv) == 0
    (samples, iter_batches, begin, end, schedule, eps, mirror), = calls
    assert (samples, iter_batches) == (4 + 3, 3)  # int(9 * 0.5) source + 3 target
    assert (begin, end) == (2, 3) and eps == training.NLL_EPS_SELF_TRAINING and not mirror
    per_epoch = 10 // 2  # the list file's 10 lines
    assert [schedule(n) for n in range(1, 40)] == upstream_lrs(
        'linear', 0.01, '', 2 * per_epoch, 5 * per_epoch, 39)
    with pytest.raises(SystemExit):
        self_training.main(argv[:-4] + ['--stop-epoch', '6', '--to-epoch', '5'])
    assert '--stop-epoch 6 is beyond --to-epoch 5' in capsys.readouterr().err


def _outputs(folder):
    """{relative path: bytes} of a phase val output, metrics.json without its timing."""
    files = {}
    for dirpath, _, names in os.walk(str(folder)):
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, str(folder))
            if name.endswith('.log') or name in ('val.done', '.lock'):
                continue
            with open(path, 'rb') as f:
                files[rel] = f.read()
            if name == 'metrics.json':
                report = json.loads(files[rel])
                assert report.pop('timing')['network_s_per_image'] > 0
                files[rel] = json.dumps(report)
    return files


@pytest.mark.slow
def test_phase_val_on_two_devices_equals_one(target, tmp_path, monkeypatch):
    """--gpus cpu:2: the network pass sends image i to device i mod 2 (one thread each) and
    every output is byte-identical to --gpus cpu's; the first log line names both devices."""
    import shutil
    import threading
    from conftest import write_model_weights
    from issegm.rounds import phase as self_training
    from issegm.testtime.one_image import Predictor
    model = 'cityscapes_rna-tiny_cls19_s8'
    weights = write_model_weights(tmp_path / ('%s_ep-0000.params' % model), model, seed=5)
    prior = np.random.RandomState(1).rand(19, 48, 96).astype(np.float32)
    scipy.io.savemat(str(tmp_path / 'prior.mat'), {'prior_array': prior})
    calls = []
    network_probs = Predictor.network_probs

    def recording(self, image, *args):
        calls.append((str(self.ctx), threading.current_thread().name, image.tobytes()))
        return network_probs(self, image, *args)
    monkeypatch.setattr(Predictor, 'network_probs', recording)
    out = tmp_path / 'run'
    argv = val_args(target, weights, out, '--with-prior', 'True', '--prior',
                    tmp_path / 'prior.mat', '--keep-probmaps', '--kc-policy', 'cb')[1:]
    argv[argv.index('--model') + 1] = model
    argv = [str(a) for a in argv]
    outputs = {}
    for gpus in ('cpu', 'cpu:2'):
        shutil.rmtree(str(out), ignore_errors=True)
        assert self_training.main(argv + ['--gpus', gpus]) == 0
        outputs[gpus] = _outputs(out)
        with open(str(out / 'round0-val.log')) as f:
            first_line = f.readline().rstrip()
    assert [ctx for ctx, _, _ in calls] == ['cpu(0)'] * 3 + ['cpu(0)', 'cpu(1)', 'cpu(0)']
    assert [image for _, _, image in calls[:3]] == [image for _, _, image in calls[3:]]
    two = calls[3:]
    threads = {ctx: {t for c, t, _ in two if c == ctx} for ctx in ('cpu(0)', 'cpu(1)')}
    assert all(len(t) == 1 for t in threads.values()) and threads['cpu(0)'] != threads['cpu(1)']
    assert first_line.endswith('devices cpu(0), cpu(1)'), first_line
    assert any(k.startswith(os.path.join('0', 'self_train', 'splabelIds')) for k in outputs['cpu'])
    # per image 8 PNGs, a map, a debug grid and its pseudo-labels on the grid; stats; report,
    # list, pseudo_quality.md
    assert len(outputs['cpu']) == 3 * 11 + 4 + 3
    assert outputs['cpu:2'] == outputs['cpu']


def test_staged_output_moves_parts_in_place_only_on_success(tmp_path):
    from issegm.rounds.phase_val import staged_output
    final, stats = tmp_path / 'out' / '0', tmp_path / 'out' / 'stats'
    (final / 'results').mkdir(parents=True)
    (final / 'results' / 'old.png').write_text('earlier round')
    (final / 'keep.txt').write_text('not a part')
    stats.mkdir()
    (stats / 'old.npy').write_text('earlier')
    stale = tmp_path / 'out' / '0.val-partial'
    stale.mkdir()
    (stale / 'junk').write_text('a killed run')
    parts = {'results': str(final / 'results'), 'metrics.json': str(final / 'metrics.json'),
             'stats': str(stats)}
    with pytest.raises(RuntimeError):
        with staged_output(str(final), parts) as stage:
            assert os.listdir(stage) == []  # a fresh stage
            os.makedirs(os.path.join(stage, 'results'))
            raise RuntimeError('killed half-way')
    assert (final / 'results' / 'old.png').exists() and (stats / 'old.npy').exists()
    assert not stale.exists()  # the failed stage is removed (space freed), the round as it was
    with staged_output(str(final), parts) as stage:
        os.makedirs(os.path.join(stage, 'results'))
        open(os.path.join(stage, 'results', 'new.png'), 'w').close()
        open(os.path.join(stage, 'metrics.json'), 'w').close()
        os.makedirs(os.path.join(stage, 'stats'))
    assert os.listdir(str(final / 'results')) == ['new.png']
    assert (final / 'metrics.json').exists() and os.listdir(str(stats)) == []
    assert (final / 'keep.txt').exists() and not stale.exists()
    # a folder as `parts` receives every entry of the stage (util.files.staged_output)
    from util.files import staged_output as stage_into
    with stage_into(str(tmp_path / 'stage'), str(final)) as stage:
        open(os.path.join(stage, 'metrics.json'), 'w').write('new')
        os.makedirs(os.path.join(stage, 'results'))
    assert (final / 'metrics.json').read_text() == 'new'
    assert os.listdir(str(final / 'results')) == []
    assert (final / 'keep.txt').exists() and not (tmp_path / 'stage').exists()
