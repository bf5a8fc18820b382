"""NumPy 1.x's default argsort restated in plain Python: the same order for every input, ties
included, whatever NumPy is installed and whatever the CPU (NumPy >= 1.25 and 2.x pick
vectorised sorts that break ties otherwise)."""
import numpy as np

__all__ = ['argsort_as_numpy1']

# Partitions of at most this many elements + 1 are finished by insertion sort (NumPy 1.x
# numpy/core/src/npysort/quicksort.cpp, SMALL_QUICKSORT).
_SMALL_PARTITION = 15


def _less(a, b):
    """NumPy's sort comparison: NaN is larger than every number (sorts last), NaN ties NaN;
    -0.0 ties 0.0. For ints and bools ``b != b`` is False and this is plain ``a < b``
    (NumPy 1.23 numpy/core/src/common/numpy_tag.h, floating_point_type::less)."""
    return a < b or (b != b and a == a)


def _median_of_three_pivot(keys, order, lo, hi):
    """Order the first, middle and last entries of order[lo..hi], move the median to hi - 1
    and return its key."""
    mid = lo + ((hi - lo) >> 1)
    if _less(keys[order[mid]], keys[order[lo]]):
        order[mid], order[lo] = order[lo], order[mid]
    if _less(keys[order[hi]], keys[order[mid]]):
        order[hi], order[mid] = order[mid], order[hi]
    if _less(keys[order[mid]], keys[order[lo]]):
        order[mid], order[lo] = order[lo], order[mid]
    order[mid], order[hi - 1] = order[hi - 1], order[mid]
    return keys[order[hi - 1]]


def _partition(keys, order, lo, hi):
    """Hoare-style partition of order[lo..hi] (more than 16 entries) around the median of
    three; returns the pivot's final position. The scans stop on keys equal to the pivot,
    which is what spreads ties over both sides."""
    pivot = _median_of_three_pivot(keys, order, lo, hi)
    i, j = lo, hi - 1
    while True:
        i += 1
        while _less(keys[order[i]], pivot):
            i += 1
        j -= 1
        while _less(pivot, keys[order[j]]):
            j -= 1
        if i >= j:
            break
        order[i], order[j] = order[j], order[i]
    order[i], order[hi - 1] = order[hi - 1], order[i]
    return i


def _insertion_sort(keys, order, lo, hi):
    """Straight insertion sort of order[lo..hi]; an entry moves left past strictly larger keys
    only, so equal keys keep their relative positions here."""
    for i in range(lo + 1, hi + 1):
        moving = order[i]
        key = keys[moving]
        j = i
        while j > lo and _less(key, keys[order[j - 1]]):
            order[j] = order[j - 1]
            j -= 1
        order[j] = moving


def _sift_down(keys, order, base, root, size, moving):
    """Place ``moving`` in the max-heap order[base + 1 .. base + size] (1-based positions)
    starting from the hole at ``root``."""
    i, j = root, root * 2
    while j <= size:
        if j < size and _less(keys[order[base + j]], keys[order[base + j + 1]]):
            j += 1
        if not _less(keys[moving], keys[order[base + j]]):
            break
        order[base + i] = order[base + j]
        i, j = j, j * 2
    order[base + i] = moving


def _heap_sort(keys, order, lo, hi):
    """Heapsort of order[lo..hi], the fallback when quicksort recursed too deep (NumPy 1.x
    numpy/core/src/npysort/npysort_heapsort.h, aheapsort_): build the heap from the middle
    down, then repeatedly move the root to the end."""
    base, size = lo - 1, hi - lo + 1  # order[base + k] is heap position k (1-based)
    for root in range(size >> 1, 0, -1):
        _sift_down(keys, order, base, root, size, order[base + root])
    while size > 1:
        moving = order[base + size]
        order[base + size] = order[base + 1]
        size -= 1
        _sift_down(keys, order, base, 1, size, moving)


def argsort_as_numpy1(values):
    """``np.argsort(values)`` (default kind) exactly as NumPy 1.x computes it, as an int64 array.

    ``values``: a 1-D array of bools, ints or floats up to 64 bits. Restates, in our own
    words, NumPy 1.23's introsort ``aquicksort_`` (numpy/core/src/npysort/quicksort.cpp; the
    same algorithm as ``aquicksort_@suff@`` in quicksort.c.src of NumPy 1.12 to 1.21, where
    numpy/numpy#7863 added the heapsort fallback, so also of NumPy 1.14.6, which the original
    ran): partitions larger than 16 entries are split around the median of their first, middle and last keys, the
    larger side is pushed on a stack and the smaller side split again; each partition step
    spends one unit of a depth budget of 2 * floor(log2(n)), checked when a partition is taken
    from the stack, and a partition whose budget ran out is heapsorted (only inputs that
    defeat the median of three get there); partitions of at most
    16 entries are insertion sorted. NaN sorts last. Plain Python: meant for short arrays
    (microseconds for 19 values).
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError('argsort_as_numpy1 needs a 1-D array, got shape %s' % (values.shape,))
    if values.dtype.kind not in 'biuf' or values.dtype.itemsize > 8:
        # (longdouble would lose digits as Python floats)
        raise TypeError('argsort_as_numpy1 sorts bools, ints and floats up to 64 bits, got %s'
                        % values.dtype)
    keys = values.tolist()  # exact Python floats/ints: the same comparisons as the C types
    order = list(range(len(keys)))
    lo, hi = 0, len(keys) - 1
    budget = 2 * (max(len(keys), 1).bit_length() - 1)  # NumPy's npy_get_msb(n) * 2
    pending = []  # (lo, hi, budget) of partitions still to sort
    while True:
        if budget < 0:
            _heap_sort(keys, order, lo, hi)
        else:
            while hi - lo > _SMALL_PARTITION:
                p = _partition(keys, order, lo, hi)
                budget -= 1
                # Keep splitting the smaller side here; the larger one waits on the stack.
                if p - lo < hi - p:
                    pending.append((p + 1, hi, budget))
                    hi = p - 1
                else:
                    pending.append((lo, p - 1, budget))
                    lo = p + 1
            _insertion_sort(keys, order, lo, hi)
        if not pending:
            return np.array(order, dtype=np.int64)
        lo, hi, budget = pending.pop()
