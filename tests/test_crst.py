"""Tests of issegm/crst/lrent.py (LR-ENT soft pseudo-labels and selection) against plain
restatements
of yzou2/CRST crst_seg.py, label_selection."""
import numpy as np
import pytest

from issegm import cbst
from issegm.crst import lrent


# ----------------------------------------------------------------------------------------------
# Plain restatements of yzou2/CRST crst_seg.py, label_selection (kc_policy 'cb',
# lr_weight_ent > 0), with the two changes this port makes on purpose: thresholds of 0 become
# 1.0 (CBST's rule) and p is clipped at 0.

def ref_quotient(prob, cls_thresh):
    """q = p / t per class: p clipped at 0, t float32 with 0 -> 1.0, a float32 division."""
    thr = np.array(cls_thresh, np.float64)
    thr[thr == 0] = 1.0
    thr = thr.astype(np.float32)
    p = np.clip(np.asarray(prob, np.float32), 0, None)
    q = np.zeros(p.shape, np.float32)
    for k in range(p.shape[0]):
        q[k] = p[k] / thr[k]
    return p, q, thr


def ref_soft_direct(prob, cls_thresh, alpha):
    """The original's soft_pseudo_label = power(q, 1 / alpha), normalised over classes, but in
    float64 (the original's float32 power overflows much sooner)."""
    _, q, _ = ref_quotient(prob, cls_thresh)
    soft = np.power(q.astype(np.float64), 1.0 / alpha)
    return soft / soft.sum(axis=0)


def ref_soft_ratio(prob, cls_thresh, alpha):
    """The same y_k written as 1 / sum_j (q_j / q_k)^(1/alpha): a ratio that overflows gives
    y_k = 0, which is the limit, so this form holds for any alpha (q_k > 0 at some class)."""
    _, q, _ = ref_quotient(prob, cls_thresh)
    q = q.astype(np.float64)
    out = np.zeros(q.shape)
    with np.errstate(over='ignore', divide='ignore', invalid='ignore'):
        for k in range(q.shape[0]):
            total = np.zeros(q.shape[1:])
            for j in range(q.shape[0]):
                total += np.power(q[j] / q[k], 1.0 / alpha)
            out[k] = 1.0 / total
    return np.nan_to_num(out, nan=0.0)


def ref_label_selection(prob, cls_thresh, alpha):
    """(pseudo, rw, margin) restated: hard label argmax of the soft label, reg and sel with
    log(x + 1e-32), 255 where reg >= sel; margin = sel - reg (to skip near-ties)."""
    p, q, thr = ref_quotient(prob, cls_thresh)
    soft = ref_soft_direct(prob, cls_thresh, alpha)
    rw = np.argmax(soft, axis=0).astype(np.uint8)
    p64 = p.astype(np.float64)
    reg = np.zeros(p.shape[1:])
    sel = np.zeros(p.shape[1:])
    for k in range(p.shape[0]):
        reg += -soft[k] * np.log(p64[k] + 1e-32) + alpha * soft[k] * np.log(soft[k] + 1e-32)
        sel += -soft[k] * np.log(np.float64(thr[k]) + 1e-32)
    pseudo = rw.copy()
    pseudo[reg >= sel] = 255
    return pseudo, rw, sel - reg


# ----------------------------------------------------------------------------------------------
# Maps

def random_maps(seed, num_classes=19, height=21, width=37, concentration=0.5, undershoot=0.0):
    """Dirichlet class maps (C, H, W) float32; `undershoot` subtracts up to that much (bicubic
    upsampling's small negative values)."""
    rng = np.random.RandomState(seed)
    prob = rng.dirichlet(np.full(num_classes, concentration), size=(height, width))
    prob = prob.transpose(2, 0, 1)
    if undershoot:
        prob = prob - undershoot * rng.rand(*prob.shape)
    return prob.astype(np.float32)


def random_thresholds(seed, num_classes=19, zeros=(3, 11)):
    rng = np.random.RandomState(seed + 1000)
    thr = rng.uniform(0.05, 0.95, num_classes)
    thr[list(zeros)] = 0.0  # classes without a threshold of their own: 1.0
    return thr


# ----------------------------------------------------------------------------------------------
# Soft labels

