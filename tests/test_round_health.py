"""issegm/rounds/health.py and issegm/rounds/debug_grid.py against plain NumPy restatements on
constructed maps: a class never predicted, a class never in the ground truth, images whose
pixels are all ignored, round 0 (no previous pseudo-labels); pseudo_quality.md; the grids."""
import math

import numpy as np
import pytest
from PIL import Image

from conftest import on_grid
from issegm import cbst
from issegm.rounds import debug_grid, health as round_health
from issegm.crst import lrent
from issegm.datasets import get_dataset

C = 4
NAMES = ('road', 'wall', 'sky', 'bus')
# label id -> train id, as the datasets' tables: ids 0 and 5 ignored, 6 also class 1
TABLE = np.full(256, 255, np.uint8)
TABLE[[1, 2, 3, 4, 6]] = [0, 1, 2, 3, 1]
TO_LABEL = np.zeros(256, np.uint8)  # train id -> label id; 255 -> 0 (unkept), as stored
TO_LABEL[[0, 1, 2, 3]] = [1, 2, 3, 4]
NEVER_PREDICTED, NEVER_IN_GT = 3, 2


def constructed_images(seed=0):
    """[(pseudo train ids, gt label ids, previous label ids or None)]: class 3 never pseudo-
    labelled, class 2 never in the ground truth, one image all ignored (gt and pseudo), one
    without previous pseudo-labels; sizes that end on and off the 8-pixel grid."""
    rng = np.random.RandomState(seed)
    images = []
    for i, hw in enumerate([(36, 45), (29, 40), (12, 12), (43, 21)]):
        pseudo = rng.choice(np.array([0, 1, 2, 255], np.uint8), hw)
        gt = rng.choice(np.array([0, 1, 2, 4, 5, 6], np.uint8), hw)  # label id 3 (class 2) never
        previous = TO_LABEL[rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), hw)]
        if i == 2:
            pseudo[:], gt[:] = 255, rng.choice(np.array([0, 5], np.uint8), hw)
        images.append((pseudo, gt, None if i == 3 else previous))
    return images


def ratio(num, den):
    return None if den == 0 else num / den


def restated_quality(images):
    """The pseudo_* keys by the contract's words, pixel by pixel over all images."""
    pseudo = np.concatenate([p.ravel() for p, _, _ in images]).astype(int)
    gt = TABLE[np.concatenate([g.ravel() for _, g, _ in images])].astype(int)
    kept, valid = pseudo != 255, gt != 255
    out = {'pseudo_precision': {}, 'pseudo_recall': {}, 'pseudo_kept_share': {}}
    for c, name in enumerate(NAMES):
        right = np.sum(kept & (pseudo == c) & (gt == c))
        out['pseudo_precision'][name] = ratio(right, np.sum(kept & valid & (pseudo == c)))
        out['pseudo_recall'][name] = ratio(right, np.sum(gt == c))
        out['pseudo_kept_share'][name] = ratio(np.sum(kept & (gt == c)), np.sum(gt == c))
    right = np.sum(kept & valid & (pseudo == gt))
    out['pseudo_precision_total'] = ratio(right, np.sum(kept & valid))
    out['pseudo_recall_total'] = ratio(right, np.sum(valid))
    out['pseudo_kept_share_total'] = ratio(np.sum(kept & valid), np.sum(valid))
    out['pseudo_confusion'] = [[int(np.sum(kept & (gt == i) & (pseudo == j))) for j in range(C)]
                               for i in range(C)]
    return out


def restated_agreement(images):
    """Agreement by the contract's words over the grid's pixels of every image with a
    previous round."""
    pairs = [(on_grid(p).ravel(), on_grid(TABLE[q]).ravel()) for p, _, q in images
             if q is not None]
    if not pairs:
        return None, {name: None for name in NAMES}
    this = np.concatenate([p for p, _ in pairs]).astype(int)
    before = np.concatenate([q for _, q in pairs]).astype(int)
    both = (this != 255) & (before != 255)
    per_class = {name: ratio(np.sum(both & (this == c) & (before == c)),
                             np.sum(both & (this == c))) for c, name in enumerate(NAMES)}
    return ratio(np.sum(both & (this == before)), np.sum(both)), per_class


