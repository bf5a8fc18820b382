"""The round's health end to end with the narrow model: a round with and without it leaves
every pseudo-label, statistic, list and checkpoint byte-identical; its numbers against plain
restatements from the files phase val wrote; round 1's agreement; an LR-ENT round; the grids;
--no-health on a rerun; the flags' checks."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import on_grid, write_round_data
from issegm.datasets import get_dataset, read_label, read_list

pytestmark = pytest.mark.slow  # subprocesses: not in `make test-quick`
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHESTRATOR = os.path.join(REPO, 'issegm', 'solve_AO.py')
ROUND_SCRIPT = os.path.join(REPO, 'issegm', 'solve_ST.py')
MODEL = 'cityscapes_rna-tiny_cls19_s8'
HEALTH_FILES = ('pseudo_quality.md', 'debug', 'pseudo_grid')
HEALTH_KEYS = ('pseudo_precision', 'pseudo_recall', 'pseudo_kept_share', 'pseudo_precision_total',
               'pseudo_recall_total', 'pseudo_kept_share_total', 'pseudo_confusion',
               'mean_confidence', 'mean_confidence_total', 'mean_entropy', 'mean_entropy_total',
               'agreement', 'agreement_per_class')
OFF = ('--no-health', '--debug-images', '0')
INFO = get_dataset('cityscapes')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_round_data(tmp_path_factory.mktemp('health'))


def run(cmd):
    res = subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def orchestrator(data, output, *extra):
    gta, cs, weights = data
    return run([sys.executable, ORCHESTRATOR, '--num-round', '1', '--epoch-per-round', '1',
                '--test-scales', '96', '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
                '--split', gta / 'train.lst', '--split-tgt', cs / 'val.lst', '--data-root', gta,
                '--data-root-tgt', cs, '--output', output, '--model', MODEL, '--weights',
                weights, '--batch-images', '2', '--crop-size', '64', '--init-tgt-port', '0.3',
                '--init-src-port', '1', '--mine-port', '0.5', '--base-lr', '1e-3', '--gpus',
                'cpu', '--no-progress', '--keep-probmaps'] + list(extra))


def phase_val(data, output, idx_round, weights, *extra):
    _, cs, _ = data
    return run([sys.executable, ROUND_SCRIPT, '--phase', 'val', '--idx-round', idx_round,
                '--dataset', 'gta', '--dataset-tgt', 'cityscapes', '--data-root-tgt', cs,
                '--split-tgt', cs / 'val.lst', '--output', output, '--model', MODEL,
                '--weights', weights, '--gpus', 'cpu', '--test-scales', '96', '--test-flipping',
                '--no-progress', '--keep-probmaps'] + list(extra))


@pytest.fixture(scope='module')
def cbst_round(data, tmp_path_factory):
    """One orchestrator round with the health (3 debug grids) and one without."""
    base = tmp_path_factory.mktemp('cbst_round')
    orchestrator(data, base / 'health', '--debug-images', '3')
    orchestrator(data, base / 'off', *OFF)
    return base / 'health', base / 'off'


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def _comparable(path, root):
    """The bytes of an output file with the run's folder replaced; metrics.json without its
    timing and the health's keys, a phase marker without its command line."""
    with open(path, 'rb') as f:
        raw = f.read().replace(str(root).encode(), b'OUTPUT')
    name = os.path.basename(path)
    if name == 'metrics.json' or name.endswith('.done'):
        obj = json.loads(raw)
        for key in ('timing', 'argv') + HEALTH_KEYS:
            obj.pop(key, None)
        return json.dumps(obj, sort_keys=True).encode()
    return raw


def assert_same_outputs(health, off, skip=('summary.json', 'rounds.png', 'run.json')):
    """Every file of the run without the health is in the run with it, byte for byte (logs and
    the health's own files aside); returns the files compared."""
    ours = [f for f in _files(health) if not f.endswith('.log') and f not in skip
            and not any(part in HEALTH_FILES for part in f.split(os.sep))]
    assert ours == [f for f in _files(off) if not f.endswith('.log') and f not in skip]
    for f in ours:
        assert _comparable(health / f, health) == _comparable(off / f, off), f
    return ours


def assert_known_to_the_layout(output):
    """Every file a run left in OUTPUT is one issegm/rounds/layout.py names."""
    from issegm.rounds.layout import known_file
    written = _files(output)
    assert '.lock' in written and [f for f in written if not known_file(f)] == []


def test_every_file_a_round_writes_is_known_to_the_layout(cbst_round):
    """Both phases, the health, --keep-probmaps, the orchestrator's files: a new output file
    is added to the layout, so that --overwrite and the docs know it."""
    for output in cbst_round:
        assert_known_to_the_layout(output)


