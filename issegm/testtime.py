"""The test-time loop of phase val and evaluate.py, on every device given.

    for sample, result in predict_samples(predictors, samples, predict, write):
        ...

reads each (image, label) sample ahead of the network, runs `predict` with one Predictor per
device (issegm.inference.make_predictors), yields the results in the samples' order and hands
each to `write` on background threads. With several devices (`--gpus 0,1,2,3`, `--gpus cpu:2`)
image i goes to device i mod N, each device driven by a thread of its own; a Predictor's numbers
do not depend on its device, so the results are those of one device. The original ran on one
GPU only: yzou2/CBST issegm/evaluate.py and solve_ST.py (_val_impl, _get_module) bind one Module
over all of --gpus with a batch of one image, which MXNet refuses for several devices ("Too many
slices").

No MXNet here: the scripts import this module before their flags are checked.
"""
import collections
import functools
import os
import threading
import time

from tqdm import tqdm

from issegm.datasets import read_sample, write_png
from util.prefetch import BackgroundTasks, Prefetcher, RoundRobin

__all__ = ['Timings', 'NON_NETWORK_STEPS', 'device_names', 'write_label_pngs', 'predict_samples']

NON_NETWORK_STEPS = ('loading', 'upsampling', 'argmax', 'confusion', 'writing')


class Timings(object):
    """Seconds spent per step, summed over images (thread-safe: the steps run in threads)."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.images = 0
        self._lock = threading.Lock()

    def add(self, step, seconds):
        with self._lock:
            self.seconds[step] += seconds

    def timed(self, step, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(step, time.perf_counter() - t0)

    def per_image_ms(self, step):
        return 1000.0 * self.seconds.get(step, 0.0) / max(self.images, 1)

    def summary(self):
        non_network = sum(self.seconds.get(s, 0.0) for s in NON_NETWORK_STEPS)
        parts = ', '.join('%s %.1f' % (s, self.per_image_ms(s)) for s in NON_NETWORK_STEPS)
        return ('per image over %d images: network %.1f ms; non-network %.1f ms (%s ms)'
                % (self.images, self.per_image_ms('network'),
                   1000.0 * non_network / max(self.images, 1), parts))


def device_names(contexts):
    """'cpu(0), cpu(1)': the devices of a run, for its first log line."""
    return ', '.join(str(ctx) for ctx in contexts)


def write_label_pngs(info, name, train_ids, ids_dir, color_dir):
    """IDS_DIR/NAME.png (the dataset's label ids of a train-id map) and COLOR_DIR/NAME.png (the
    same as a palette image)."""
    label_ids = info.train_to_label[train_ids]
    write_png(os.path.join(ids_dir, name + '.png'), label_ids)
    write_png(os.path.join(color_dir, name + '.png'), label_ids, info.palette)


def _timed_read(timings, read, sample):
    return timings.timed('loading', read, *sample)


def _run_on_device(predict, predictor, timings, loaded):
    image, label = loaded
    return predict(predictor, image, label, timings)


def predict_samples(predictors, samples, predict, write=None, read=read_sample, threads=1,
                    timings=None, progress=True, desc='predict'):
    """Yield (sample, result) for every (image path, label path or None) sample, in order.

    * read(image_path, label_path) -> (image, label), `threads` samples at a time ahead of the
      network (inline with 0), timed as 'loading';
    * result = predict(predictor, image, label, timings) with predictors[i % N] for the i-th
      sample, each predictor called from a thread of its own;
    * write(sample, result), when given, on `threads` background threads (inline with 0), timed
      as 'writing'; all writes are done when the generator ends.

    `timings` (a Timings) receives those steps' seconds; a progress bar shows `desc`.
    """
    timings = timings if timings is not None else Timings()
    devices = [functools.partial(_run_on_device, predict, p, timings) for p in predictors]
    with Prefetcher(functools.partial(_timed_read, timings, read), num_workers=threads,
                    kind='thread', ahead=2 * threads) as reader, \
            RoundRobin(devices) as on_devices, \
            BackgroundTasks(threads, max_pending=2 * threads) as writer:
        results = on_devices.map(reader.map(samples))
        bar = tqdm(zip(samples, results), total=len(samples), desc=desc, unit='img',
                   disable=not progress, dynamic_ncols=True)
        for sample, result in bar:
            if write is not None:
                writer.submit(timings.timed, 'writing', write, sample, result)
            yield sample, result
        bar.close()
