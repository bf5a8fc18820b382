"""Tests of issegm/cbst.py against slow, plain restatements of yzou2/CBST solve_ST.py
_val_impl (confidence pools, thresholds, pseudo-labels) and data.py parse_split_file."""
import math
import warnings

import numpy as np
import pytest

from issegm import cbst


# ----------------------------------------------------------------------------------------------
# Slow reference: the confidence collection and the threshold rules of _val_impl, written the plain way (per image, per
# class, pools grown with np.append from [0.0], full descending sorts).

def ref_collect(maps, num_classes):
    """Per-class pools as the original built them: created on first prediction as [0.0]."""
    pools = {}
    for prob in maps:
        cls = np.argmax(prob, axis=0).ravel()
        conf = np.max(prob, axis=0).ravel()
        for k in range(num_classes):
            idx = np.flatnonzero(cls == k)  # pixels of class k, row-major order
            if idx.size == 0:
                continue
            keep = idx[0::4]                # indices 0, 4, 8, ... within the class
            pools[k] = np.append(pools.get(k, np.array([0.0])), conf[keep])
    return pools


def ref_thresholds(pools, num_classes, policy, portion):
    cls_thresh = np.zeros(num_classes)
    cls_size = np.zeros(num_classes)
    if policy == 'cb':
        for k in range(num_classes):
            if k not in pools:
                continue
            arr = sorted(pools[k].tolist(), reverse=True)
            n = len(arr)
            t = int(math.floor(n * portion))
            cls_size[k] = n
            if t > 0:
                cls_thresh[k] = arr[t - 1]
    elif policy == 'global':
        allv = [0.0]  # the global pool's own zero ...
        for k in range(num_classes):
            # ... plus one zero per class pool, predicted or not ...
            allv.extend(pools[k][1:].tolist() if k in pools else [])
            allv.append(0.0)
        arr = sorted(allv, reverse=True)
        n = len(arr)
        t = int(math.floor(n * portion))
        cls_size[:] = n
        if t > 0:
            cls_thresh[:] = arr[t - 1]
    else:
        raise AssertionError(policy)
    return cls_thresh, cls_size


def ref_pseudo(prob, cls_thresh):
    """yzou2/CBST issegm/solve_ST.py, _val_impl, pseudo-label assignment, restated: thresholds
    of 0 become 1.0; each float32 class map is divided by its threshold taken as a NumPy float64
    scalar (NumPy 1.x value-based casting: a float32 result) into a float32 array; the label is
    the first argmax of that array, kept where its max is >= 1. NumPy 2 (NEP 50) would divide in
    float64, so the restatement rounds the scalar to float32 itself, as NumPy 1.x did."""
    num_classes = prob.shape[0]
    thr = np.array(cls_thresh, np.float64)
    thr[thr == 0] = 1.0
    rw_probmap = np.zeros(prob.shape, np.float32)
    for k in range(num_classes):
        rw_probmap[k] = np.true_divide(prob[k], np.float32(thr[k]))  # thr[k]: np.float64
    rw = np.argmax(rw_probmap, axis=0).astype(np.uint8)
    pseudo = rw.copy()
    pseudo[np.amax(rw_probmap, axis=0) < 1] = 255
    return pseudo, rw


# ----------------------------------------------------------------------------------------------
# Test maps

def dirichlet_maps(seed, num_maps, num_classes, height, width, absent=(), quantize=None):
    """Random probability maps (float32); classes in `absent` are never predicted; with
    `quantize`, values are rounded to multiples of 1/quantize to force exact ties."""
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.2, 2.0, num_classes)
    maps = []
    for _ in range(num_maps):
        p = rng.dirichlet(alpha, size=(height, width)).transpose(2, 0, 1)
        for k in absent:
            p[k] *= 1e-3
        if quantize:
            p = np.round(p * quantize) / quantize
        maps.append(np.ascontiguousarray(p, dtype=np.float32))
    return maps


PORTIONS = [0.0, 1e-7, 1e-3, 0.05, 0.2, 0.3, 0.5, 0.8, 0.999, 1.0]

CASES = [
    # seed, num_maps, C, H, W, absent classes, quantize
    (0, 3, 19, 23, 37, (), None),
    (1, 4, 19, 40, 64, (3, 16, 17), None),
    (2, 2, 5, 9, 11, (1,), None),
    (3, 3, 19, 31, 50, (0, 18), 8),      # many exact ties
    (4, 1, 16, 120, 200, (5,), None),
    (5, 2, 3, 1, 1, (), None),           # single pixel
]


