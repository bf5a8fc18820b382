"""evaluate.py's reports: confusion.csv/png, the 13-class mIoU* of 16-class SYNTHIA models and
--per-image, each against a plain NumPy restatement on constructed maps."""
import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import write_model_weights
from issegm import evaluate
from issegm.datasets import get_dataset, read_list
from util.metrics import confusion_matrix, image_iou, row_normalised

INFO19 = get_dataset('cityscapes')
INFO16 = get_dataset('cityscapes16')
TINY = 'cityscapes_rna-tiny_cls19_s8'
TINY16 = 'cityscapes_rna-tiny_cls16_s8'
# The 13 classes by name, as UDA papers list them for SYNTHIA -> Cityscapes.
THIRTEEN = ['road', 'sidewalk', 'building', 'traffic light', 'traffic sign', 'vegetation', 'sky',
            'person', 'rider', 'car', 'bus', 'motorcycle', 'bicycle']


def plain_iou(conf):
    """IoU per class by the formula, 0 where 0/0 (as `miou`)."""
    conf = np.asarray(conf, np.float64)
    out = []
    for k in range(len(conf)):
        union = conf[k, :].sum() + conf[:, k].sum() - conf[k, k]
        out.append(conf[k, k] / union if union else 0.0)
    return np.array(out)


def constructed16():
    """A 16-class matrix: `car` never predicted, `bus` never in the ground truth, `rider`
    in neither, wall, fence and pole far worse than the rest."""
    rng = np.random.RandomState(16)
    conf = rng.randint(0, 50, (16, 16)) + np.diag(rng.randint(500, 1000, 16))
    names = list(INFO16.class_names)
    for name in ('wall', 'fence', 'pole'):
        conf[names.index(name), names.index(name)] = 3
    conf[:, names.index('car')] = 0
    conf[names.index('bus'), :] = 0
    conf[:, names.index('rider')] = 0
    conf[names.index('rider'), :] = 0
    return conf


# ---------------------------------------------------------------- mIoU* (13 classes)

def test_miou13_is_the_mean_over_the_13_classes():
    conf = constructed16()
    iou = plain_iou(conf)
    names = list(INFO16.class_names)
    expected = np.mean([iou[names.index(n)] for n in THIRTEEN])
    assert len(THIRTEEN) == 13 and iou[names.index('car')] == 0 == iou[names.index('rider')]
    assert evaluate.miou13(iou, INFO16.class_names) == pytest.approx(expected, abs=1e-12)
    assert abs(expected - iou.mean()) > 0.05  # leaving out wall, fence, pole matters here
    assert evaluate.miou13(iou, get_dataset('synthia').class_names) == pytest.approx(expected)
    assert evaluate.miou13(np.zeros(19), INFO19.class_names) is None


def test_miou13_in_metrics_json_and_results_md(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, 'confusion_figure', _NoFigure)  # the PNG: test below
    conf = constructed16()
    evaluate.write_report(str(tmp_path), conf, INFO16, 'syn on cityscapes16 val')
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    iou = plain_iou(conf)
    star = np.mean([iou[list(INFO16.class_names).index(n)] for n in THIRTEEN])
    assert metrics['miou13'] == pytest.approx(star, abs=1e-12)
    assert metrics['miou'] == pytest.approx(iou.mean(), abs=1e-12)
    results = (tmp_path / 'results.md').read_text()
    header = next(line for line in results.splitlines() if line.startswith('| case |'))
    row = next(line for line in results.splitlines() if line.startswith('| syn on'))
    assert header.endswith('| mIoU | mIoU* (13 classes) |')
    assert row.endswith('| %.1f | %.1f |' % (100 * iou.mean(), 100 * star))
    assert 'mIoU* (13 classes: without wall, fence, pole) %.2f%%' % (100 * star) in results
    evaluate.write_report(str(tmp_path), np.eye(19, dtype=np.int64), INFO19, 'gta')
    assert 'miou13' not in json.loads((tmp_path / 'metrics.json').read_text())
    assert 'mIoU*' not in (tmp_path / 'results.md').read_text()


class _NoFigure:
    """Stands for confusion_figure's Figure where the PNG is not under test (no matplotlib)."""
    def __init__(self, conf, class_names, title):
        pass

    def savefig(self, path, **kwargs):
        with open(path, 'wb') as f:
            f.write(b'png')


# ---------------------------------------------------------------- confusion.csv and .png

def test_confusion_csv_is_the_matrix_with_its_header(tmp_path):
    conf = constructed16()
    path = str(tmp_path / 'confusion.csv')
    evaluate.write_confusion_csv(path, conf, INFO16.class_names)
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['ground truth (rows) \\ predicted (columns)'] + list(INFO16.class_names)
    assert [r[0] for r in rows[1:]] == list(INFO16.class_names)
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], np.int64), conf)