@pytest.mark.parametrize('alpha', [2.0, 1.0, 0.5, 0.25, 0.1])
@pytest.mark.parametrize('seed', [0, 1])
def test_soft_labels_equal_direct_power(alpha, seed):
    prob = random_maps(seed, undershoot=0.01)
    thr = random_thresholds(seed)
    ref = ref_soft_direct(prob, thr, alpha)
    assert np.all(np.isfinite(ref))  # no overflow at these alphas: the direct form is the truth
    ours = lrent.soft_labels(prob, thr, alpha)
    assert ours.dtype == np.float32 and ours.shape == prob.shape
    # float32 rounding of y, relative (denormal float32 values: absolute)
    np.testing.assert_allclose(ours, ref, rtol=2e-7, atol=1e-40)


@pytest.mark.parametrize('alpha', [1.0, 0.25, 0.05])
def test_soft_labels_sum_to_one_and_argmax_is_argmax_of_quotient(alpha):
    prob = random_maps(5, undershoot=0.02)
    thr = random_thresholds(5)
    y = lrent.soft_labels(prob, thr, alpha)
    np.testing.assert_allclose(y.astype(np.float64).sum(axis=0), 1.0, atol=2e-6)
    _, q, _ = ref_quotient(prob, thr)
    np.testing.assert_array_equal(np.argmax(y, axis=0), np.argmax(q, axis=0))


def test_small_alpha_overflows_a_direct_power_but_not_log_space():
    # q up to 1 / 0.01 = 100: 100^(1/0.05) = 1e40 overflows float32 (the original's dtype).
    prob = random_maps(7, num_classes=5, concentration=0.2)
    thr = np.array([0.01, 0.02, 0.5, 0.9, 0.3])
    _, q, _ = ref_quotient(prob, thr)
    with np.errstate(over='ignore', invalid='ignore'):
        direct32 = np.power(q, np.float32(1.0 / 0.05))
        direct32 = direct32 / direct32.sum(axis=0)
    assert not np.all(np.isfinite(direct32))  # the released code's NaN soft labels
    ours = lrent.soft_labels(prob, thr, 0.05)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, ref_soft_direct(prob, thr, 0.05), rtol=2e-7, atol=1e-40)

    # alpha = 0.002: the power overflows even float64 (100^500); the ratio form still holds.
    with np.errstate(over='ignore', invalid='ignore'):
        assert not np.all(np.isfinite(ref_soft_direct(prob, thr, 0.002)))
    ours = lrent.soft_labels(prob, thr, 0.002)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, ref_soft_ratio(prob, thr, 0.002), rtol=2e-7, atol=1e-40)


def test_ratio_form_agrees_with_direct_power():
    # The second restatement is itself checked where both are finite.
    prob = random_maps(8, num_classes=6)
    thr = random_thresholds(8, num_classes=6, zeros=(2,))
    np.testing.assert_allclose(ref_soft_ratio(prob, thr, 0.3), ref_soft_direct(prob, thr, 0.3),
                               rtol=1e-12, atol=1e-300)


def test_pixel_without_positive_probability():
    prob = random_maps(9, num_classes=4, height=3, width=4)
    prob[:, 1, 2] = [-1e-4, 0.0, -2e-3, 0.0]  # every p <= 0 after bicubic undershoot
    thr = np.array([0.2, 0.4, 0.0, 0.8])
    y = lrent.soft_labels(prob, thr, 0.5)
    assert np.all(np.isfinite(y))
    # the limit of equal p: y_k proportional to t_k^(-1/alpha), t = 0 -> 1
    expect = np.array([0.2, 0.4, 1.0, 0.8]) ** -2.0
    np.testing.assert_allclose(y[:, 1, 2], expect / expect.sum(), rtol=2e-7)
    pseudo, _, _ = lrent.lrent_label_maps(prob, thr, 0.5)
    assert pseudo[1, 2] == 255


def test_out_argument_and_float64_input():
    prob = random_maps(10, num_classes=4)
    thr = random_thresholds(10, num_classes=4, zeros=())
    out = np.full(prob.shape, -1, np.float32)
    res = lrent.soft_labels(prob.astype(np.float64), thr, 0.4, out=out)
    assert res is out
    np.testing.assert_array_equal(out, lrent.soft_labels(prob, thr, 0.4))
    with pytest.raises(ValueError):
        lrent.soft_labels(prob, thr, 0.4, out=np.empty(prob.shape, np.float64))


# ----------------------------------------------------------------------------------------------
# Selection

