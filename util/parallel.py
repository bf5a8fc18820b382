"""A function over many files in worker processes, results in order, with a progress bar."""
import multiprocessing
import os

from tqdm import tqdm

__all__ = ['default_workers', 'map_in_processes']


def default_workers():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def map_in_processes(fn, items, workers=None, progress=True, desc=None, unit='file'):
    """[fn(item) for item in items] computed by `workers` processes (default: every core; 1
    runs inline), in the items' order, with a tqdm bar unless `progress` is False. `fn` must
    be picklable (a module-level function or a functools.partial of one)."""
    items = list(items)
    workers = min(workers or default_workers(), max(1, len(items)))
    bar = dict(total=len(items), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True)
    if workers <= 1:
        return [fn(item) for item in tqdm(items, **bar)]
    # Small chunks keep the bar moving; a few per worker amortise the inter-process traffic.
    chunk = max(1, min(16, len(items) // (8 * workers)))
    with multiprocessing.Pool(workers) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=chunk), **bar))
