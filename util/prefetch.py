"""Run a function over a list of jobs ahead of the consumer, with threads or forked processes:

    with Prefetcher(fn, num_workers=4, kind='process', ahead=8) as pre:
        for result in pre.map(jobs):   # results in job order
            ...
"""
import collections
import multiprocessing
import signal
from concurrent import futures

import cv2

from util.errors import UserError

__all__ = ['Closing', 'Prefetcher', 'KINDS']

KINDS = ('thread', 'process')


def _process_worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)


def _clean(exc):
    """Drop the chained (remote) traceback so the error reads as raised here."""
    exc.__cause__ = None
    exc.__suppress_context__ = True
    return exc


class Closing:
    """Mixin for objects holding workers: `with` and garbage collection call `close()`."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class Prefetcher(Closing):
    """A pool of workers computing fn(job) ahead of the consumer, results in order."""

    def __init__(self, fn, num_workers=1, kind='thread', ahead=2):
        if kind not in KINDS:
            raise UserError('unknown prefetcher %r (choose from %s)' % (kind, ', '.join(KINDS)))
        num_workers = int(num_workers)
        if num_workers < 0:
            raise UserError('the number of prefetch workers must be >= 0, got %d' % num_workers)
        self.fn = fn
        self.kind = kind
        self.num_workers = num_workers
        self.ahead = max(int(ahead), num_workers, 1)
        self._executor = None
        self._closed = False

    def _get_executor(self):
        if self._closed:
            raise RuntimeError('prefetcher is closed')
        if self._executor is None:
            if self.kind == 'thread':
                self._executor = futures.ThreadPoolExecutor(
                    self.num_workers, thread_name_prefix='prefetch')
            else:
                self._executor = futures.ProcessPoolExecutor(
                    self.num_workers, mp_context=multiprocessing.get_context('fork'),
                    initializer=_process_worker_init)
        return self._executor

    def _submit(self, index, job):
        """Start fn(job) for the job at `index` (its position in map's jobs); a Future."""
        return self._get_executor().submit(self.fn, job)

    def map(self, jobs):
        """Generator of fn(job) for each job, in order, computed up to `ahead` jobs early."""
        if self.num_workers == 0:
            for job in jobs:
                yield self.fn(job)
            return
        pending = collections.deque()
        job_iter = enumerate(jobs)

        def submit_next():
            for index, job in job_iter:
                pending.append(self._submit(index, job))
                return True
            return False

        try:
            while len(pending) < self.ahead and submit_next():
                pass
            while pending:
                fut = pending.popleft()
                try:
                    result = fut.result()
                except UserError as e:
                    raise _clean(e)
                except futures.BrokenExecutor as e:
                    self._executor = None  # unusable now; a later map() starts a new pool
                    raise RuntimeError('a prefetch worker died unexpectedly (%s); out of memory?'
                                       % e) from None
                submit_next()
                yield result
        finally:
            for fut in pending:  # jobs already running finish in the background
                fut.cancel()

    def close(self):
        """Cancel queued jobs and stop the workers (waits for running jobs to finish)."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


class RoundRobin(Prefetcher):
    """Like Prefetcher, with one function per worker thread: job i runs fns[i % n] on thread
    i % n (n = len(fns)), so each function (e.g. a predictor bound to one device) is only ever
    called from one thread, jobs i, i + n, i + 2n, ... in order. Results in job order; at most
    `ahead` (default n) jobs are submitted but not yet consumed.

        with RoundRobin([predictor_a.run, predictor_b.run]) as devices:
            for result in devices.map(images):   # a, b, a, b, ...
                ...
    """

    def __init__(self, fns, ahead=None):
        fns = list(fns)
        if not fns:
            raise ValueError('RoundRobin needs at least one function')
        super().__init__(None, num_workers=len(fns), kind='thread',
                         ahead=len(fns) if ahead is None else ahead)
        self.fns = fns
        self._threads = None

    def _submit(self, index, job):
        if self._closed:
            raise RuntimeError('prefetcher is closed')
        if self._threads is None:
            self._threads = [futures.ThreadPoolExecutor(1, thread_name_prefix='worker%d' % k)
                             for k in range(len(self.fns))]
        k = index % len(self.fns)
        return self._threads[k].submit(self.fns[k], job)

    def close(self):
        """Cancel queued jobs and stop the threads (waits for running jobs to finish)."""
        self._closed = True
        threads, self._threads = self._threads, None
        for executor in threads or ():
            executor.shutdown(wait=True, cancel_futures=True)


class BackgroundTasks:
    """Fire-and-forget work (e.g. PNG writing) on worker threads, at most `max_pending` queued.

    zlib and file I/O release the GIL, so writing overlaps the caller's next image. `close()`
    waits for everything and re-raises the first error; `num_threads=0` runs tasks inline.

        with BackgroundTasks(1) as tasks:
            tasks.submit(write_png, path, array)
    """

    def __init__(self, num_threads=1, max_pending=4):
        self._executor = (futures.ThreadPoolExecutor(num_threads, thread_name_prefix='bg')
                          if num_threads > 0 else None)
        self._pending = collections.deque()
        self._max_pending = max(1, int(max_pending))

    def submit(self, fn, *args, **kwargs):
        if self._executor is None:
            fn(*args, **kwargs)
            return
        self._pending.append(self._executor.submit(fn, *args, **kwargs))
        while len(self._pending) > self._max_pending:
            self._pending.popleft().result()

    def wait(self):
        """Block until every submitted task is done; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def close(self):
        try:
            self.wait()
        finally:
            if self._executor is not None:
                for fut in self._pending:
                    fut.cancel()
                self._executor.shutdown(wait=True)
                self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:  # already failing: do not mask the error with a task's one
            for fut in self._pending:
                fut.cancel()
            self._pending.clear()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
