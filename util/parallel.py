"""A function over many files in worker processes, results in order, with a progress bar."""
import multiprocessing
import os
import signal
import sys

from tqdm import tqdm

__all__ = ['default_workers', 'map_in_processes']


def default_workers():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)


def _worker_signals():
    """A pool worker leaves Ctrl-C to its parent, which then terminates the pool (SIGTERM);
    SIGTERM ends the worker through SystemExit, so its `finally` blocks run (a file being
    written under a temporary name is removed, util/files.py atomic_path) and it exits without
    multiprocessing's `Process ForkPoolWorker-N:` traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


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
    with multiprocessing.Pool(workers, initializer=_worker_signals) as pool:
        return list(tqdm(pool.imap(fn, items, chunksize=chunk), **bar))
