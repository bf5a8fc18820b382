"""issegm/evaluate.py end to end on a few generated Cityscapes-layout images."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cityscapes_official import official_class_iou
from conftest import write_model_weights
from issegm import evaluate
from issegm.datasets import get_dataset, read_list, write_png
from issegm.testtime.image_list import PredictionOptions

pytestmark = pytest.mark.slow  # subprocesses, Horovod or long runs: not in `make test-quick`

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'issegm', 'evaluate.py')
INFO = get_dataset('cityscapes')
TINY = 'cityscapes_rna-tiny_cls19_s8'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from issegm.make_demo_data import generate
    root = tmp_path_factory.mktemp('evaluate_data')
    out = generate(str(root), seed=0, num_source=0, num_target_train=0, num_target_val=3,
                   target_size=(64, 128))
    return out['cityscapes_root'], out['cityscapes_val_list']


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp('evaluate_weights') / ('%s_ep-0002.params' % TINY)
    return write_model_weights(path, TINY, seed=3)


def _run(data, weights, output, *extra):
    root, lst = data
    argv = ['--data-root', root, '--split', lst, '--weights', str(weights), '--output',
            str(output), '--gpus', 'cpu', '--no-progress'] + [str(e) for e in extra]
    assert evaluate.main(argv) == 0
    return str(output)


def _names(data):
    return [os.path.splitext(os.path.basename(image))[0] for image, _ in read_list(data[1])]


def _check_against_official(data, output):
    root, lst = data
    samples = read_list(lst)
    preds = [os.path.join(output, 'labelId', n + '.png') for n in _names(data)]
    gts = [os.path.join(root, label) for _, label in samples]
    official = official_class_iou(preds, gts)
    with open(os.path.join(output, 'metrics.json')) as f:
        metrics = json.load(f)
    present = set()
    for gt in gts:
        ids = INFO.label_to_train[np.asarray(Image.open(gt))]
        present.update(int(k) for k in np.unique(ids) if k != 255)
    assert present
    for k in sorted(present):
        name = INFO.class_names[k]
        assert metrics['iou'][name] == pytest.approx(official[name], abs=1e-9), name
    return metrics, present


def test_full_model_end_to_end(data, gta_s8_weights, tmp_path):
    out = _run(data, gta_s8_weights, tmp_path / 'out', '--test-scales', 64)
    for name in _names(data):
        for sub in ('labelId', 'trainId', 'color', 'color/correct'):
            assert os.path.isfile(os.path.join(out, sub, name + '.png')), (sub, name)
    with open(os.path.join(out, 'metrics.json')) as f:
        metrics = json.load(f)
    assert set(metrics) == {'iou', 'miou', 'pixel_acc', 'mean_acc', 'cpu_isa', 'cpu_threads'}
    assert list(metrics['iou']) == list(INFO.class_names)
    for value in list(metrics['iou'].values()) + [metrics[k] for k in ('miou', 'pixel_acc',
                                                                        'mean_acc')]:
        assert 0.0 <= value <= 1.0
    assert metrics['miou'] == pytest.approx(np.mean(list(metrics['iou'].values())))
    _check_against_official(data, out)
    with open(os.path.join(out, 'results.md')) as f:
        table = f.read()
    assert '| road | sidewalk |' in table and 'mIoU' in table
    with open(os.path.join(out, 'evaluate.log')) as f:
        logged = f.read()
    assert 'non-network' in logged and 'mean IoU' in logged and '| road |' in logged


def test_outputs_are_consistent(data, tiny_weights, tmp_path):
    out = _run(data, tiny_weights, tmp_path / 'out', '--test-scales', 128)
    root, _ = data
    for name, (_, label) in zip(_names(data), read_list(data[1])):
        train = np.asarray(Image.open(os.path.join(out, 'trainId', name + '.png')))
        label_ids = np.asarray(Image.open(os.path.join(out, 'labelId', name + '.png')))
        np.testing.assert_array_equal(label_ids, INFO.train_to_label[train])
        with Image.open(os.path.join(out, 'color', name + '.png')) as img:
            rgb = np.asarray(img.convert('RGB'))
        np.testing.assert_array_equal(rgb, INFO.palette[label_ids])
        gt = INFO.label_to_train[np.asarray(Image.open(os.path.join(root, label)))]
        correct = np.asarray(Image.open(os.path.join(out, 'color', 'correct', name + '.png')))
        expected = np.where(gt == 255, 255, np.where(gt == train, 127, 0))
        np.testing.assert_array_equal(correct, expected)
        assert train.shape == (64, 128) and train.max() < 19


def test_official_iou_on_partly_correct_predictions(data, tiny_weights, tmp_path):
    """Ground truth made half of the model's own predictions: IoUs strictly between 0 and 1."""
    first = _run(data, tiny_weights, tmp_path / 'first', '--test-scales', 128)
    root, lst = data
    new_root = tmp_path / 'gt'
    rows = []
    for name, (image, label) in zip(_names(data), read_list(lst)):
        pred = np.asarray(Image.open(os.path.join(first, 'labelId', name + '.png')))
        gt = np.asarray(Image.open(os.path.join(root, label))).copy()
        gt[:, :64] = pred[:, :64]
        gt[:4] = 0  # some ignored pixels too
        path = new_root / label
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gt).save(str(path))
        rows.append('%s\t%s\n' % (os.path.join(root, image), str(path)))
    new_list = tmp_path / 'val.lst'
    new_list.write_text(''.join(rows))
    second = _run((str(new_root), str(new_list)), tiny_weights, tmp_path / 'second',
                  '--test-scales', 128)
    gts = [str(new_root / label) for _, label in read_list(lst)]
    preds = [os.path.join(second, 'labelId', n + '.png') for n in _names(data)]
    official = official_class_iou(preds, gts)
    with open(os.path.join(second, 'metrics.json')) as f:
        metrics = json.load(f)
    partial = [n for n in INFO.class_names if 0 < metrics['iou'][n] < 1]
    assert partial, metrics['iou']
    for name in INFO.class_names:
        if not np.isnan(official[name]):
            assert metrics['iou'][name] == pytest.approx(official[name], abs=1e-9), name


