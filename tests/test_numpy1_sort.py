"""util.numpy1_sort.argsort_as_numpy1 against the orders NumPy 1.23.5's np.argsort gave
(tests/fixtures/numpy1_argsort_orders.txt, written by make_numpy1_argsort_orders.py there): the
same orders under any installed NumPy (1.26 and 2.x break ties otherwise). No MXNet."""
import os

import numpy as np
import pytest

import util.numpy1_sort as numpy1_sort
from util.numpy1_sort import argsort_as_numpy1

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures',
                       'numpy1_argsort_orders.txt')


def recorded_cases():
    """[(values, expected order)] from the fixture, values in their recorded dtype."""
    cases = []
    with open(FIXTURE) as f:
        for line in f:
            if line.startswith('#'):
                continue
            dtype, values, order = line.rstrip('\n').split('\t')
            parse = float if dtype.startswith('float') else int
            values = np.array([parse(v) for v in values.split()]).astype(dtype)
            cases.append((values, np.array(order.split(), dtype=np.int64)))
    return cases


CASES = recorded_cases()


def test_every_recorded_order_is_reproduced():
    wrong = [(values.dtype.name, values.tolist()) for values, expected in CASES
             if not np.array_equal(argsort_as_numpy1(values), expected)]
    assert not wrong, '%d of %d orders differ, first: %s' % (len(wrong), len(CASES), wrong[0])


def test_the_recorded_cases_are_rich_in_ties():
    assert len(CASES) >= 2000
    with_ties = [v for v, _ in CASES if np.unique(v).size < v.size]
    assert len(with_ties) >= 2000
    lengths = {v.size for v, _ in CASES}
    assert set(range(1, 41)) <= lengths
    dtypes = {v.dtype.name for v, _ in CASES}
    assert {'float32', 'float64', 'int64', 'uint8', 'bool', 'float16'} <= dtypes
    # Mining's own shapes: all 19 (and 16) ratios equal, and many zero ratios.
    assert any(v.size == 19 and v.dtype == np.float64 and np.all(v == v[0]) and v[0] > 0
               for v, _ in CASES)
    assert sum(v.size in (16, 19) and np.sum(v == 0) >= 3 for v, _ in CASES) >= 100
    assert any(np.isnan(v).sum() >= 2 for v, _ in CASES if v.dtype.kind == 'f')
    assert any(np.any(np.signbit(v) & (v == 0)) and np.any(~np.signbit(v) & (v == 0))
               for v, _ in CASES if v.dtype.kind == 'f')


def test_global_mining_ties():
    # The orders NumPy 1.14.6 and 1.23.5 give all-equal ratios, as the original's mining sorts
    # them (yzou2/CBST issegm/solve_ST.py, _val_impl, "chosen mine_id", on NumPy 1.14.6).
    np.testing.assert_array_equal(argsort_as_numpy1(np.full(19, 1 / 19.0))[:3], [0, 16, 15])
    np.testing.assert_array_equal(
        argsort_as_numpy1(np.full(19, 1 / 19.0)),
        [0, 16, 15, 14, 13, 12, 11, 10, 17, 9, 7, 6, 5, 4, 3, 2, 1, 8, 18])
    # 16 or fewer entries are insertion sorted: equal keys keep their order.
    np.testing.assert_array_equal(argsort_as_numpy1(np.full(16, 1 / 16.0)), np.arange(16))


def test_the_heapsort_fallback_is_exercised(monkeypatch):
    # The fixture's adversarial cases (McIlroy's killer, some with ties) exhaust the depth
    # budget; their recorded orders are checked above, here that they reach the fallback.
    calls = []
    heap_sort = numpy1_sort._heap_sort
    monkeypatch.setattr(numpy1_sort, '_heap_sort', lambda *a: calls.append(a) or heap_sort(*a))
    for values, expected in CASES:
        if values.size >= 37:  # McIlroy's adversary reaches it from 37 entries on
            before = len(calls)
            np.testing.assert_array_equal(argsort_as_numpy1(values), expected)
            if len(calls) > before and np.unique(values).size < values.size:
                return
    pytest.fail('no recorded case with ties reaches the heapsort fallback')


@pytest.mark.skipif(not np.__version__.startswith('1.23.'),
                    reason='np.argsort is the original one only on NumPy 1.23 (pinned)')
def test_matches_np_argsort_on_new_random_arrays_under_the_pinned_numpy():
    rng = np.random.RandomState(2026)
    for _ in range(500):
        n = rng.randint(1, 80)
        values = rng.randint(0, rng.randint(1, 6), n) / 4.0
        values[rng.rand(n) < 0.1] = np.nan
        for dtype in (np.float32, np.float64):
            v = values.astype(dtype)
            np.testing.assert_array_equal(argsort_as_numpy1(v), np.argsort(v))


def test_input_checks():
    assert argsort_as_numpy1(np.zeros(0)).dtype == np.int64
    assert argsort_as_numpy1(np.zeros(0)).size == 0
    np.testing.assert_array_equal(argsort_as_numpy1([3, 1, 2]), [1, 2, 0])
    with pytest.raises(ValueError, match='1-D'):
        argsort_as_numpy1(np.zeros((2, 3)))
    with pytest.raises(TypeError, match='complex128'):
        argsort_as_numpy1(np.zeros(3, complex))
    with pytest.raises(TypeError):
        argsort_as_numpy1(np.array(['b', 'a']))
