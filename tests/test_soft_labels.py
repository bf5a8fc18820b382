"""Tests of issegm/crst/crop_labels.py: the crop's pixel correspondence against the iterator's own
label crop, the region of the full-size map against phase val's full computation, and the soft
label of a crop against soft labels computed on the whole image."""
import numpy as np
import pytest

from issegm.crst import lrent
from issegm.crst.crop_labels import (NetMap, crop_pixel_index, one_hot_labels, probs_at,
                                     probs_region,
                                soft_label_crop)
from issegm.data_iter import crop_arrays
from issegm.sampling import SELF_TRAINING, CropSettings, plan_crop
from issegm.testtime.one_image import upsample_probs


def random_plans(seed, image_hw, crop, stride, count, rates=(0.4, 1.6)):
    """Crop plans as phase train draws them (sampling.plan_crop, self-training rule), with a
    wide scale range so windows grow, shrink and reach past the image."""
    rng = np.random.RandomState(seed)
    dummy = np.zeros(image_hw, np.uint8)
    settings = CropSettings(crop, stride, rates)
    return [plan_crop(rng, dummy, settings, max(image_hw), image_hw, SELF_TRAINING)
            for _ in range(count)]


def net_maps(seed, num_classes, hw, sharpness=3.0):
    """Softmax maps (C, h, w) float32 of random logits, like Predictor.network_probs."""
    rng = np.random.RandomState(seed)
    logits = rng.randn(num_classes, *hw) * sharpness
    e = np.exp(logits - logits.max(axis=0))
    return (e / e.sum(axis=0)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# The pixel behind each label cell

@pytest.mark.parametrize('image_hw, crop, stride', [((45, 77), 32, 8), ((120, 64), 64, 8),
                                                    ((50, 50), 24, 4)])
def test_crop_pixel_index_matches_the_iterators_label_crop(image_hw, crop, stride):
    # Labels 0..254, nearly all different from their neighbours, so a cell taken from any
    # other pixel than the one crop_arrays takes shows up.
    rng = np.random.RandomState(1)
    label = rng.randint(0, 255, image_hw).astype(np.uint8)
    image = np.zeros(image_hw + (3,), np.uint8)
    flat = label.ravel()
    plans = random_plans(2, image_hw, crop, stride, 60)
    assert {p.flip for p in plans} == {True, False}
    assert any(p.side > crop for p in plans) and any(p.side < crop for p in plans)
    assert any(p.top < 0 or p.left < 0 or p.top + p.side > image_hw[0]
               or p.left + p.side > image_hw[1] for p in plans)
    for plan in plans:
        expected = crop_arrays(image, label, plan, crop, None, stride)[1]
        index = crop_pixel_index(plan, image_hw, crop, stride)
        assert index.shape == expected.shape and index.dtype == np.int64
        shown = np.where(index >= 0, flat[np.maximum(index, 0)], 255)
        np.testing.assert_array_equal(shown, expected)
        assert (index >= 0).any()


# ----------------------------------------------------------------------------------------------
# A region of the full-size map

def random_regions(rng, hw, count):
    for _ in range(count):
        r0 = rng.randint(0, hw[0])
        c0 = rng.randint(0, hw[1])
        yield (r0, rng.randint(r0 + 1, hw[0] + 1)), (c0, rng.randint(c0 + 1, hw[1] + 1))
    yield (0, hw[0]), (0, hw[1])  # the whole map
    yield (hw[0] - 1, hw[0]), (0, 1)  # a corner pixel


# (net size, prediction stride, scaled size, original size)
EXACT = [((16, 32), 8, (128, 256), (128, 256)),   # the usual case: scaled == original
         ((13, 25), 8, (100, 197), (100, 197)),   # image not a multiple of the stride
         ((32, 64), 4, (128, 256), (128, 256)),   # --test-steps 2
         ((12, 24), 8, (72, 144), (96, 192)),     # scale ratio 0.75 (bicubic up)
         ((16, 32), 8, (128, 256), (64, 128))]    # ratio 2 (Lanczos down)
ROUNDED = [((12, 25), 8, (90, 187), (97, 201)),   # ratio 0.93 (bicubic up)
           ((16, 32), 8, (128, 250), (101, 199)),  # ratio 1.26 (Lanczos down)
           ((16, 32), 8, (120, 250), (130, 199))]  # up in height, down in width (bilinear)


@pytest.mark.parametrize('net_hw, stride, scaled, original', EXACT)
def test_region_equals_full_upsampling_bit_for_bit(net_hw, stride, scaled, original):
    net = net_maps(3, 5, net_hw)
    full = upsample_probs(net, stride, scaled, original)
    rng = np.random.RandomState(4)
    for rows, cols in random_regions(rng, original, 25):
        region = probs_region(net, stride, scaled, original, rows, cols)
        np.testing.assert_array_equal(region, full[:, rows[0]:rows[1], cols[0]:cols[1]])


@pytest.mark.parametrize('net_hw, stride, scaled, original', ROUNDED)
def test_region_with_other_ratios_equals_full_upsampling_closely(net_hw, stride, scaled,
                                                                 original):
    # Pillow rounds the last resize's box coordinates (c0 * ratio, ...) to float32: its filter
    # coefficients move by ~1e-7 relative, the values by a few 1e-6 (measured <= 2e-6 here on
    # maps in [0, 1]); a neighbouring pixel's value would typically be 1e-2 away.
    net = net_maps(5, 5, net_hw)
    full = upsample_probs(net, stride, scaled, original)
    rng = np.random.RandomState(6)
    for rows, cols in random_regions(rng, original, 25):
        region = probs_region(net, stride, scaled, original, rows, cols)
        np.testing.assert_allclose(region, full[:, rows[0]:rows[1], cols[0]:cols[1]],
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize('geometry', EXACT + ROUNDED)
def test_probs_at_scattered_pixels(geometry):
    # Grid path (scaled == original) and bounding-box path, on label-grid-like pixel sets:
    # rows and columns about every 9 pixels, repeated pixels, the map's edges.
    net_hw, stride, scaled, original = geometry
    net = net_maps(11, 5, net_hw)
    full = upsample_probs(net, stride, scaled, original)
    rng = np.random.RandomState(12)
    h, w = original
    for _ in range(15):
        r0, c0 = rng.randint(0, h // 2), rng.randint(0, w // 2)
        rows = np.arange(r0, h, rng.randint(1, 12))[:20]
        cols = np.arange(c0, w, rng.randint(1, 12))[:20]
        rr, cc = np.meshgrid(rows, cols, indexing='ij')
        keep = rng.rand(*rr.shape) < 0.6
        pick_r, pick_c = rr[keep], cc[keep]
        values = probs_at(net, stride, scaled, original, pick_r, pick_c)
        assert values.shape == (5, pick_r.size) and values.dtype == np.float32
        if geometry in EXACT:
            np.testing.assert_array_equal(values, full[:, pick_r, pick_c])
        else:
            np.testing.assert_allclose(values, full[:, pick_r, pick_c], rtol=0, atol=1e-5)
    edges_r, edges_c = np.array([0, 0, h - 1, h - 1, 0]), np.array([0, w - 1, 0, w - 1, 0])
    values = probs_at(net, stride, scaled, original, edges_r, edges_c)
    np.testing.assert_allclose(values, full[:, edges_r, edges_c], rtol=0,
                               atol=0 if geometry in EXACT else 1e-5)
    with pytest.raises(ValueError):
        probs_at(net, stride, scaled, original, [h], [0])


def test_region_outside_the_map_is_refused():
    net = net_maps(0, 3, (4, 4))
    with pytest.raises(ValueError):
        probs_region(net, 8, (32, 32), (32, 32), (0, 33), (0, 5))
    with pytest.raises(ValueError):
        probs_region(net, 8, (32, 32), (32, 32), (3, 3), (0, 5))
    with pytest.raises(ValueError):
        probs_region(net, 8, (40, 32), (40, 32), (0, 5), (0, 5))  # larger than the upsampling


# ----------------------------------------------------------------------------------------------
# The soft label of a crop against the whole image's

def phase_val_style(net, stride, scaled, original, thr, alpha, prior):
    """Phase val on the whole image: the full map (times the prior), the LR-ENT hard labels,
    and the soft labels of every pixel."""
    probs = upsample_probs(net, stride, scaled, original)
    if prior is not None:
        probs *= prior
    pseudo, _, _ = lrent.lrent_label_maps(probs, thr, alpha)
    return pseudo, lrent.soft_labels(probs, thr, alpha)


CASES = [(EXACT[0], 0.25, False), (EXACT[0], 0.1, True), (EXACT[3], 0.5, False),
         (ROUNDED[0], 0.25, False), (ROUNDED[1], 0.25, True)]


@pytest.mark.parametrize('geometry, alpha, with_prior', CASES)
def test_crop_soft_labels_equal_the_whole_images(geometry, alpha, with_prior):
    net_hw, stride, scaled, original = geometry
    num_classes, crop = 6, 64
    net = net_maps(7, num_classes, net_hw, sharpness=2.0)
    thr = np.array([0.3, 0.0, 0.6, 0.45, 0.9, 0.2])
    prior = None
    if with_prior:
        prior = np.random.RandomState(8).uniform(0.1, 1.0, (num_classes,) + original)
        prior = prior.astype(np.float32)
    pseudo, soft_full = phase_val_style(net, stride, scaled, original, thr, alpha, prior)
    assert 0.1 < (pseudo != 255).mean() < 0.99  # kept and dropped pixels both occur
    image = np.zeros(original + (3,), np.uint8)
    exact = geometry in EXACT
    for plan in random_plans(9, original, crop, 8, 30):
        hard = crop_arrays(image, pseudo, plan, crop, None, 8)[1]
        soft = soft_label_crop(NetMap(net, stride, scaled, original), thr, alpha, plan, crop,
                               hard, stride=8, prior=prior)
        assert soft.shape == (num_classes,) + hard.shape and soft.dtype == np.float32
        index = crop_pixel_index(plan, original, crop, 8)
        labelled = hard != 255
        expected = np.zeros_like(soft)
        rows, cols = np.divmod(index[labelled], original[1])
        expected[:, labelled] = soft_full[:, rows, cols]
        if exact:
            # same p bit for bit, and soft_labels is elementwise over pixels
            np.testing.assert_array_equal(soft, expected)
        else:
            # p within 1e-5 (see above); d log y_k = (d log q_k - sum_j y_j d log q_j) / alpha,
            # so y moves by about 2e-5 / (alpha p) relative: below 1e-4 here (measured 3e-6),
            # while the soft label of a neighbouring pixel differs by ~1e-2
            np.testing.assert_allclose(soft, expected, rtol=0, atol=1e-4)
        assert not soft[:, ~labelled].any()
        np.testing.assert_allclose(soft[:, labelled].sum(axis=0), 1.0, atol=1e-6)
        if exact:
            np.testing.assert_array_equal(np.argmax(soft, axis=0)[labelled], hard[labelled])


def test_crop_without_labelled_cells_is_zero():
    net = net_maps(1, 4, (16, 32))
    plan = random_plans(1, (128, 256), 64, 8, 1)[0]
    hard = np.full((8, 8), 255, np.float32)
    netmap = NetMap(net, 8, (128, 256), (128, 256))
    soft = soft_label_crop(netmap, [0.5] * 4, 0.3, plan, 64, hard)
    assert soft.shape == (4, 8, 8) and not soft.any()
    with pytest.raises(ValueError):
        soft_label_crop(netmap, [0.5] * 4, 0.3, plan, 64, np.zeros((7, 8), np.float32))


def test_one_hot_labels():
    label = np.array([[0, 2, 255], [1, 1, 3]], np.float32)
    out = one_hot_labels(label, 4)
    assert out.shape == (4, 2, 3) and out.dtype == np.float32
    for k in range(4):
        np.testing.assert_array_equal(out[k], (label == k).astype(np.float32))
    assert not out[:, 0, 2].any()