def test_the_health_leaves_every_round_output_byte_identical(cbst_round):
    health, off = cbst_round
    compared = assert_same_outputs(health, off)
    kinds = {os.path.splitext(f)[1] for f in compared}
    assert {'.params', '.png', '.npy', '.json', '.lst', '.done'} <= kinds
    assert any(f.startswith(os.path.join('0', 'self_train', 'pseudo_labelIds')) for f in compared)
    assert os.path.join('stats', 'cls_thresh.npy') in compared
    with_keys = json.loads((health / '0' / 'metrics.json').read_text())
    without = json.loads((off / '0' / 'metrics.json').read_text())
    assert list(without) == [k for k in with_keys if k not in HEALTH_KEYS
                             and k not in ('timing',)] + ['timing']
    assert set(HEALTH_KEYS) <= set(with_keys)
    assert 'health_cpu_s_per_image' in with_keys['timing']
    assert 'health_cpu_s_per_image' not in without['timing']
    for name in HEALTH_FILES:
        assert (health / '0' / name).exists() and not (off / '0' / name).exists()


def _names(data):
    return [os.path.splitext(os.path.basename(image))[0]
            for image, _ in read_list(str(data[1] / 'val.lst'))]


def _pseudo(out, idx_round, name):
    """Train ids of a round's pseudo-labels (255: not kept)."""
    return INFO.label_to_train[read_label(str(out / str(idx_round) / 'self_train' /
                                              'pseudo_labelIds' / (name + '.png')))]


def _chosen(out, name):
    """p_c of each kept pixel's pseudo class c on the grid, from the kept full-size map."""
    pseudo = on_grid(_pseudo(out, 0, name)).ravel()
    probs = on_grid(np.load(out / 'probmap' / (name + '.npy'))).reshape(19, -1)
    kept = np.flatnonzero(pseudo != 255)
    return pseudo[kept], probs[pseudo[kept], kept].astype(np.float64)


def test_round_numbers_against_the_files(data, cbst_round):
    """Precision, recall, kept share and confusion restated from the pseudo-label PNGs and the
    ground truth; mean confidence from the kept full-size maps (--keep-probmaps) at the grid's
    pixels; the pseudo-labels kept on the grid for the next round."""
    out, _ = cbst_round
    metrics = json.loads((out / '0' / 'metrics.json').read_text())
    thresh = np.load(out / 'stats' / 'cls_thresh.npy')
    pseudo, gt, classes, chosen = [], [], [], []
    for (_, label), name in zip(read_list(str(data[1] / 'val.lst')), _names(data)):
        pseudo.append(_pseudo(out, 0, name).ravel().astype(int))
        gt.append(INFO.label_to_train[read_label(str(data[1] / label))].ravel().astype(int))
        for part, values in zip((classes, chosen), _chosen(out, name)):
            part.append(values)
        kept_grid = np.load(out / '0' / 'pseudo_grid' / (name + '.npy'))
        np.testing.assert_array_equal(kept_grid, on_grid(_pseudo(out, 0, name)))
        assert kept_grid.dtype == np.uint8
    pseudo, gt = np.concatenate(pseudo), np.concatenate(gt)
    classes, chosen = np.concatenate(classes), np.concatenate(chosen)
    kept, valid = pseudo != 255, gt != 255
    assert kept.any() and (~kept).any() and (~valid).any()
    confusion = [[int(np.sum(kept & (gt == i) & (pseudo == j))) for j in range(19)]
                 for i in range(19)]
    assert metrics['pseudo_confusion'] == confusion
    right = kept & (pseudo == gt)
    assert metrics['pseudo_precision_total'] == pytest.approx(
        right.sum() / (kept & valid).sum(), rel=1e-12)
    assert metrics['pseudo_recall_total'] == pytest.approx(right.sum() / valid.sum(), rel=1e-12)
    assert metrics['pseudo_kept_share_total'] == pytest.approx(
        (kept & valid).sum() / valid.sum(), rel=1e-12)
    for c, name in enumerate(INFO.class_names):
        labelled = np.sum(kept & valid & (pseudo == c))
        assert metrics['pseudo_precision'][name] == (
            None if labelled == 0 else pytest.approx(np.sum(right & (gt == c)) / labelled))
        in_gt = np.sum(gt == c)
        assert metrics['pseudo_recall'][name] == (
            None if in_gt == 0 else pytest.approx(np.sum(right & (gt == c)) / in_gt))
        mine = classes == c
        assert metrics['mean_confidence'][name] == (
            None if not mine.any() else pytest.approx(chosen[mine].mean(), rel=1e-6))
        assert metrics['mean_confidence'][name] is None or \
            metrics['mean_confidence'][name] >= thresh[c] * (1 - 1e-6)
    assert None in metrics['pseudo_precision'].values()  # classes never pseudo-labelled
    assert metrics['mean_confidence_total'] == pytest.approx(chosen.mean(), rel=1e-6)
    assert 0 < metrics['mean_entropy_total'] <= np.log(19)
    assert list(metrics['mean_entropy']) == list(INFO.class_names)
    assert metrics['agreement'] is None  # round 0
    assert set(metrics['agreement_per_class'].values()) == {None}
    table = (out / '0' / 'pseudo_quality.md').read_text()
    assert table.startswith('# Round 0: pseudo-label health')
    assert '| all |  | %.3f |' % metrics['selected_total'] in table