def assert_same(got, want):
    """Equal dicts / lists / numbers, floats to 1e-12, None for None."""
    if isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif want is None:
        assert got is None
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def accumulate(images, has_gt=True, maps=None):
    """The RoundHealth of [(pseudo, gt, previous)] as phase val counts it: the previous
    round's pseudo-labels on the grid as train ids, confidence from `maps` (C, H, W) or ones."""
    health = round_health.RoundHealth(C, has_gt)
    for i, (pseudo, gt, previous) in enumerate(images):
        probs = maps[i] if maps is not None else np.ones((C,) + pseudo.shape, np.float32)
        image = round_health.image_health(
            pseudo, round_health.grid_confidence(pseudo, probs, C), TABLE,
            gt if has_gt else None,
            None if previous is None else round_health.grid_sample(TABLE[previous]))
        np.testing.assert_array_equal(image.kept, [np.sum(pseudo == c) for c in range(C)])
        health.add(image)
    return health


def test_quality_and_agreement_match_the_restatement():
    images = constructed_images()
    metrics = round_health.health_metrics(accumulate(images), NAMES)
    want = restated_quality(images)
    for key in want:
        assert_same(metrics[key], want[key])
    # the constructed cases are there
    assert metrics['pseudo_precision'][NAMES[NEVER_PREDICTED]] is None
    assert metrics['pseudo_recall'][NAMES[NEVER_PREDICTED]] == 0.0
    assert metrics['pseudo_recall'][NAMES[NEVER_IN_GT]] is None
    assert metrics['pseudo_kept_share'][NAMES[NEVER_IN_GT]] is None
    assert metrics['pseudo_precision'][NAMES[NEVER_IN_GT]] == 0.0
    assert sum(map(sum, metrics['pseudo_confusion'])) > 0
    agreement, per_class = restated_agreement(images)
    assert_same(metrics['agreement'], agreement)
    assert_same(metrics['agreement_per_class'], per_class)
    assert 0 < agreement < 1 and per_class[NAMES[NEVER_PREDICTED]] is None


def test_all_pixels_ignored_and_round_0_give_nulls():
    images = [(np.full((13, 21), 255, np.uint8), np.zeros((13, 21), np.uint8), None)]
    metrics = round_health.health_metrics(accumulate(images), NAMES)
    for key in ('pseudo_precision', 'pseudo_recall', 'pseudo_kept_share', 'mean_confidence',
                'mean_entropy', 'agreement_per_class'):
        assert metrics[key] == {name: None for name in NAMES}, key
    for key in ('pseudo_precision_total', 'pseudo_recall_total', 'pseudo_kept_share_total',
                'mean_confidence_total', 'mean_entropy_total', 'agreement'):
        assert metrics[key] is None, key
    assert metrics['pseudo_confusion'] == [[0] * C] * C
    # kept in both rounds: none (previous round kept nothing) -> null, not 0
    pseudo = np.zeros((9, 9), np.uint8)
    none_before = [(pseudo, np.ones((9, 9), np.uint8), np.zeros((9, 9), np.uint8))]
    metrics = round_health.health_metrics(accumulate(none_before), NAMES)
    assert metrics['agreement'] is None and metrics['pseudo_precision_total'] == 1.0
    # an image smaller than a grid cell has no grid pixel: no confidence, no agreement
    tiny = [(np.zeros((3, 4), np.uint8), np.ones((3, 4), np.uint8), np.ones((3, 4), np.uint8))]
    metrics = round_health.health_metrics(accumulate(tiny), NAMES)
    assert metrics['agreement'] is None and metrics['mean_confidence_total'] is None
    assert metrics['pseudo_precision_total'] == 1.0


def test_without_ground_truth_only_the_label_free_keys():
    images = [(p, None, q) for p, _, q in constructed_images(1)]
    metrics = round_health.health_metrics(accumulate(images, has_gt=False), NAMES)
    assert list(metrics) == ['mean_confidence', 'mean_confidence_total', 'mean_entropy',
                             'mean_entropy_total', 'agreement', 'agreement_per_class']
    with pytest.raises(ValueError, match='without ground truth'):
        accumulate(images, has_gt=True)


