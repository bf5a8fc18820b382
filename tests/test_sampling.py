"""Training crops (issegm.sampling + data_iter.crop_arrays) against a plain restatement of the
original's FileIter._read (yzou2/CBST issegm/data.py for self-training, issegm/data_src.py for
source training), which builds the whole canvas as the original does."""
import os

import numpy as np
import pytest
from PIL import Image

from issegm import datasets, sampling
from issegm.data_iter import TrainSample, crop_arrays, make_train_crop
from issegm.sampling import SELF_TRAINING, SOURCE_ONLY, CropSettings
from util import image as uimg
from util.errors import UserError

GTA_TABLE = datasets.get_dataset('gta').label_to_train
MEAN = np.array([0.485, 0.456, 0.406]).reshape((1, 1, 3))
STD = np.array([0.229, 0.224, 0.225]).reshape((1, 1, 3))
# label ids of the scenes: road 7, sidewalk 8, building 11, vegetation 21, sky 23, car 26,
# person 24 and bicycle 33 (rare), unlabeled 0
SCENE_IDS = (7, 8, 11, 21, 23, 26, 0)


# ---------------------------------------------------------------- the original, restated

def restated_original(rng, im, label_ids, table, C, s, origin, max_shape, scale_range, rule,
                      mine_port=0.0, mine_id=(), mine_id_priority=()):
    """One crop as the original computes it, full canvas and all.

    Returns (data (3, C, C) float32, label (C/s, C/s) float32, (top, left, side) of the window
    in image coordinates, flip, mined class or None).
    """
    max_h, max_w = max_shape
    h, w = im.shape[:2]
    low, high = [int(r * origin) for r in scale_range]
    min_rate = 1. * low / max(max_h, max_w)
    max_crop = int(C / min_rate)
    if rule == SOURCE_ONLY:
        assert h <= max_h and w <= max_w
    target = rng.randint(low, high + 1)
    rate = 1. * target / (max(h, w) if rule == SOURCE_ONLY else max(max_h, max_w))
    crop = int(C / rate)
    ls = s / rate
    d0 = max(1, int(ls // 2))
    d1 = max(0, int(ls - d0))
    if rule == SOURCE_ONLY:
        n = max(max_crop, max_h, max_w) + d1 + d0
    else:
        n = max(max_crop, h, w) + d1 + d0
    nim = np.zeros((n, n, 3), np.single)
    nim += np.array([0.485, 0.456, 0.406]).reshape((1, 1, 3)) / (1.0 / 255)
    nim[d0:d0 + h, d0:d0 + w, :] = im
    nlabel = 255 * np.ones((n, n), np.uint8)
    nlabel[d0:d0 + h, d0:d0 + w] = table[label_ids]
    rls = ls
    mined = None
    if rule == SELF_TRAINING:
        if rng.rand(1) < mine_port:
            # the original slices with these possibly-float bounds; NumPy < 1.12 truncated them
            r0, r1 = d0 + crop // 2, int(max(1, rls, d0 + h - crop // 2 - 1))
            c0, c1 = d0 + crop // 2, int(max(1, rls, d0 + w - crop // 2 - 1))
            mlabel = 255 * np.ones((n, n), np.uint8)
            mlabel[r0:r1, c0:c1] = nlabel[r0:r1, c0:c1]
            uniq = np.unique(mlabel)
            exist = np.array([a for a in mine_id_priority if a in uniq])
            if exist.size == 0:
                exist = np.array([a for a in mine_id if a in uniq])
            if exist.size != 0:
                mined = exist[int(np.floor(rng.uniform(0, exist.size)))]
                where = np.where(mlabel == mined)
                k = rng.randint(0, len(where[0]), 1)
                sy, sx = where[0][k][0], where[1][k][0]
    if mined is None:
        # float upper bounds, as the original passes them
        sy = rng.randint(0, max(1, rls, d0 + h - crop + 1), 1)[0]
        sx = rng.randint(0, max(1, rls, d0 + w - crop + 1), 1)[0]
        top, left = sy, sx
    else:
        top, left = sy - crop // 2, sx - crop // 2
    flip = rng.randint(2) == 0
    tim = nim[top:top + crop, left:left + crop, :].astype(np.uint8)
    tlabel = nlabel[top:top + crop, left:left + crop]
    assert tim.shape[:2] == tlabel.shape == (crop, crop)
    if C < crop:
        filt = Image.LANCZOS  # the old ANTIALIAS
    elif C > crop:
        filt = Image.BICUBIC
    else:
        filt = Image.BILINEAR
    rim = np.array(Image.fromarray(tim).resize((C, C), filt))
    rlabel = np.array(Image.fromarray(tlabel).resize((C, C), Image.NEAREST))
    rlabel = rlabel[s // 2:C:s, s // 2:C:s]
    if flip:
        rim, rlabel = rim[:, ::-1, :], rlabel[:, ::-1]
    data = rim.astype(np.float32)
    data *= np.float32(1.0 / 255)
    data = data.astype(np.float64)
    data -= MEAN
    data /= STD
    return (data.transpose(2, 0, 1).astype(np.float32), rlabel.astype(np.float32),
            (int(top) - d0, int(left) - d0, crop), bool(flip),
            None if mined is None else int(mined))


def port_crop(rng, im, label_ids, table, C, s, origin, max_shape, scale_range, rule,
              mine_port=0.0, mine_id=(), mine_id_priority=()):
    settings = CropSettings(C, s, scale_range, mine_port, mine_id, mine_id_priority)
    plan = sampling.plan_crop(rng, label_ids, settings, origin, max_shape, rule,
                              label_to_train=table)
    data, label = crop_arrays(im, label_ids, plan, C, table, s)
    return data, label, (plan.top, plan.left, plan.side), plan.flip, plan.mined_class


def scene(seed, h, w, rare=True):
    """Random RGB and blocky label ids with small patches of person (24) and bicycle (33)."""
    rng = np.random.RandomState(seed)
    rgb = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    small = rng.choice(SCENE_IDS, (h // 6 + 1, w // 6 + 1))
    ids = np.kron(small, np.ones((6, 6), np.int64))[:h, :w].astype(np.uint8)
    if rare:
        for cls in (24, 33):
            y, x = rng.randint(0, h - 4), rng.randint(0, w - 4)
            ids[y:y + 4, x:x + 4] = cls
    return rgb, ids


# (name, image hw, C, stride, origin, max shape, scale range, rule, mining)
CASES = [
    ('self-training, no mining', (90, 140), 32, 8, 140, (96, 150), (0.5, 1.5), SELF_TRAINING,
     dict()),
    ('self-training, mining', (90, 140), 32, 8, 140, (96, 150), (0.5, 1.5), SELF_TRAINING,
     dict(mine_port=1.0, mine_id=[13, 18, 8, 0, 11, 2], mine_id_priority=[18, 11, 11, 5])),
    ('self-training, mining, mine_id only', (90, 140), 32, 8, 140, (96, 150), (0.5, 1.5),
     SELF_TRAINING, dict(mine_port=0.6, mine_id=[18, 2, 13, 0], mine_id_priority=[5, 6])),
    ('self-training, no candidate', (90, 140), 32, 8, 140, (96, 150), (0.5, 1.5),
     SELF_TRAINING, dict(mine_port=1.0, mine_id=[3, 4], mine_id_priority=[5])),
    ('self-training, stride 16', (90, 140), 48, 16, 140, (96, 150), (0.5, 1.5), SELF_TRAINING,
     dict(mine_port=0.5, mine_id=[18, 11, 0], mine_id_priority=[11])),
    ('self-training, image larger than max shape', (100, 150), 32, 8, 140, (90, 140),
     (0.6, 1.2), SELF_TRAINING, dict(mine_port=0.5, mine_id=[18, 11])),
    ('self-training, image smaller than the crop', (20, 34), 48, 8, 60, (24, 40), (0.7, 1.3),
     SELF_TRAINING, dict(mine_port=1.0, mine_id=[0, 1, 2, 8, 10, 13])),
    ('train_src, per-image rate', (70, 120), 32, 8, 120, (80, 130), (0.5, 1.5), SOURCE_ONLY,
     dict()),
    ('train_src, stride 16', (80, 130), 48, 16, 130, (80, 130), (0.7, 1.3), SOURCE_ONLY,
     dict()),
    ('train_src, image smaller than the crop', (25, 30), 40, 8, 30, (60, 90), (0.7, 1.3),
     SOURCE_ONLY, dict()),
    ('train_src, small origin (large canvas)', (60, 100), 32, 8, 20, (64, 100), (0.7, 1.3),
     SOURCE_ONLY, dict()),
]


@pytest.mark.slow
@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_crops_bit_exact_against_materialised_canvas(case):
    """(a) data, label, window and flip equal the restated original bit for bit, and (b) the
    same RandomState leaves both in the same state (same draws, same order)."""
    _, hw, C, s, origin, max_shape, scale_range, rule, mining = case
    rgb, ids = scene(hw[0] * 7 + C, *hw)
    mined, flips, windows = 0, set(), set()
    for seed in range(120):
        rng_port, rng_orig = np.random.RandomState(seed), np.random.RandomState(seed)
        got = port_crop(rng_port, rgb, ids, GTA_TABLE, C, s, origin, max_shape, scale_range,
                        rule, **mining)
        expect = restated_original(rng_orig, rgb, ids, GTA_TABLE, C, s, origin, max_shape,
                                   scale_range, rule, **mining)
        assert got[2:] == expect[2:], seed  # window, flip, mined class
        np.testing.assert_array_equal(got[0], expect[0], err_msg=str(seed))
        np.testing.assert_array_equal(got[1], expect[1], err_msg=str(seed))
        assert got[1].shape == (C // s, C // s) and got[0].shape == (3, C, C)
        assert rng_port.randint(2 ** 31) == rng_orig.randint(2 ** 31), seed
        mined += got[4] is not None
        flips.add(got[3])
        windows.add(got[2])
    assert flips == {True, False} and len(windows) > 20
    if 'no mining' in case[0] or 'no candidate' in case[0] or rule == SOURCE_ONLY:
        assert mined == 0
    elif 'mining' in case[0]:
        assert mined > 10


class RecordingState:
    """A RandomState that logs every call (name, arguments)."""

    def __init__(self, seed):
        self._rng = np.random.RandomState(seed)
        self.calls = []

    def __getattr__(self, name):
        method = getattr(self._rng, name)

        def call(*args):
            self.calls.append((name,) + tuple(int(a) if name == 'randint' else a for a in args))
            return method(*args)
        return call


@pytest.mark.parametrize('rule,mining', [
    (SELF_TRAINING, dict()),
    (SELF_TRAINING, dict(mine_port=0.5, mine_id=[18, 0, 13], mine_id_priority=[11])),
    (SOURCE_ONLY, dict()),
])
def test_draw_calls_and_order(rule, mining):
    """(b) The same calls with the same arguments in the same order (randint's float bounds of
    the original compared after truncation); the coin is drawn even when mine_port is 0."""
    rgb, ids = scene(3, 90, 140)
    kinds = set()
    for seed in range(60):
        port, orig = RecordingState(seed), RecordingState(seed)
        sampling.plan_crop(port, ids, CropSettings(32, 8, (0.5, 1.5), **mining), 140,
                           (96, 150), rule, label_to_train=GTA_TABLE)
        restated_original(orig, rgb, ids, GTA_TABLE, 32, 8, 140, (96, 150), (0.5, 1.5), rule,
                          **mining)
        assert port.calls == orig.calls, seed
        names = [c[0] for c in port.calls]
        if rule == SELF_TRAINING:
            assert names[1] == 'rand'
        else:
            assert 'rand' not in names
        kinds.add(tuple(names))
    if mining:
        assert ('randint', 'rand', 'uniform', 'randint', 'randint') in kinds
        assert ('randint', 'rand', 'randint', 'randint', 'randint') in kinds


@pytest.mark.parametrize('label_stride', [1.0, 1.9, 8.7, 12.5, 33.999])
def test_uniform_window_draws_as_the_original_float_bound(label_stride):
    """yzou2/CBST issegm/data.py FileIter._read passes randint the float bound
    max(1, label_stride, pad + h - side + 1); sampling.uniform_window (int(...) of it, the
    QUIRK at sampling._bound) draws the same window, row then column."""
    pad = max(1, int(label_stride // 2))
    for h, w, side in [(40, 60, 48), (40, 60, 12), (90, 30, 31)]:
        geometry = sampling.Geometry(1.0, side, label_stride, pad, 200)
        for seed in range(40):
            rng = np.random.RandomState(seed)
            top = rng.randint(0, max(1, label_stride, pad + h - side + 1), 1)[0]
            left = rng.randint(0, max(1, label_stride, pad + w - side + 1), 1)[0]
            port = sampling.uniform_window(np.random.RandomState(seed), geometry, (h, w))
            assert port == (top, left), (h, w, side, seed)


def test_make_train_crop_reads_and_crops_as_restated(tmp_path):
    """The file path through make_train_crop, for both rules, against the restatement."""
    rgb, ids = scene(11, 70, 110)
    image, label = str(tmp_path / 'im.png'), str(tmp_path / 'lab.png')
    Image.fromarray(rgb).save(image)
    Image.fromarray(ids).save(label)
    for rule, mining in [(SELF_TRAINING, dict(mine_port=0.7, mine_id=(18, 11, 0))),
                         (SOURCE_ONLY, dict())]:
        sample = TrainSample(image, label, GTA_TABLE, 110, (80, 120), rule)
        for seed in range(10):
            data, lab = make_train_crop(sample, seed, CropSettings(32, 8, (0.6, 1.4), **mining))
            expect = restated_original(np.random.RandomState(seed), rgb, ids, GTA_TABLE, 32, 8,
                                       110, (80, 120), (0.6, 1.4), rule, **mining)
            np.testing.assert_array_equal(data, expect[0])
            np.testing.assert_array_equal(lab, expect[1])
    big = TrainSample(image, label, GTA_TABLE, 110, (60, 120), SOURCE_ONLY)
    with pytest.raises(UserError, match=os.path.basename(image)):
        make_train_crop(big, 0, CropSettings(32))


# ---------------------------------------------------------------- pieces of the rule

def test_crop_side_and_target_size():
    assert sampling.crop_side(500) == 504
    assert sampling.crop_side(504) == 504
    assert sampling.crop_side(1, 8) == 8
    assert sampling.crop_side(500, 16) == 512
    assert sampling.target_size_range(2048, (0.7, 1.3)) == (int(0.7 * 2048), int(1.3 * 2048))
    assert sampling.target_size_range(10, (0.7, 1.3)) == (7, 13)
    with pytest.raises(ValueError):
        sampling.target_size_range(1, (0.7, 1.3))
    rng = np.random.RandomState(0)
    label = np.zeros((10, 10), np.uint8)
    sizes = {sampling.plan_crop(rng, label, CropSettings(8), 10, (10, 10)).target_size
             for _ in range(500)}
    assert sizes == set(range(7, 14))  # both ends included


def test_geometry_as_restated():
    """rate, window side, label stride, d0, canvas side for both rules."""
    for rule in (SELF_TRAINING, SOURCE_ONLY):
        for hw, max_shape, origin in [((1024, 2048), (1024, 2048), 2048),
                                      ((1052, 1914), (1052, 1914), 1914),
                                      ((760, 1280), (760, 1280), 1280),
                                      ((500, 700), (760, 1280), 900)]:
            low = int(0.7 * origin)
            for target in (low, origin, int(1.3 * origin)):
                g = sampling.crop_geometry(rule, 504, 8, target, low, hw, max_shape)
                longest = max(hw) if rule == SOURCE_ONLY else max(max_shape)
                rate = 1. * target / longest
                ls = 8 / rate
                d0, d1 = max(1, int(ls // 2)), max(0, int(ls - max(1, int(ls // 2))))
                max_crop = int(504 / (1. * low / max(max_shape)))
                base = max(max_shape) if rule == SOURCE_ONLY else max(hw)
                assert g == (rate, int(504 / rate), ls, d0, max(max_crop, base) + d1 + d0)
    with pytest.raises(ValueError):
        sampling.crop_geometry(SOURCE_ONLY, 504, 8, 1000, 900, (1100, 1914), (1052, 1914))
    with pytest.raises(ValueError):
        sampling.crop_geometry('centred', 504, 8, 1000, 900, (100, 100), (1052, 1914))


def test_mining_region_bounds():
    """(c) rows [d0 + side // 2, int(max(1, ls, d0 + h - side // 2 - 1))), columns alike."""
    seen_float_bound = False
    for h, w in [(90, 140), (30, 40), (10, 12), (200, 60)]:
        for target in (20, 50, 90, 140, 200):
            g = sampling.crop_geometry(SELF_TRAINING, 32, 8, target, 20, (h, w), (96, 150))
            d0, half, ls = g.pad, g.side // 2, g.label_stride
            rows = (d0 + half, int(max(1, ls, d0 + h - half - 1)))
            cols = (d0 + half, int(max(1, ls, d0 + w - half - 1)))
            assert sampling.mining_region(g, (h, w)) == rows + cols
            seen_float_bound |= ls > d0 + h - half - 1
    assert seen_float_bound  # the float label stride bound was exercised


def test_mining_candidates_order():
    """(c) present priority ids in their order (duplicates kept), else present mine ids."""
    present = np.zeros(256, bool)
    present[[2, 5, 9]] = True
    assert sampling.mining_candidates(present, [1, 3], [4]) == []
    assert sampling.mining_candidates(present, [9, 5, 1, 9], [7]) == [9, 5, 9]
    assert sampling.mining_candidates(present, [5, 9], [2, 0, 2]) == [2, 2]
    assert sampling.mining_candidates(present, [5, -1, 300], ()) == [5]
    with pytest.raises(ValueError):
        sampling.mining_candidates(present, [255], ())


def test_mined_class_and_pixel_draws():
    """(c) class = candidates[int(floor(uniform(0, n)))], then the randint(0, count, 1)-th pixel
    of that class in the region, row-major, is the window centre."""
    ids = np.zeros((60, 80), np.uint8)
    ids[20:24, 30:50] = 2
    ids[30:33, 25:28] = 5
    ids[40, 60] = 9
    g = sampling.crop_geometry(SELF_TRAINING, 16, 8, 80, 40, ids.shape, (60, 80))
    r0, r1, c0, c1 = sampling.mining_region(g, ids.shape)
    chosen = set()
    for seed in range(200):
        top, left, cls = sampling.mine_window(np.random.RandomState(seed), ids, g, [9, 2],
                                              [7, 5, 2])
        rng = np.random.RandomState(seed)
        cands = [5, 2]
        expect_cls = cands[int(np.floor(rng.uniform(0, 2)))]
        region = np.full((g.canvas_side, g.canvas_side), 255, np.uint8)
        region[r0:r1, c0:c1] = np.pad(ids, ((g.pad, g.canvas_side - g.pad - 60),
                                            (g.pad, g.canvas_side - g.pad - 80)),
                                      constant_values=255)[r0:r1, c0:c1]
        ys, xs = np.where(region == expect_cls)
        k = rng.randint(0, len(ys), 1)[0]
        assert cls == expect_cls
        assert (top, left) == (ys[k] - g.side // 2, xs[k] - g.side // 2)
        chosen.add(cls)
    assert chosen == {5, 2}


def test_label_grid_after_flip_and_ignore_outside():
    """(d) At rate 1 the window is copied: label[i, j] is the train id of the image pixel shown
    at data row 4 + 8i and column 4 + 8j (3 + 8j when flipped); 255 where that is padding."""
    h, w, C = 40, 100, 64
    yy, xx = np.mgrid[:h, :w]
    rgb = np.stack([yy, xx, np.full_like(yy, 77)], -1).astype(np.uint8)
    ids = ((yy % 16) * 16 + xx % 15).astype(np.uint8)  # 0..254, unique per 16x15 block
    identity = np.arange(256, dtype=np.uint8)
    flips, outside = set(), 0
    for seed in range(40):
        plan = sampling.plan_crop(np.random.RandomState(seed), ids, CropSettings(C, 8, (1.0, 1.0)),
                                  1000, (h, 1000), SELF_TRAINING)
        assert plan.side == C
        data, label = crop_arrays(rgb, ids, plan, C, identity, 8)
        shown = np.round((data.transpose(1, 2, 0) * STD[0] + MEAN[0]) * 255).astype(int)
        flips.add(plan.flip)
        col0 = 3 if plan.flip else 4
        for i in range(C // 8):
            for j in range(C // 8):
                r, c = 4 + 8 * i, col0 + 8 * j
                y = plan.top + r
                x = plan.left + (C - 1 - c if plan.flip else c)
                if 0 <= y < h and 0 <= x < w:
                    assert tuple(shown[r, c]) == (y, x, 77)
                    assert label[i, j] == ids[y, x]
                else:
                    assert tuple(shown[r, c]) == uimg.PAD_UINT8
                    assert label[i, j] == 255
                    outside += 1
    assert flips == {True, False} and outside > 0


def test_window_placement():
    """(e) Uniform windows keep their bottom/right edge inside the image when side <= h, w and
    reach at most d0 pixels past its top/left (the original's border); mined windows lie inside
    the image; every window lies inside the original's canvas."""
    rgb, ids = scene(5, 120, 160)
    tops = set()
    for seed in range(400):
        crops = CropSettings(32, 8, (0.5, 1.5), mine_port=0.3, mine_id=[18, 11])
        plan = sampling.plan_crop(np.random.RandomState(seed), ids, crops, 160, (120, 160),
                                  SELF_TRAINING, label_to_train=GTA_TABLE)
        g = plan.geometry
        assert plan.side <= 120
        assert -g.pad <= plan.top and plan.top + plan.side <= 120
        assert -g.pad <= plan.left and plan.left + plan.side <= 160
        assert 0 <= plan.top + g.pad <= g.canvas_side - plan.side
        if plan.mined_class is not None:
            assert plan.top >= 0 and plan.left >= 0
            cy, cx = plan.top + plan.side // 2, plan.left + plan.side // 2
            assert GTA_TABLE[ids[cy, cx]] == plan.mined_class
        tops.add(plan.top)
    assert min(tops) < 0  # the border is reachable


def test_pad_colour():
    """(f) Data outside the image is the truncated mean colour (123, 116, 103)."""
    assert uimg.PAD_UINT8 == (123, 116, 103)
    canvas = np.zeros((1, 1, 3), np.single)
    canvas += np.array([0.485, 0.456, 0.406]).reshape((1, 1, 3)) / (1.0 / 255)
    assert tuple(canvas.astype(np.uint8)[0, 0]) == (123, 116, 103)
    rgb, ids = scene(2, 12, 16)
    plan = sampling.plan_crop(np.random.RandomState(0), ids, CropSettings(64, 8, (1.0, 1.0)), 16,
                              (12, 16), SOURCE_ONLY)
    data, label = crop_arrays(rgb, ids, plan, 64, GTA_TABLE, 8)
    expect = ((np.array([123, 116, 103], np.float32) * np.float32(1.0 / 255)).astype(np.float64)
              - MEAN[0, 0]) / STD[0, 0]
    assert plan.side == 64 and plan.top <= 4  # rate 1: window rows 40.. are below the image
    bottom = data[:, 40:, :].reshape(3, -1)
    np.testing.assert_array_equal(bottom, np.repeat(expect.astype(np.float32)[:, None],
                                                    bottom.shape[1], 1))
    assert (label[5:, :] == 255).all()