def test_multiscale_and_flipping(data, tiny_weights, tmp_path):
    def scores(tag, *extra):
        out = _run(data, tiny_weights, tmp_path / tag, '--save-predictions', *extra)
        name = _names(data)[0]
        s = np.load(os.path.join(out, 'scores', name + '.npy'))
        assert s.dtype == np.float16 and s.shape == (19, 64, 128)
        return s.astype(np.float32)

    big = scores('big', '--test-scales', 128)
    small = scores('small', '--test-scales', 96)
    both = scores('both', '--test-scales', '128,96')
    flipped = scores('flip', '--test-scales', 128, '--test-flipping')
    np.testing.assert_allclose(big.sum(axis=0), 1.0, atol=2e-3)
    np.testing.assert_allclose(both, (big + small) / 2, atol=2e-3)
    assert np.abs(both - big).max() > 1e-2
    assert np.abs(flipped - big).max() > 1e-2


@pytest.mark.parametrize('steps', [2, 4])
def test_test_steps_reach_the_predictor(data, tiny_weights, tmp_path, steps):
    """--test-steps N: the saved scores are those of a Predictor with N steps (float16)."""
    import mxnet as mx
    from issegm.datasets import read_image
    from issegm.testtime.one_image import Predictor
    from util.weights import load_weights
    out = _run(data, tiny_weights, tmp_path / 'steps', '--test-scales', 96, '--test-flipping',
               '--test-steps', steps, '--save-predictions')
    arg, aux = load_weights(tiny_weights)
    predictor = Predictor(TINY, arg, aux, mx.cpu(), 8, test_steps=steps, float64_softmax=True)
    single = Predictor(TINY, arg, aux, mx.cpu(), 8, float64_softmax=True)
    root, lst = data
    for name, (image, _) in zip(_names(data), read_list(lst)):
        rgb = read_image(os.path.join(root, image))
        want = predictor.predict(rgb, [96], True)
        saved = np.load(os.path.join(out, 'scores', name + '.npy'))
        np.testing.assert_array_equal(saved, want.astype(np.float16))
        assert np.abs(want - single.predict(rgb, [96], True)).max() > 1e-3