@pytest.mark.parametrize('exact_count', [1 << 24, 50])
def test_label_histogram_of_wide_label_ids(monkeypatch, exact_count):
    """Label ids up to 255 folded by a table, pseudo train ids past C; in one slab and in slabs
    of a few rows (OpenCV counts in float32, exact only up to 2**24 per call); class_counts."""
    monkeypatch.setattr(round_health, '_EXACT_COUNT', exact_count)
    rng = np.random.RandomState(3)
    table = np.full(256, 255, np.uint8)
    table[200:256:7] = np.arange(len(range(200, 256, 7))) % C
    labels = rng.randint(0, 256, (29, 11)).astype(np.uint8)
    labels[:, 0] = rng.randint(200, 256, 29)
    pseudo = rng.choice(np.array([0, 1, 3, 7, 255], np.uint8), (29, 11))
    hist = round_health.label_histogram(labels, pseudo, table, C)
    code = lambda m: np.where(m >= C, C, m).astype(int)  # noqa: E731
    want = np.zeros((C + 1,) * 2, np.int64)
    np.add.at(want, (code(table[labels]), code(pseudo)), 1)
    np.testing.assert_array_equal(hist, want)
    assert hist.dtype == np.int64 and hist[:C].sum() > 0
    np.testing.assert_array_equal(round_health.class_counts(pseudo, C),
                                  [np.sum(pseudo == c) for c in range(C)])
    assert round_health.class_counts(pseudo[:0], C).tolist() == [0] * C
    short = round_health.label_histogram(labels, pseudo, table[:10], C)  # ids past the table
    np.testing.assert_array_equal(short.sum(axis=0), want.sum(axis=0))
    assert short[:C].sum() == 0
    with pytest.raises(ValueError, match='differ in size'):
        round_health.label_histogram(labels[:3], pseudo, table, C)


@pytest.mark.parametrize('kind', ['cbst', 'lrent'])
def test_mean_confidence_is_the_probability_compared_with_the_threshold(kind):
    """CBST: p_c of the pseudo class c (where c is the argmax of the prior-weighted map, its
    max); LR-ENT: p_c of the soft label's class; at the grid's pixels. A threshold of 0 (class
    never selected by rank) counts as 1.0, as pass 2 divides by it."""
    rng = np.random.RandomState(4)
    thresholds = np.array([0.3, 0.0, 0.2, 0.9])
    maps, images = [], []
    for hw in [(48, 64), (37, 71)]:
        prob = rng.dirichlet(np.ones(C) * 0.5, size=hw).transpose(2, 0, 1).astype(np.float32)
        if kind == 'cbst':
            pseudo = cbst.pseudo_label_maps(prob, thresholds)[0]
        else:
            pseudo = lrent.lrent_label_maps(prob, thresholds, 0.25)[0]
        maps.append(prob)
        images.append((pseudo, np.zeros(hw, np.uint8), None))
    metrics = round_health.health_metrics(accumulate(images, maps=maps), NAMES)
    probs = np.concatenate([on_grid(m).reshape(C, -1) for m in maps], axis=1)
    pseudo = np.concatenate([on_grid(p).ravel() for p, _, _ in images])
    kept = pseudo != 255
    chosen = probs[pseudo[kept], np.flatnonzero(kept)].astype(np.float64)
    for c, name in enumerate(NAMES):
        mine = pseudo[kept] == c
        assert metrics['mean_confidence'][name] == (
            None if not mine.any() else pytest.approx(chosen[mine].mean(), rel=1e-12))
    assert metrics['mean_confidence_total'] == pytest.approx(chosen.mean(), rel=1e-12)
    assert None in metrics['mean_confidence'].values() and kept.any() and not kept.all()
    # p_c passed its threshold (0 counts as 1.0) for CBST; LR-ENT keeps by another rule
    if kind == 'cbst':
        limit = np.where(thresholds > 0, thresholds, 1.0)[pseudo[kept]]
        assert np.all(chosen >= limit * (1 - 1e-6))


def test_grid_sample_and_shape():
    """The grid takes rows and columns 4, 12, 20, ...; its shape for any size, as a view."""
    array = np.arange(3 * 21 * 13).reshape(3, 21, 13)
    sample = round_health.grid_sample(array)
    np.testing.assert_array_equal(sample, array[:, [4, 12, 20]][:, :, [4, 12]])
    assert np.shares_memory(sample, array)
    for hw in [(21, 13), (4, 5), (5, 4), (1024, 2048), (8, 12)]:
        assert round_health.grid_shape(hw) == on_grid(np.zeros(hw)).shape
    assert round_health.grid_shape((1024, 2048)) == (128, 256)


