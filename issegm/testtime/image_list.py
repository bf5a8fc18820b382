"""A list of images on every device given: predict_samples reads ahead, runs one Predictor per
device (image i on device i mod N) and writes in the background, for phase val and evaluate.py
(docs/internals.md, section 2). No MXNet: the scripts import it before their flags are checked.
"""
import collections
import dataclasses
import functools
import os
import threading
import time

from tqdm import tqdm

from issegm.datasets import read_sample, write_png
from util.prefetch import BackgroundTasks, Prefetcher, RoundRobin

__all__ = ['PredictionOptions', 'Timings', 'NON_NETWORK_STEPS', 'device_names', 'write_label_pngs',
           'predict_samples']

NON_NETWORK_STEPS = ('loading', 'upsampling', 'argmax', 'confusion', 'writing')


@dataclasses.dataclass(frozen=True)
class PredictionOptions:
    """What every image of a split is predicted with: the test scales (longer sides; their
    class maps are averaged at the image size) and whether the mirrored image is averaged in."""
    scales: tuple
    flip: bool = False


class Timings:
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
                    timings=None, progress='predict'):
    """Yield (sample, result) for every (image path, label path or None) sample, in order.

    * read(image_path, label_path) -> (image, label), `threads` samples at a time ahead of the
      network (inline with 0), timed as 'loading';
    * result = predict(predictor, image, label, timings) with predictors[i % N] for the i-th
      sample, each predictor called from a thread of its own;
    * write(sample, result), when given, on `threads` background threads (inline with 0), timed
      as 'writing'; all writes are done when the generator ends.

    `timings` (a Timings) receives those steps' seconds; `progress`: the label of a progress
    bar (None or False: no bar).
    """
    timings = timings if timings is not None else Timings()
    devices = [functools.partial(_run_on_device, predict, p, timings) for p in predictors]
    with Prefetcher(functools.partial(_timed_read, timings, read), num_workers=threads,
                    kind='thread', ahead=2 * threads) as reader, \
            RoundRobin(devices) as on_devices, \
            BackgroundTasks(threads, max_pending=2 * threads) as writer:
        results = on_devices.map(reader.map(samples))
        bar = tqdm(zip(samples, results), total=len(samples), desc=progress or None, unit='img',
                   disable=not progress, dynamic_ncols=True)
        for sample, result in bar:
            if write is not None:
                writer.submit(timings.timed, 'writing', write, sample, result)
            yield sample, result
        bar.close()
