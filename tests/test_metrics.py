"""util.metrics: confusion matrix, scores, dict and table output; agreement with Cityscapes."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from util.metrics import ConfusionMeter, confusion_matrix, format_table, metrics_dict, scores

from cityscapes_official import official_class_iou

CITY19 = ['road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
          'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
          'motorcycle', 'bicycle']


def loop_confusion(gt, pred, n, miss_column=False):
    conf = [[0] * (n + 1) for _ in range(n)]
    for g, p in zip(np.asarray(gt).ravel().tolist(), np.asarray(pred).ravel().tolist()):
        if not 0 <= g < n:
            continue
        conf[g][p if 0 <= p < n else n] += 1
    conf = np.array(conf, np.int64)
    return conf if miss_column else conf[:, :n]


# ---------------------------------------------------------------- confusion

@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('dtype', [np.uint8, np.int32, np.int64])
def test_confusion_matches_loop(seed, dtype):
    rng = np.random.RandomState(seed)
    n = rng.choice([3, 16, 19])
    shape = (rng.randint(1, 13), rng.randint(1, 17))
    gt = rng.randint(0, n, shape)
    gt[rng.rand(*shape) < 0.2] = 255
    pred = rng.randint(0, n, shape)
    gt, pred = gt.astype(dtype), pred.astype(dtype)
    conf = confusion_matrix(gt, pred, n)
    assert conf.dtype == np.int64 and conf.shape == (n, n)
    np.testing.assert_array_equal(conf, loop_confusion(gt, pred, n))
    assert conf.sum() == np.count_nonzero(gt != 255)


def test_confusion_ignores_negative_and_large_gt_and_accepts_batches():
    rng = np.random.RandomState(7)
    gt = rng.randint(-2, 22, (2, 3, 9, 11))
    pred = rng.randint(0, 19, gt.shape)
    np.testing.assert_array_equal(confusion_matrix(gt, pred, 19), loop_confusion(gt, pred, 19))
    # the caller's arrays are left alone
    assert gt.min() == -2


@pytest.mark.parametrize('n', [19, 200])
@pytest.mark.parametrize('dtype', [np.int16, np.int64, np.uint16, np.uint64])
def test_confusion_wide_value_ranges_with_miss_column(n, dtype):
    # values far outside the classes must neither alias into real bins nor wrap
    rng = np.random.RandomState(n)
    lo = 0 if np.issubdtype(dtype, np.unsignedinteger) else -300
    gt = rng.randint(lo, 300, (23, 29)).astype(dtype)
    pred = rng.randint(lo, 300, (23, 29)).astype(dtype)
    gt[:5] = rng.randint(0, n, (5, 29))
    pred[:3] = rng.randint(0, n, (3, 29))
    conf = confusion_matrix(gt, pred, n, miss_column=True)
    assert conf.shape == (n, n + 1) and conf.dtype == np.int64
    np.testing.assert_array_equal(conf, loop_confusion(gt, pred, n, miss_column=True))
    valid_p = (pred.astype(np.int64) >= 0) & (pred.astype(np.int64) < n)
    ok = (gt.astype(np.int64) >= 0) & (gt.astype(np.int64) < n)
    pred_ok = np.where(valid_p | ~ok, pred, 0).astype(dtype)
    np.testing.assert_array_equal(confusion_matrix(gt, pred_ok, n),
                                  loop_confusion(gt, pred_ok, n))


def test_confusion_out_of_range_prediction():
    gt = np.array([[0, 1, 2, 255], [1, 1, 0, 255]], np.uint8)
    pred = np.array([[0, 255, 2, 7], [1, 255, 255, 255]], np.uint8)
    # prediction 255 only over an ignored gt pixel: fine in the (n, n) form
    assert confusion_matrix(gt[0], [0, 1, 2, 255], 3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match='miss_column'):
        confusion_matrix(gt, pred, 3)
    conf = confusion_matrix(gt, pred, 3, miss_column=True)
    np.testing.assert_array_equal(conf, [[1, 0, 0, 1],
                                         [0, 1, 0, 2],
                                         [0, 0, 1, 0]])
    np.testing.assert_array_equal(conf, loop_confusion(gt, pred, 3, miss_column=True))
    s = scores(conf)
    # road: TP 1, GT 2, Pred 1; sidewalk: TP 1, GT 3, Pred 1; building: 1/1
    np.testing.assert_allclose(s['iou'], [0.5, 1 / 3, 1.0])
    assert s['pixel_acc'] == pytest.approx(3 / 6)
    assert s['mean_acc'] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)


def test_confusion_rejects_bad_input():
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 19)
    with pytest.raises(TypeError):
        confusion_matrix(np.zeros((2, 3)), np.zeros((2, 3), int), 19)


def test_meter_accumulates():
    rng = np.random.RandomState(3)
    meter = ConfusionMeter(19)
    total = np.zeros((19, 19), np.int64)
    for _ in range(4):
        gt = rng.randint(0, 19, (5, 6)).astype(np.uint8)
        gt[rng.rand(5, 6) < 0.3] = 255
        pred = rng.randint(0, 19, (5, 6))
        meter.update(gt, pred)
        total += loop_confusion(gt, pred, 19)
    np.testing.assert_array_equal(meter.matrix, total)
    assert meter.scores()['miou'] == scores(total)['miou']
    meter.matrix[0, 0] += 100  # a copy
    np.testing.assert_array_equal(meter.matrix, total)
    meter.reset()
    assert meter.matrix.sum() == 0


# ---------------------------------------------------------------- scores

def test_scores_hand_computed():
    # rows = GT, cols = prediction; class 2 has no GT but is predicted once,
    # class 3 has neither GT nor predictions.
    conf = np.array([[5, 1, 0, 0],
                     [2, 3, 1, 0],
                     [0, 0, 0, 0],
                     [0, 0, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        s = scores(conf)
    assert s['pixel_acc'] == pytest.approx(8 / 12)
    # class accuracy: 5/6, 3/6, 0/1, 0/1 -> classes without GT count one pixel
    np.testing.assert_allclose(s['class_acc'], [5 / 6, 3 / 6, 0, 0])
    assert s['mean_acc'] == pytest.approx((5 / 6 + 3 / 6) / 4)
    # IoU: 5/(6+7-5), 3/(6+4-3), 0/(0+1-0), 0 (denominator 0)
    np.testing.assert_allclose(s['iou'], [5 / 8, 3 / 7, 0, 0])
    assert s['miou'] == pytest.approx((5 / 8 + 3 / 7) / 4)
    np.testing.assert_array_equal(s['present'], [True, True, False, False])
    assert isinstance(s['pixel_acc'], float) and isinstance(s['miou'], float)
    assert isinstance(s['mean_acc'], float)


def test_scores_perfect_and_empty():
    s = scores(np.diag([3, 0, 4]))
    np.testing.assert_allclose(s['iou'], [1, 0, 1])
    assert s['pixel_acc'] == 1.0 and s['miou'] == pytest.approx(2 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        e = scores(np.zeros((19, 19), np.int64))
    assert e['pixel_acc'] == 0.0 and e['miou'] == 0.0 and e['mean_acc'] == 0.0


def test_miou_is_over_all_dataset_classes_16():
    gt = np.arange(16).repeat(10)
    pred = gt.copy()
    gt[:10] = 255           # class 0 absent
    s = scores(confusion_matrix(gt, pred, 16))
    assert s['miou'] == pytest.approx(15 / 16)
    assert s['present'].sum() == 15


def test_scores_rejects_bad_shape():
    with pytest.raises(ValueError):
        scores(np.zeros((3, 5)))


# ---------------------------------------------------------------- dict and table

def test_metrics_dict_json_ready():
    conf = np.array([[5, 1], [2, 3]])
    d = metrics_dict(conf, ['road', 'sidewalk'])
    assert set(d) == {'iou', 'miou', 'pixel_acc', 'mean_acc'}
    assert list(d['iou']) == ['road', 'sidewalk']
    assert d['iou']['road'] == pytest.approx(5 / 8)
    assert d['miou'] == pytest.approx((5 / 8 + 3 / 6) / 2)
    assert d['pixel_acc'] == pytest.approx(8 / 11)
    assert d['mean_acc'] == pytest.approx((5 / 6 + 3 / 5) / 2)
    assert json.loads(json.dumps(d)) == d
    assert all(type(v) is float for v in d['iou'].values())
    with pytest.raises(ValueError):
        metrics_dict(conf, ['road'])


def test_format_table_paper_style():
    cbst = [86.8, 46.7, 76.9, 26.3, 24.8, 42.0, 46.0, 38.6, 80.7, 15.7, 48.0, 57.3, 27.9, 78.2,
            24.5, 49.6, 17.7, 25.5, 45.1]
    iou = np.array(cbst) / 100
    table = format_table([('CBST', iou, 0.452), ('mean', iou, None)], CITY19)
    lines = table.strip().split('\n')
    assert lines[0] == '| case | ' + ' | '.join(CITY19) + ' | mIoU |'
    assert lines[1] == '|' + '---|' * 21
    assert lines[2] == '| CBST | ' + ' | '.join('%.1f' % v for v in cbst) + ' | 45.2 |'
    assert lines[3].endswith('| %.1f |' % np.mean(cbst))
    assert all(l.count('|') == 22 for l in lines)
    with pytest.raises(ValueError):
        format_table([('x', iou[:16], None)], CITY19)


# ---------------------------------------------------------------- official evaluator

def _label_tables():
    from cityscapesscripts.helpers.labels import labels
    train_to_id = np.zeros(256, np.uint8)            # 255 -> label id 0 ("unlabeled")
    id_to_train = np.full(256, 255, np.uint8)
    for l in labels:
        if l.id < 0:
            continue
        if 0 <= l.trainId < 255:
            train_to_id[l.trainId] = l.id
        id_to_train[l.id] = l.trainId if 0 <= l.trainId < 255 else 255
    return train_to_id, id_to_train, [l.id for l in labels if l.id >= 0]


def _blocky(rng, shape, values, block):
    small = rng.choice(values, (shape[0] // block + 1, shape[1] // block + 1))
    return np.kron(small, np.ones((block, block), small.dtype))[:shape[0], :shape[1]]


def test_agrees_with_official_cityscapes_evaluator(tmp_path, monkeypatch):
    for var in ('CITYSCAPES_DATASET', 'CITYSCAPES_RESULTS', 'CITYSCAPES_EXPORT_DIR'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    train_to_id, id_to_train, all_ids = _label_tables()
    rng = np.random.RandomState(2018)
    all_ids = np.array(all_ids, np.uint8)
    preds, gts = [], []
    meter = ConfusionMeter(19, miss_column=True)
    for i, shape in enumerate([(40, 60), (33, 47), (64, 64)]):
        # ground truth: any Cityscapes label id, ignored ones included; leave
        # out a few classes so that some classes have no ground truth
        gt_ids = _blocky(rng, shape, np.setdiff1d(all_ids, [31, 32, 28]), 4)
        # prediction: mostly the evaluated classes, some ignored label ids
        pred_train = np.where(rng.rand(*shape) < 0.6, id_to_train[gt_ids],
                              _blocky(rng, shape, np.arange(19, dtype=np.uint8), 3))
        pred_train[pred_train == 255] = rng.randint(0, 19)
        pred_ids = train_to_id[pred_train]
        pred_ids[rng.rand(*shape) < 0.05] = rng.choice([0, 4, 9, 29], 1)[0]
        pred_ids[0, 0] = 33  # bicycle predicted somewhere
        gp = tmp_path / ('aachen_%06d_000019_gtFine_labelIds.png' % i)
        pp = tmp_path / ('aachen_%06d_000019_pred.png' % i)
        Image.fromarray(gt_ids).save(gp)
        Image.fromarray(pred_ids).save(pp)
        gts.append(gp)
        preds.append(pp)
        # ours, from the files read back and mapped to train ids
        gt_back = id_to_train[np.array(Image.open(gp))]
        pred_back = id_to_train[np.array(Image.open(pp))]
        meter.update(gt_back, pred_back)

    official = official_class_iou(preds, gts)
    assert sorted(official) == sorted(CITY19)
    s = meter.scores()
    assert not s['present'].all() and s['present'].sum() >= 15
    assert meter.matrix[:, 19].sum() > 0  # some misses on ignored label ids
    for k, name in enumerate(CITY19):
        if s['present'][k]:
            assert abs(s['iou'][k] - official[name]) < 1e-9, name
        elif not np.isnan(official[name]):  # predicted but no GT: both 0
            assert official[name] == 0.0 and s['iou'][k] == 0.0
    # nothing written anywhere but our own files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in gts + preds])