@pytest.mark.parametrize('policy', ['cb', 'global'])
@pytest.mark.parametrize('case', CASES)
def test_thresholds_match_reference(policy, case):
    seed, num_maps, num_classes, height, width, absent, quantize = case
    maps = dirichlet_maps(seed, num_maps, num_classes, height, width, absent, quantize)
    pool = cbst.ConfidencePool(num_classes, policy)
    for p in maps:
        pool.add(p)
    pools = ref_collect(maps, num_classes)
    for k in absent:
        assert k not in pools
    expected_counts = [pools[k].size - 1 if k in pools else 0 for k in range(num_classes)]
    np.testing.assert_array_equal(pool.num_samples, expected_counts)
    assert pool.num_images == num_maps
    for portion in PORTIONS:
        thr, size = pool.thresholds(portion)
        ref_thr, ref_size = ref_thresholds(pools, num_classes, policy, portion)
        assert thr.dtype == np.float64 and size.dtype == np.float64
        np.testing.assert_array_equal(thr, ref_thr, err_msg='portion %r' % portion)
        np.testing.assert_array_equal(size, ref_size, err_msg='portion %r' % portion)
        # Thresholds are exact float32 values.
        np.testing.assert_array_equal(thr.astype(np.float32).astype(np.float64), thr)
        for k in absent:
            if policy == 'cb':
                assert thr[k] == 0 and size[k] == 0


def test_tiny_portion_gives_zero_and_full_portion_gives_extra_zero():
    maps = dirichlet_maps(7, 1, 4, 8, 8)
    pool = cbst.ConfidencePool(4, 'cb')
    pool.add(maps[0])
    n = pool.num_samples + 1
    thr, size = pool.thresholds(0.5 / n.max())  # t == 0 for every class
    assert (thr == 0).all()
    np.testing.assert_array_equal(size, np.where(pool.num_samples > 0, n, 0))
    thr, _ = pool.thresholds(1.0)  # t == n: the extra leading zero itself
    assert (thr == 0).all()
    top = max(maps[0].max(0).ravel()[np.argmax(maps[0], 0).ravel() == k][0::4].max()
              for k in range(4) if pool.num_samples[k])
    thr, _ = pool.thresholds(1e-9 + 1.0 / n.min())
    assert thr.max() <= top


def test_interleaved_add_and_repeated_thresholds():
    maps = dirichlet_maps(11, 4, 6, 17, 19, absent=(2,))
    for policy in ('cb', 'global'):
        pool = cbst.ConfidencePool(6, policy)
        for i, p in enumerate(maps):
            pool.add(p)
            ref = ref_collect(maps[:i + 1], 6)
            for portion in (0.2, 0.6, 0.2):
                got = pool.thresholds(portion)
                exp = ref_thresholds(ref, 6, policy, portion)
                np.testing.assert_array_equal(got[0], exp[0])
                np.testing.assert_array_equal(got[1], exp[1])


def test_empty_pool():
    cb = cbst.ConfidencePool(19, 'cb')
    thr, size = cb.thresholds(0.5)
    assert (thr == 0).all() and (size == 0).all()
    glob = cbst.ConfidencePool(19, 'global')
    thr, size = glob.thresholds(0.5)
    assert (thr == 0).all() and (size == 20).all()


def test_float64_input_is_handled_as_float32():
    p64 = dirichlet_maps(12, 1, 5, 10, 10)[0].astype(np.float64) * (1 + 1e-9)
    a = cbst.ConfidencePool(5, 'cb')
    a.add(p64)
    b = cbst.ConfidencePool(5, 'cb')
    b.add(p64.astype(np.float32))
    np.testing.assert_array_equal(a.thresholds(0.4)[0], b.thresholds(0.4)[0])


def test_bad_policy_and_inputs():
    with pytest.raises(ValueError, match='bogus'):
        cbst.ConfidencePool(19, 'bogus')
    with pytest.raises(ValueError, match="'CB'"):
        cbst.ConfidencePool(19, 'CB')
    with pytest.raises(ValueError):
        cbst.ConfidencePool(256, 'cb')
    pool = cbst.ConfidencePool(3, 'cb')
    with pytest.raises(ValueError):
        pool.add(np.zeros((4, 2, 2), np.float32))
    with pytest.raises(ValueError):
        pool.add(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError):
        pool.thresholds(1.5)
    with pytest.raises(ValueError):
        pool.thresholds(-0.1)


# ----------------------------------------------------------------------------------------------
# argmax helper