def test_entropy_per_argmax_class():
    rng = np.random.RandomState(6)
    probs = rng.dirichlet(np.ones(C), size=(5, 7)).transpose(2, 0, 1).astype(np.float32)
    probs[:, 0, 0] = [0, 1, 0, 0]  # entropy 0 (0 log 0 = 0), argmax class 1
    probs[:, 0, 1] = [0.25] * 4  # log 4, argmax class 0 (first of the ties)
    probs[3] = np.minimum(probs[3], 0.01)  # class 3: never the argmax
    p = probs.astype(np.float64)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=0)
    argmax = p.argmax(axis=0)
    health = round_health.RoundHealth(C, False)
    pseudo = np.full((5, 7), 255, np.uint8)
    health.add(round_health.image_health(pseudo, round_health.grid_confidence(pseudo, probs, C),
                                         TABLE))
    health.add_entropy(*round_health.entropy_sums(probs[:, :2]))  # two images
    health.add_entropy(*round_health.entropy_sums(probs[:, 2:]))
    metrics = round_health.health_metrics(health, NAMES)
    for c, name in enumerate(NAMES):
        want = entropy[argmax == c].mean() if np.any(argmax == c) else None
        if want is None:
            assert metrics['mean_entropy'][name] is None
        else:
            assert metrics['mean_entropy'][name] == pytest.approx(want, rel=1e-6)
    assert metrics['mean_entropy']['bus'] is None
    assert metrics['mean_entropy_total'] == pytest.approx(entropy.mean(), rel=1e-6)
    assert 0 < metrics['mean_entropy_total'] < math.log(C)


def test_pseudo_quality_table():
    images = constructed_images()
    metrics = round_health.health_metrics(accumulate(images), NAMES)
    report = dict(round=3, cls_thresh=[0.5, 0.0, 0.25, 0.0],
                  selected_share={name: 0.1 * i for i, name in enumerate(NAMES)},
                  selected_total=0.6, **metrics)
    lines = round_health.quality_table(report, NAMES).splitlines()
    assert lines[0] == '# Round 3: pseudo-label health'
    header = [cell.strip() for cell in lines[2].strip('|').split('|')]
    assert header == ['class', 'threshold', 'selected', 'mean confidence',
                      'mean entropy (nats)', 'agreement', 'kept share', 'precision', 'recall']
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.strip('|').split('|')[1:]]
            for line in lines[4:] if line.startswith('| ')}
    assert list(rows) == list(NAMES) + ['all']
    wall = rows['wall']
    assert wall[0] == '0.0000' and wall[1] == '0.100'
    assert wall[4] == '%.3f' % metrics['agreement_per_class']['wall']
    assert wall[6] == '%.3f' % metrics['pseudo_precision']['wall']
    assert rows['bus'][6] == '-'  # never predicted: no precision
    assert rows['sky'][7] == '-'  # never in the ground truth: no recall
    assert rows['all'][0] == '' and rows['all'][1] == '0.600'
    assert rows['all'][6] == '%.3f' % metrics['pseudo_precision_total']
    assert any(line.startswith('selected: share of all target pixels') for line in lines)
    # without ground truth: no precision, recall or kept-share columns
    no_gt = {k: v for k, v in report.items() if not k.startswith('pseudo_')}
    text = round_health.quality_table(no_gt, NAMES)
    assert 'precision' not in text.splitlines()[2] and 'recall' not in text


# ------------------------------------------------------------------------------ debug grids