def test_evaluate_samples_and_threads(data, tiny_weights, tmp_path):
    """The reusable loop: same confusion and files with and without helper threads."""
    from issegm.datasets import load_samples
    from issegm.testtime.one_image import Predictor
    from util.metrics import confusion_matrix
    from util.weights import load_weights
    import mxnet as mx
    arg, aux = load_weights(tiny_weights)
    predictor = Predictor(TINY, arg, aux, mx.cpu(), 8)
    samples = load_samples(data[0], data[1], 'cityscapes')
    confs = []
    for threads in (0, 2):
        out = str(tmp_path / ('t%d' % threads))
        timings = evaluate.Timings()
        conf = evaluate.evaluate_samples(predictor, samples, INFO, PredictionOptions([128]),
                                         evaluate.EvalOutputs(out), prefetch_threads=threads,
                                         timings=timings, progress=False)
        assert timings.images == 3 and timings.seconds['network'] > 0
        assert 'non-network' in timings.summary()
        expected = np.zeros((19, 19), np.int64)
        for name, (_, label) in zip(_names(data), samples):
            pred = np.asarray(Image.open(os.path.join(out, 'trainId', name + '.png')))
            gt = INFO.label_to_train[np.asarray(Image.open(label))]
            expected += confusion_matrix(gt, pred, 19)
        np.testing.assert_array_equal(conf, expected)
        confs.append(conf)
    np.testing.assert_array_equal(confs[0], confs[1])


def test_no_save_results_and_unlabelled_split(data, tiny_weights, tmp_path):
    out = _run(data, tiny_weights, tmp_path / 'nosave', '--test-scales', 96, '--no-save-results')
    assert os.path.isfile(os.path.join(out, 'metrics.json'))
    assert not os.path.exists(os.path.join(out, 'labelId'))
    root, lst = data
    images_only = tmp_path / 'images.lst'
    images_only.write_text(''.join('%s\n' % image for image, _ in read_list(lst)))
    out = _run((root, str(images_only)), tiny_weights, tmp_path / 'nolabels', '--test-scales', 96)
    assert not os.path.exists(os.path.join(out, 'metrics.json'))
    assert len(os.listdir(os.path.join(out, 'labelId'))) == 3
    assert not os.path.exists(os.path.join(out, 'color', 'correct'))


def test_labels_without_a_labelled_pixel_are_a_split_without_labels(data, tiny_weights,
                                                                    tmp_path, capsys):
    """Every label all ignore (past the data check with --skip-data-check): one line, no
    metrics (nor per_image.csv), exit 0, as for a split without labels."""
    root, lst = data
    void_root = tmp_path / 'void'
    shutil.copytree(root, str(void_root))
    for _, label in read_list(lst):
        path = os.path.join(str(void_root), label)
        write_png(path, np.zeros_like(np.asarray(Image.open(path))))  # all unlabeled (0)
    out = _run((str(void_root), lst), tiny_weights, tmp_path / 'out', '--test-scales', 96,
               '--skip-data-check', '--per-image')
    said = [line for line in capsys.readouterr().out.splitlines() if 'no metrics' in line]
    assert len(said) == 1 and said[0].endswith(
        'no labelled pixel in the labels of %s (every pixel maps to ignore): no metrics '
        'written (nor per_image.csv)' % lst), said
    assert not [n for n in os.listdir(out) if n.endswith(('.json', '.md', '.csv', '.png'))]
    assert len(os.listdir(os.path.join(out, 'labelId'))) == 3