def test_argmax_max_matches_numpy_including_ties_and_nan():
    rng = np.random.default_rng(5)
    for shape in [(19, 33, 45), (2, 1, 7), (7, 100, 3), (1, 4, 4)]:
        p = (rng.integers(0, 4, size=shape) / 4.0).astype(np.float32)  # many ties
        c, m = cbst.argmax_max(p)
        np.testing.assert_array_equal(c, np.argmax(p, 0))
        np.testing.assert_array_equal(m, np.max(p, 0))
        assert c.dtype == np.uint8
    p = rng.random((5, 6, 7)).astype(np.float32)
    p[2, 1, 1] = np.nan
    p[4, 3, 3] = np.nan
    c, _ = cbst.argmax_max(p)
    np.testing.assert_array_equal(c, np.argmax(p, 0))


# ----------------------------------------------------------------------------------------------
# Labelling

@pytest.mark.parametrize('case', CASES[:4])
def test_pseudo_labels_match_loop(case):
    seed, num_maps, num_classes, height, width, absent, quantize = case
    maps = dirichlet_maps(seed + 100, num_maps, num_classes, height, width, absent, quantize)
    pool = cbst.ConfidencePool(num_classes, 'cb')
    for p in maps:
        pool.add(p)
    for portion in (0.0, 0.2, 0.5):
        thr, _ = pool.thresholds(portion)
        for p in maps[:2]:
            ref_pl, ref_rw = ref_pseudo(p, thr)
            pl, rw = cbst.pseudo_label_maps(p, thr)
            assert pl.dtype == np.uint8 and rw.dtype == np.uint8
            np.testing.assert_array_equal(pl, ref_pl)
            np.testing.assert_array_equal(rw, ref_rw)


def test_pseudo_labels_tall_map_blocks_and_selection():
    # Taller than one row block; hand-checkable thresholds.
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(3), size=(150, 4)).transpose(2, 0, 1).astype(np.float32)
    thr = np.array([0.0, 0.5, 0.9])
    pl = cbst.pseudo_label_maps(p, thr)[0]
    ref_pl, _ = ref_pseudo(p, thr)
    np.testing.assert_array_equal(pl, ref_pl)
    # Class 0 has threshold 0 -> 1.0: selected only where p0 == 1 (never here).
    assert not (pl == 0).any()
    # A pixel exactly at its threshold is selected (q == 1 >= 1).
    q = np.zeros((3, 1, 2), np.float32)
    q[1] = np.float32(0.5)
    q[2, 0, 1] = np.float32(0.6)
    np.testing.assert_array_equal(cbst.pseudo_label_maps(q, thr)[0], [[1, 1]])
    with pytest.raises(ValueError):
        cbst.pseudo_label_maps(q, [0.1, 0.2])


# ----------------------------------------------------------------------------------------------
# Mining statistics

def test_mining_global_tie_order():
    # Under 'global' every class has the same size; the original's mining sorts the ratios
    # with NumPy's default argsort (yzou2/CBST issegm/solve_ST.py, _val_impl, "chosen
    # mine_id"), which on NumPy 1.x (1.14.6 there, and 1.23.5) returns classes 0, 16, 15 for
    # 19 equal ratios, under any installed NumPy (util.numpy1_sort). Kept on purpose.
    mine_id, prio = cbst.mining_classes(np.full(19, 1234567.0), 3, 0.001)
    np.testing.assert_array_equal(mine_id, [0, 16, 15])
    assert prio.size == 0
    # The whole order as NumPy 1.23.5's np.argsort(np.full(19, 1 / 19.0)) gives it.
    np.testing.assert_array_equal(
        cbst.mining_classes(np.full(19, 1234567.0), 19, 0.001)[0],
        [0, 16, 15, 14, 13, 12, 11, 10, 17, 9, 7, 6, 5, 4, 3, 2, 1, 8, 18])


def test_mining_cb_cases():
    size = np.array([1000.0, 0, 5, 300, 0, 2, 10000])
    mine_id, prio = cbst.mining_classes(size, 3, 0.001)
    ratio = size / size.sum()
    np.testing.assert_array_equal(mine_id, [1, 4, 5])  # NumPy 1.23.5's np.argsort(ratio)[:3]
    np.testing.assert_array_equal(prio, np.nonzero(ratio < 0.001)[0])
    assert set(mine_id[:2]) == {1, 4}
    np.testing.assert_array_equal(prio, [1, 2, 4, 5])
    assert mine_id.dtype.kind == 'i' and prio.dtype.kind == 'i'
    mine_id, _ = cbst.mining_classes(size, 0, 0.001)
    assert mine_id.size == 0


def test_mining_all_zero_sizes_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with np.errstate(all='raise'):
            mine_id, prio = cbst.mining_classes(np.zeros(19), 3, 0.001)
    np.testing.assert_array_equal(mine_id, [0, 16, 15])  # NumPy 1.23.5's np.argsort, 19 ties
    np.testing.assert_array_equal(prio, np.arange(19))