@pytest.mark.parametrize('alpha', [1.0, 0.5, 0.25, 0.1])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_selection_matches_reference(alpha, seed):
    prob = random_maps(seed, height=27, width=41, undershoot=0.005)  # 27 rows: 4 blocks
    thr = random_thresholds(seed)
    pseudo, rw, kept = lrent.lrent_label_maps(prob, thr, alpha)
    ref_pseudo, ref_rw, margin = ref_label_selection(prob, thr, alpha)
    np.testing.assert_array_equal(rw, ref_rw)
    clear = np.abs(margin) > 1e-9  # away from reg == sel, where float64 rounding decides
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(pseudo[clear], ref_pseudo[clear])
    if alpha < 1:
        assert 0 < (pseudo != 255).sum() < pseudo.size  # both outcomes occur
    else:  # sum_k p_k / t_k >= sum_k p_k = 1 when every t <= 1: all kept (up to undershoot)
        assert (pseudo != 255).mean() > 0.99
    np.testing.assert_array_equal(kept, np.bincount(pseudo.ravel(), minlength=256)[:19])
    assert pseudo.dtype == rw.dtype == np.uint8 and kept.dtype == np.int64


def test_selection_without_epsilons_is_sum_of_powers_above_one():
    # reg - sel = -alpha * log sum_k q_k^(1/alpha) when the epsilons do not matter.
    prob = random_maps(3, height=30, width=30, concentration=1.0)
    thr = random_thresholds(3)
    alpha = 0.3
    pseudo, _, _ = lrent.lrent_label_maps(prob, thr, alpha)
    _, q, _ = ref_quotient(prob, thr)
    total = np.power(q.astype(np.float64), 1 / alpha).sum(axis=0)
    clear = np.abs(np.log(total)) > 1e-9
    np.testing.assert_array_equal((pseudo != 255)[clear], (total > 1)[clear])


def test_small_alpha_keeps_cbst_selection():
    # As alpha -> 0 the kept set tends to CBST's (max_k p_k / t_k >= 1); pixels whose max q is
    # within 2% of 1 are left out (there the limit is not reached at alpha = 1e-3).
    prob = random_maps(4, height=40, width=50, concentration=0.3)
    thr = random_thresholds(4)
    pseudo, rw, _ = lrent.lrent_label_maps(prob, thr, 1e-3)
    cbst_pseudo, cbst_rw = cbst.pseudo_label_maps(prob, thr)
    _, q, _ = ref_quotient(prob, thr)
    top = q.max(axis=0)
    clear = np.abs(top - 1) > 0.02
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(rw, cbst_rw)
    np.testing.assert_array_equal(pseudo[clear], cbst_pseudo[clear])
    # at alpha = 1 the two differ (the soft selection keeps less confident pixels too)
    pseudo_1, _, _ = lrent.lrent_label_maps(prob, thr, 1.0)
    assert np.any(pseudo_1[clear] != cbst_pseudo[clear])


def test_tall_map_uses_blocks():
    # 1000 rows x 3 columns: many blocks; equal to computing each row on its own.
    prob = random_maps(12, num_classes=5, height=1000, width=3)
    thr = random_thresholds(12, num_classes=5, zeros=(1,))
    pseudo, rw, kept = lrent.lrent_label_maps(prob, thr, 0.2)
    y = lrent.soft_labels(prob, thr, 0.2)
    for r in (0, 7, 8, 9, 511, 999):
        p1, rw1, _ = lrent.lrent_label_maps(prob[:, r:r + 1], thr, 0.2)
        np.testing.assert_array_equal(p1[0], pseudo[r])
        np.testing.assert_array_equal(rw1[0], rw[r])
        np.testing.assert_array_equal(lrent.soft_labels(prob[:, r:r + 1], thr, 0.2)[:, 0], y[:, r])
    assert kept.sum() == (pseudo != 255).sum()


@pytest.mark.parametrize('alpha', [0, -0.25, float('nan'), float('inf'), 'x'])
def test_bad_alpha(alpha):
    prob = random_maps(0, num_classes=3, height=2, width=2)
    with pytest.raises(ValueError):
        lrent.soft_labels(prob, [0.5, 0.5, 0.5], alpha)
    with pytest.raises(ValueError):
        lrent.lrent_label_maps(prob, [0.5, 0.5, 0.5], alpha)


def test_bad_maps_and_thresholds():
    prob = random_maps(0, num_classes=3, height=2, width=2)
    with pytest.raises(ValueError):
        lrent.soft_labels(prob, [0.5, 0.5], 0.5)  # 2 thresholds for 3 classes
    with pytest.raises(ValueError):
        lrent.soft_labels(prob[0], [0.5], 0.5)  # not (C, H, W)
    with pytest.raises(TypeError):
        lrent.lrent_label_maps(prob.astype(np.int32), [0.5, 0.5, 0.5], 0.5)