def test_row_normalised_restated():
    conf = constructed16()
    shares = row_normalised(conf)
    for k, row in enumerate(conf):
        if row.sum():
            np.testing.assert_allclose(shares[k], row / row.sum(), rtol=0, atol=1e-15)
        else:
            assert np.isnan(shares[k]).all()
    assert np.isnan(shares[list(INFO16.class_names).index('bus')]).all()
    assert (shares[:, list(INFO16.class_names).index('car')][conf.sum(1) > 0] == 0).all()


@pytest.mark.slow
def test_confusion_png_draws_the_row_normalised_matrix(tmp_path):
    conf = constructed16()
    fig = evaluate.confusion_figure(conf, INFO16.class_names, 'a title')
    drawn = fig.axes[0].images[0].get_array()
    expected = conf / np.where(conf.sum(1) > 0, conf.sum(1), 1)[:, None]
    empty = conf.sum(1) == 0
    assert (drawn.mask.all(axis=1) == empty).all() and not drawn.mask[~empty].any()
    np.testing.assert_allclose(drawn.data[~empty], expected[~empty], atol=1e-15)
    axis = fig.axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == list(INFO16.class_names)
    assert [t.get_text() for t in axis.get_yticklabels()] == list(INFO16.class_names)
    assert (axis.get_xlabel(), axis.get_ylabel()) == ('predicted class', 'ground-truth class')
    evaluate.write_report(str(tmp_path), conf, INFO16, 'a title')
    with Image.open(str(tmp_path / 'confusion.png')) as img:
        assert img.format == 'PNG' and img.size[0] >= 800 and img.size[1] >= 800


# ---------------------------------------------------------------- per image

def plain_image_iou(gt, pred, n):
    """Per class: IoU over the image's pixels with ground truth, NaN for a class in neither;
    mIoU: their mean over the classes in either (NaN if none)."""
    valid = gt != 255
    iou = np.full(n, np.nan)
    for c in range(n):
        inter = np.sum(valid & (gt == c) & (pred == c))
        union = np.sum(valid & ((gt == c) | (pred == c)))
        if union:
            iou[c] = inter / union
    present = ~np.isnan(iou)
    return iou, iou[present].mean() if present.any() else np.nan


N = 6  # classes of the constructed images


def constructed_images():
    """(name, gt, pred) of 6 classes: b_mixed (class 1 in its gt, never predicted; 4 predicted,
    never in its gt; 5 predicted on ignored pixels only), c_ignored (all pixels ignored),
    a_perfect."""
    rng = np.random.RandomState(5)
    gt = rng.randint(0, 4, (6, 8)).astype(np.uint8)
    gt[0] = 255
    gt[2, 2] = 1
    pred = gt.copy()
    pred[gt == 1] = 0
    pred[3, :4] = 4
    pred[0] = 5
    return [('b_mixed', gt, pred), ('c_ignored', np.full((4, 4), 255, np.uint8),
                                    np.zeros((4, 4), np.uint8)),
            ('a_perfect', gt, np.where(gt == 255, 0, gt).astype(np.uint8))]


def test_image_iou_restated():
    got = {}
    for name, gt, pred in constructed_images():
        iou, miou = image_iou(confusion_matrix(gt, pred, N))
        want_iou, want_miou = plain_image_iou(gt, pred, N)
        np.testing.assert_allclose(iou, want_iou, equal_nan=True, atol=1e-15)
        assert (np.isnan(miou) and np.isnan(want_miou)) or miou == pytest.approx(want_miou)
        got[name] = iou, miou
    iou, miou = got['b_mixed']
    assert iou[1] == 0 == iou[4] and np.isnan(iou[5]) and 0 < miou < 1
    assert np.isnan(got['c_ignored'][0]).all() and np.isnan(got['c_ignored'][1])
    assert got['a_perfect'][1] == 1.0


def test_per_image_csv_worst_first(tmp_path):
    names = ['c%d' % k for k in range(N)]
    rows = [(n,) + image_iou(confusion_matrix(g, p, N)) for n, g, p in constructed_images()]
    rows.append(('d_same', rows[0][1], rows[0][2]))  # a tie with b_mixed: by name
    path = str(tmp_path / 'per_image.csv')
    evaluate.write_per_image(path, rows, names)
    with open(path, newline='') as f:
        table = list(csv.reader(f))
    assert table[0] == ['image', 'miou'] + names
    assert [r[0] for r in table[1:]] == ['b_mixed', 'd_same', 'a_perfect', 'c_ignored']
    by_name = {n: (g, p) for n, g, p in constructed_images()}
    by_name['d_same'] = by_name['b_mixed']
    for row in table[1:]:
        iou, miou = plain_image_iou(*by_name[row[0]], N)
        values = [miou] + list(iou)
        assert [c == '' for c in row[1:]] == [bool(np.isnan(v)) for v in values]
        for cell, v in zip(row[1:], values):
            if cell:
                assert float(cell) == pytest.approx(v, abs=5e-7)
    assert table[-1][1:] == [''] * (N + 1)  # all ignored: no class, no mIoU


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from issegm.make_demo_data import generate
    root = tmp_path_factory.mktemp('reports_data')
    out = generate(str(root), seed=0, num_source=0, num_target_train=0, num_target_val=3,
                   target_size=(64, 128))
    return out['cityscapes_root'], out['cityscapes_val_list']


