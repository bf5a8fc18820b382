"""The shared test-time loop (issegm/testtime/image_list.py) and its round-robin worker pool
(util.prefetch.RoundRobin), with stand-in predictors: no MXNet."""
import threading
import time

import numpy as np
import pytest

from issegm.testtime.image_list import Timings, device_names, predict_samples
from util.errors import UserError
from util.prefetch import RoundRobin


def _tagged(tag):
    def run(job):
        if job == 'user':
            raise UserError('bad job')
        return tag, threading.current_thread().name, job
    return run


def test_round_robin_sends_job_i_to_function_i_mod_n_on_its_own_thread():
    with RoundRobin([_tagged('a'), _tagged('b'), _tagged('c')]) as pool:
        results = list(pool.map(range(10)))
    assert [job for _, _, job in results] == list(range(10))  # job order
    assert [tag for tag, _, _ in results] == ['abc'[i % 3] for i in range(10)]
    threads = {tag: {thread for t, thread, _ in results if t == tag} for tag in 'abc'}
    assert all(len(names) == 1 for names in threads.values())  # one thread per function
    assert len(set.union(*threads.values())) == 3  # and not the same one


def test_round_robin_errors_and_bounded_look_ahead():
    with RoundRobin([_tagged('a'), _tagged('b')]) as pool:
        gen = pool.map([1, 2, 'user', 4])
        assert next(gen)[2] == 1 and next(gen)[2] == 2
        with pytest.raises(UserError, match='bad job') as info:
            next(gen)
        assert info.value.__cause__ is None
    started = []
    lock = threading.Lock()

    def work(job):
        with lock:
            started.append(job)
        return job

    with RoundRobin([work, work], ahead=3) as pool:
        gen = pool.map(range(50))
        for consumed in range(1, 6):
            assert next(gen) == consumed - 1
            time.sleep(0.02)
            assert len(started) <= consumed + 3
        gen.close()
    with pytest.raises(ValueError):
        RoundRobin([])


class FakePredictor:
    def __init__(self, name):
        self.name = name


def _read(image_path, label_path):
    value = int(image_path.split('/')[-1])
    return np.full((2, 3), value, np.uint8), None if label_path is None else value


def _predict(predictor, image, label, timings):
    time.sleep(0.01 * (image[0, 0] % 3))  # finish out of order
    return predictor.name, threading.current_thread().name, int(image[0, 0]), label


@pytest.mark.parametrize('threads', [0, 2])
def test_predict_samples_spreads_over_predictors_and_keeps_order(threads):
    samples = [('img/%d' % i, 'lab/%d' % i if i % 2 else None) for i in range(7)]
    predictors = [FakePredictor('dev0'), FakePredictor('dev1'), FakePredictor('dev2')]
    written = []
    lock = threading.Lock()

    def write(sample, result):
        time.sleep(0.01)
        with lock:
            written.append((sample, result[2]))

    timings = Timings()
    seen = []
    for sample, (device, thread, value, label) in predict_samples(
            predictors, samples, _predict, write, read=_read, threads=threads, timings=timings,
            progress=False):
        seen.append((sample, device, thread, value, label))
    # results in the samples' order, sample i on predictor i mod 3, each on a thread of its own
    assert [s for s, _, _, _, _ in seen] == samples
    assert [v for _, _, _, v, _ in seen] == list(range(7))
    assert [d for _, d, _, _, _ in seen] == ['dev%d' % (i % 3) for i in range(7)]
    assert [lab for _, _, _, _, lab in seen] == [i if i % 2 else None for i in range(7)]
    threads_of = {d: {t for _, dd, t, _, _ in seen if dd == d} for d in ('dev0', 'dev1', 'dev2')}
    assert all(len(names) == 1 for names in threads_of.values())
    # every write done when the loop ends
    assert sorted(written) == sorted((s, i) for i, s in enumerate(samples))
    assert timings.seconds['loading'] > 0 and timings.seconds['writing'] >= 0.07


def test_predict_samples_read_error_is_one_user_error():
    def read(image_path, label_path):
        if image_path == 'img/2':
            raise UserError('image not found: img/2')
        return _read(image_path, label_path)

    samples = [('img/%d' % i, None) for i in range(5)]
    got = []
    with pytest.raises(UserError, match='image not found: img/2'):
        for sample, _ in predict_samples([FakePredictor('a'), FakePredictor('b')], samples,
                                         _predict, read=read, progress=False):
            got.append(sample)
    assert got == samples[:len(got)] and len(got) <= 2


def test_device_names():
    import mxnet as mx
    assert device_names([mx.cpu(0), mx.cpu(1)]) == 'cpu(0), cpu(1)'
    assert device_names([mx.gpu(2)]) == 'gpu(2)'