# ----------------------------------------------------------------------------------------------
# Source sampling (data.py parse_split_file)

def legacy_choice(n, s, seed):
    np.random.seed(seed)
    return np.random.choice(n, s, replace=False)


@pytest.mark.parametrize('seed', [0, 1, 2, 7, 123, 2 ** 31])
def test_select_source_subset_matches_legacy_call(seed):
    for n, s in [(24966, 749), (24966, 0), (9400, 188), (10, 10), (1, 1), (500, 17)]:
        state = np.random.get_state()
        got = cbst.select_source_subset(n, s, seed)
        after = np.random.get_state()
        # The global generator is untouched.
        assert all(np.array_equal(a, b) for a, b in zip(state[1:2], after[1:2]))
        assert state[2:] == after[2:]
        np.testing.assert_array_equal(got, legacy_choice(n, s, seed))
        assert len(set(got.tolist())) == s


@pytest.mark.parametrize('seed', [0, 3, 99])
def test_select_source_subset_cumulative(seed):
    # A larger selection with the same seed extends the smaller one (it is a prefix).
    n = 24966
    sizes = [int(n * port) for port in np.arange(0.03, 0.0601, 0.0025)]
    prev = None
    for s in sizes:
        cur = cbst.select_source_subset(n, s, seed)
        if prev is not None:
            np.testing.assert_array_equal(cur[:prev.size], prev)
            assert set(prev.tolist()) <= set(cur.tolist())
        prev = cur


def _near_tie_cases(rng, size, float32_thresholds):
    """Two-class single pixels whose q = p / threshold ties in one precision only."""
    p = rng.rand(2, size).astype(np.float32)
    if float32_thresholds:  # as from ConfidencePool: float32 values held in float64
        thr = np.stack([np.full(size, 0.3), np.full(size, 0.7)]).astype(np.float32)
        p[1] = (p[0].astype(np.float64) * (float(thr[1, 0]) / float(thr[0, 0]))).astype(np.float32)
        thr = thr.astype(np.float64)
    else:  # any float64 thresholds: the second chosen so the float64 quotients are equal
        t0 = rng.uniform(0.2, 0.9, size)
        thr = np.stack([t0, t0 * p[1].astype(np.float64) / p[0].astype(np.float64)])
    q32 = p / thr.astype(np.float32)
    q64 = p.astype(np.float64) / thr
    return p, thr, q32, q64


@pytest.mark.parametrize('float32_thresholds', [True, False])
def test_pseudo_label_division_follows_float32_as_upstream(float32_thresholds):
    # Near-ties built so that q ties in float32 but not in float64 (float32 thresholds), or in
    # float64 but not in float32 (float64 thresholds): the labels must follow float32.
    rng = np.random.RandomState(0)
    p, thr, q32, q64 = _near_tie_cases(rng, 100000, float32_thresholds)
    if float32_thresholds:
        picked = np.nonzero((q32[0] == q32[1]) & (q64[0] < q64[1]) & (q32[0] >= 1))[0]
    else:
        picked = np.nonzero((q64[0] == q64[1]) & (q32[1] > q32[0]) & (thr[1] < 1)
                            & (thr[1] > 0.05))[0]
    assert picked.size > 10
    for i in picked[:40]:
        prob = p[:, i].reshape(2, 1, 1)
        pseudo, rw = cbst.pseudo_label_maps(prob, thr[:, i])
        ref_pl, ref_rw = ref_pseudo(prob, thr[:, i])
        assert (pseudo[0, 0], rw[0, 0]) == (ref_pl[0, 0], ref_rw[0, 0])
        # float32 decides: a float32 tie gives class 0, a float64 tie broken in float32 class 1
        assert rw[0, 0] == (0 if float32_thresholds else 1)
        assert rw[0, 0] != np.argmax(q64[:, i])


def test_pseudo_label_selection_compares_float32_quotient():
    # A float64 threshold just above its float32 rounding and p equal to that rounding:
    # p / threshold is < 1 in float64 but exactly 1 in float32, so the pixel is selected.
    rng = np.random.RandomState(3)
    t = rng.uniform(0.05, 0.95, 1000)
    t = t[t.astype(np.float32).astype(np.float64) < t][:20]
    assert t.size == 20
    for thr in t:
        prob = np.array([thr, 0.0], np.float32).reshape(2, 1, 1)
        assert float(prob[0, 0, 0]) / thr < 1
        pseudo, _ = cbst.pseudo_label_maps(prob, [thr, 0.5])
        assert pseudo[0, 0] == ref_pseudo(prob, [thr, 0.5])[0][0, 0] == 0