def test_debug_grids_of_the_first_images_in_list_order(data, cbst_round):
    from PIL import Image
    out, _ = cbst_round
    grids = sorted(os.listdir(out / '0' / 'debug'))
    assert grids == sorted(name + '.png' for name in _names(data)[:3])
    for name in grids:
        path = out / '0' / 'debug' / name
        assert path.stat().st_size < 1e6
        assert Image.open(path).size == (5 * 512, 16 + 256)  # 5 panels: with ground truth


def _agreement_keys(metrics):
    return metrics['agreement'], metrics['agreement_per_class']


def test_round_1_agrees_with_round_0(data, cbst_round, tmp_path):
    """Phase val of round 1 (weights of round 0's training) beside round 0's pseudo-labels:
    agreement = share of the grid's pixels kept in both rounds that have the same class. Read
    from round 0's PNGs (a round 0 run with --no-health) or its pseudo_grid files: the same."""
    first, _ = cbst_round
    out = tmp_path / 'run'
    shutil.copytree(first / '0' / 'self_train' / 'pseudo_labelIds',
                    out / '0' / 'self_train' / 'pseudo_labelIds')
    weights = first / '0' / ('%s_ep-0001.params' % MODEL)
    phase_val(data, out, 1, weights)
    metrics = json.loads((out / '1' / 'metrics.json').read_text())
    before = np.concatenate([on_grid(_pseudo(out, 0, n)).ravel() for n in _names(data)])
    now = np.concatenate([on_grid(_pseudo(out, 1, n)).ravel() for n in _names(data)])
    before, now = before.astype(int), now.astype(int)
    both = (before != 255) & (now != 255)
    assert both.any() and (before != now).any()
    assert metrics['agreement'] == pytest.approx(np.sum(both & (before == now)) / both.sum())
    for c, name in enumerate(INFO.class_names):
        mine = both & (now == c)
        assert metrics['agreement_per_class'][name] == (
            None if not mine.any() else pytest.approx(np.sum(mine & (before == c)) /
                                                      mine.sum()))
    assert (out / '1' / 'pseudo_quality.md').read_text().startswith('# Round 1')
    # from round 0's kept grid (its PNGs moved away): the same numbers
    shutil.copytree(first / '0' / 'pseudo_grid', out / '0' / 'pseudo_grid')
    shutil.rmtree(out / '0' / 'self_train')
    res = phase_val(data, out, 1, weights)
    again = json.loads((out / '1' / 'metrics.json').read_text())
    assert _agreement_keys(again) == _agreement_keys(metrics)
    assert 'agreement over 4 of 4 images' in res.stdout + res.stderr


def test_lrent_round_gets_the_keys_and_the_same_outputs(data, tmp_path):
    """An LR-ENT phase val with and without the health: the same pseudo-labels, kept network
    maps, record and statistics; its keys, with the mean confidence of each kept pixel's class
    probability. A rerun with --no-health removes the earlier health files."""
    _, _, weights = data
    health, off = tmp_path / 'health', tmp_path / 'off'
    phase_val(data, health, 0, weights, '--lr-weight-ent', '0.25')
    phase_val(data, off, 0, weights, '--lr-weight-ent', '0.25', *OFF)
    compared = assert_same_outputs(health, off)
    assert_known_to_the_layout(health)
    assert os.path.join('0', 'self_train', 'soft_labels.json') in compared
    assert any(os.sep + 'netmaps' + os.sep in f for f in compared)
    metrics = json.loads((health / '0' / 'metrics.json').read_text())
    assert set(HEALTH_KEYS) <= set(metrics) and metrics['lr_weight_ent'] == 0.25
    chosen = np.concatenate([_chosen(health, name)[1] for name in _names(data)])
    assert metrics['mean_confidence_total'] == pytest.approx(chosen.mean(), rel=1e-6)
    assert metrics['pseudo_precision_total'] is not None
    phase_val(data, health, 0, weights, '--lr-weight-ent', '0.25', '--no-health')
    assert not any((health / '0' / name).exists() for name in HEALTH_FILES)
    assert not set(HEALTH_KEYS) & set(json.loads((health / '0' / 'metrics.json').read_text()))