def _grid(tmp_path, hw, gt=True):
    info = get_dataset('cityscapes')
    rng = np.random.RandomState(7)
    image = (rng.rand(hw[0], hw[1], 3) * 255).astype(np.uint8)
    argmax = np.zeros(hw, np.uint8)
    argmax[:, hw[1] // 2:] = 10  # road | sky
    pseudo = argmax.copy()
    pseudo[: hw[0] // 2] = 255  # top half not kept
    confidence = np.tile(np.linspace(0, 1, hw[1], dtype=np.float32), (hw[0], 1))
    path = tmp_path / 'debug' / 'a.png'
    size = debug_grid.write_debug_grid(str(path), info, image, (argmax, pseudo, confidence),
                                       argmax if gt else None)
    assert size == path.stat().st_size
    return info, np.asarray(Image.open(path).convert('RGB')), size


def test_debug_grid_panels(tmp_path):
    info, grid, _ = _grid(tmp_path, (64, 128))
    width, top = debug_grid.PANEL_WIDTH, debug_grid.CAPTION_HEIGHT
    assert grid.shape == (top + 256, 5 * width, 3)  # 5 panels of 512x256 under captions
    road = info.palette[info.train_to_label[0]]
    sky = info.palette[info.train_to_label[10]]

    def at(panel, y, x):  # a pixel of a panel, in panel coordinates
        return grid[top + y, panel * width + x]
    assert (at(1, 200, 10) == road).all() and (at(1, 200, 500) == sky).all()  # argmax
    assert (at(2, 10, 10) == 0).all() and (at(2, 10, 500) == 0).all()  # not kept: black
    assert (at(2, 200, 10) == road).all() and (at(2, 200, 500) == sky).all()
    grey = [int(at(3, 100, x)[0]) for x in (2, 256, 509)]  # confidence 0 .. 1, left to right
    assert grey[0] < 10 and 100 < grey[1] < 160 and grey[2] > 245
    assert (at(4, 10, 10) == road).all()  # the ground truth
    assert grid[:top].any()  # captions
    _, no_gt, _ = _grid(tmp_path, (64, 128), gt=False)
    assert no_gt.shape == (top + 256, 4 * width, 3)


def test_debug_grid_of_a_full_size_image_is_under_1_mb(tmp_path):
    _, grid, size = _grid(tmp_path, (1024, 2048))
    assert grid.shape[1] == 5 * debug_grid.PANEL_WIDTH and size < 1e6


# ------------------------------------------------------------------------------------ flags

def test_flags_reach_the_settings_and_are_checked(tmp_path):
    """--debug-images N and --no-health: phase val's settings (not the parsed flags), N >= 0
    checked by the per-round script and, for every round, by the orchestrator before round 0;
    the orchestrator passes them on only when not the defaults, and reruns may change them."""
    from issegm.rounds import orchestrator
    from issegm.rounds.layout import result_argv
    from issegm.rounds.phase_settings import phase_settings
    from util.errors import UserError
    argv = ['--phase', 'val', '--output', str(tmp_path / 'o'),
            '--model', 'cityscapes_rna-a1_cls19_s8', '--weights', str(tmp_path / 'gta_rna-a1_cls19_s8_ep-0000.params')]
    default = phase_settings(argv)
    assert default.no_health is False and default.debug_images == 4
    given = argv + ['--debug-images', '0', '--no-health']
    settings = phase_settings(given)
    assert settings.no_health is True and settings.debug_images == 0
    assert result_argv(given) == result_argv(argv)  # done markers ignore them
    with pytest.raises(UserError, match=r'^--debug-images must be >= 0, got -1$'):
        phase_settings(argv + ['--debug-images', '-1'])
    (tmp_path / 'gta_rna-a1_cls19_s8_ep-0000.params').write_bytes(b'')
    run = orchestrator.parse_args(argv[2:] + ['--num-round', '1'])
    val = orchestrator.phase_arguments(run, next(orchestrator.round_plans(run)),
                                       run.weights)[0]
    assert '--debug-images' not in val and '--no-health' not in val
    run = orchestrator.parse_args(argv[2:] + ['--num-round', '2', '--debug-images', '-2'])
    with pytest.raises(UserError, match='--debug-images must be >= 0, got -2'):
        orchestrator.check_rounds(run)
    settings = orchestrator.result_settings(run)
    assert '--debug-images' not in settings and '--no-health' not in settings


# ------------------------------------------------------------- the previous round's pseudo-labels

def test_previous_grid_from_the_kept_grid_or_the_pngs(tmp_path):
    """Phase val reads the previous round's pseudo-labels on the grid from OUTPUT/R-1/pseudo_grid
    or, without it (--no-health), from its pseudo_labelIds PNGs: the same train ids; none for
    another size or a file that does not read."""
    from issegm.datasets import write_png
    from issegm.rounds.health_thread import previous_grid
    info = get_dataset('cityscapes')
    rng = np.random.RandomState(8)
    pseudo = rng.choice(np.array([0, 5, 10, 18, 255], np.uint8), (37, 50))
    write_png(str(tmp_path / 'self_train' / 'pseudo_labelIds' / 'a.png'),
              info.train_to_label[pseudo])  # as pass 2 writes it (255 -> label id 0)
    from_png = previous_grid(info, str(tmp_path), 'a', (37, 50))
    np.testing.assert_array_equal(from_png, on_grid(pseudo))
    (tmp_path / 'pseudo_grid').mkdir()
    np.save(tmp_path / 'pseudo_grid' / 'a.npy', np.ascontiguousarray(on_grid(pseudo)))
    (tmp_path / 'self_train' / 'pseudo_labelIds' / 'a.png').unlink()
    np.testing.assert_array_equal(previous_grid(info, str(tmp_path), 'a', (37, 50)), from_png)
    assert previous_grid(info, str(tmp_path), 'a', (45, 50)) is None  # another size
    assert previous_grid(info, str(tmp_path), 'b', (37, 50)) is None  # no such image
    assert previous_grid(info, None, 'a', (37, 50)) is None  # round 0
    (tmp_path / 'pseudo_grid' / 'a.npy').write_bytes(b'not an array')
    assert previous_grid(info, str(tmp_path), 'a', (37, 50)) is None