def test_bad_inputs_give_one_error_line(data, tiny_weights, tmp_path):
    root, lst = data
    misfit = tmp_path / ('%s_ep-0000.params' % TINY)
    write_model_weights(misfit, 'cityscapes_rna-tiny_cls16_s8')  # 16-class head, 19-class name
    base = ['--split', lst, '--output', str(tmp_path / 'out'), '--gpus', 'cpu',
            '--test-scales', '64']
    cases = {
        'data root not found': ['--data-root', str(tmp_path / 'nowhere'),
                                '--weights', tiny_weights],
        'weight file not found': ['--data-root', root,
                                  '--weights', str(tmp_path / ('%s_ep-0001.params' % TINY))],
        'does not fit the model': ['--data-root', root, '--weights', str(misfit)],
        'unknown dataset': ['--data-root', root, '--weights', tiny_weights, '--dataset', 'mars'],
        'has 19 classes but dataset cityscapes16 has 16': [
            '--data-root', root, '--weights', tiny_weights, '--dataset', 'cityscapes16'],
        'bad --test-scales': ['--data-root', root, '--weights', tiny_weights,
                              '--test-scales', 'big'],
        "bad --test-steps 3: it must divide the model's stride 8": [
            '--data-root', root, '--weights', tiny_weights, '--test-steps', '3'],
    }
    procs = {k: subprocess.Popen([sys.executable, SCRIPT] + base + v, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
             for k, v in cases.items()}
    for expected, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode != 0, expected
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: '), (expected, err)
        assert expected in lines[0], (expected, lines[0])
        assert 'Traceback' not in err


def _file_bytes(folder, skip=('evaluate.log', '.lock')):
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if name not in skip:
                path = os.path.join(dirpath, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, folder)] = f.read()
    return files


def test_several_devices_split_the_images_with_identical_outputs(data, tiny_weights, tmp_path,
                                                                 monkeypatch):
    """--gpus cpu:2: image i on device i mod 2, each device driven by one thread, and every
    output byte-identical to --gpus cpu's; the first log line names both devices."""
    import threading
    from issegm.testtime.one_image import Predictor
    calls = []
    predict = Predictor.predict

    def recording(self, image, *args, **kwargs):
        calls.append((str(self.ctx), threading.current_thread().name, image.tobytes()))
        return predict(self, image, *args, **kwargs)
    monkeypatch.setattr(Predictor, 'predict', recording)
    extra = ['--test-scales', '128,96', '--test-flipping', '--save-predictions']
    one = _run(data, tiny_weights, tmp_path / 'one', '--gpus', 'cpu', *extra)
    assert {ctx for ctx, _, _ in calls} == {'cpu(0)'}
    single = [image for _, _, image in calls]
    del calls[:]
    two = _run(data, tiny_weights, tmp_path / 'two', '--gpus', 'cpu:2', *extra)
    assert [ctx for ctx, _, _ in calls] == ['cpu(0)', 'cpu(1)', 'cpu(0)']
    assert [image for _, _, image in calls] == single  # the same images, split over devices
    threads = {ctx: {t for c, t, _ in calls if c == ctx} for ctx in ('cpu(0)', 'cpu(1)')}
    assert all(len(t) == 1 for t in threads.values()) and threads['cpu(0)'] != threads['cpu(1)']
    assert len(_file_bytes(one)) == 3 * 5 + 4  # per image 4 PNGs, the scores; 4 report files
    assert _file_bytes(two) == _file_bytes(one)
    with open(os.path.join(two, 'evaluate.log')) as f:
        first = f.readline()
    assert first.rstrip().endswith('devices cpu(0), cpu(1)'), first