def _evaluate(data, weights, output, *extra):
    root, lst = data
    argv = ['--data-root', root, '--split', lst, '--weights', str(weights), '--output',
            str(output), '--gpus', 'cpu', '--no-progress', '--test-scales', '128'] + list(extra)
    assert evaluate.main(argv) == 0
    return output


def _restated(data, output, info):
    """[(name, gt train ids, predicted train ids)] of an evaluation's PNGs."""
    root, lst = data
    out = []
    for image, label in read_list(lst):
        name = os.path.splitext(os.path.basename(image))[0]
        pred = np.asarray(Image.open(str(output / 'trainId' / (name + '.png'))))
        out.append((name, info.label_to_train[np.asarray(Image.open(os.path.join(root, label)))],
                    pred))
    return out


@pytest.mark.slow
def test_evaluate_writes_confusion_and_per_image(data, tmp_path):
    weights = write_model_weights(tmp_path / ('%s_ep-0001.params' % TINY), TINY, seed=3)
    out = _evaluate(data, weights, tmp_path / 'out', '--per-image')
    images = _restated(data, out, INFO19)
    conf = sum(confusion_matrix(g, p, 19) for _, g, p in images)
    with open(str(out / 'confusion.csv'), newline='') as f:
        rows = list(csv.reader(f))
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], np.int64), conf)
    assert (out / 'confusion.png').stat().st_size > 10000
    assert 'miou13' not in json.loads((out / 'metrics.json').read_text())
    with open(str(out / 'per_image.csv'), newline='') as f:
        table = list(csv.reader(f))
    assert table[0] == ['image', 'miou'] + list(INFO19.class_names)
    want = sorted((plain_image_iou(g, p, 19)[1], n, plain_image_iou(g, p, 19)[0])
                  for n, g, p in images)
    assert [r[0] for r in table[1:]] == [n for _, n, _ in want]
    for row, (miou, _, iou) in zip(table[1:], want):
        assert float(row[1]) == pytest.approx(miou, abs=5e-7)
        np.testing.assert_allclose([float(c) if c else np.nan for c in row[2:]], iou,
                                   atol=5e-7, equal_nan=True)
    plain = _evaluate(data, weights, tmp_path / 'plain')
    assert not (plain / 'per_image.csv').exists()
    _evaluate(data, weights, out)  # a rerun without --per-image leaves no stale table behind
    assert not (out / 'per_image.csv').exists()
    assert (plain / 'confusion.csv').read_bytes() == (out / 'confusion.csv').read_bytes()


@pytest.mark.slow
def test_evaluate_16_class_model_reports_miou13(data, tmp_path):
    weights = write_model_weights(tmp_path / ('%s_ep-0001.params' % TINY16), TINY16, seed=4)
    out = _evaluate(data, weights, tmp_path / 'out', '--dataset', 'cityscapes16')
    conf = sum(confusion_matrix(g, p, 16) for _, g, p in _restated(data, out, INFO16))
    iou = plain_iou(conf)
    star = np.mean([iou[list(INFO16.class_names).index(n)] for n in THIRTEEN])
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['miou13'] == pytest.approx(star, abs=1e-12)
    assert 'mIoU* (13 classes)' in (out / 'results.md').read_text()
    assert 'mIoU* (13 classes' in (out / 'evaluate.log').read_text()
    assert 0 < star < 1 and star != pytest.approx(metrics['miou'])


@pytest.mark.slow
def test_failing_half_way_leaves_the_earlier_confusion(data, tmp_path, monkeypatch):
    weights = write_model_weights(tmp_path / ('%s_ep-0001.params' % TINY), TINY, seed=3)
    out = _evaluate(data, weights, tmp_path / 'out', '--per-image')
    before = {name: (out / name).read_bytes() for name in
              ('confusion.csv', 'confusion.png', 'per_image.csv', 'metrics.json')}
    staged = {}

    def killed(conf, class_names, title):
        stage = out / evaluate.STAGE_NAME
        staged.update({n: (stage / n).read_bytes() for n in ('confusion.csv', 'per_image.csv')})
        raise RuntimeError('killed half-way')
    monkeypatch.setattr(evaluate, 'confusion_figure', killed)
    with pytest.raises(RuntimeError):
        _evaluate(data, weights, out, '--per-image', '--test-scales', '64')
    assert staged['confusion.csv'] != before['confusion.csv']  # the new one was on its way
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not (out / evaluate.STAGE_NAME).exists()
