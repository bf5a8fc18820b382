"""The round's health in pass 2 of phase val (docs/internals.md, section 11): a HealthThread
reads each image's ground truth and the previous round's pseudo-labels on the grid ahead of
pass 2, then counts the pseudo-labels pass 2 hands it and keeps them on the grid for the next
round; the debug grids of the first --debug-images images (write_debug_grid_of).
"""
import os
import threading
import time
from concurrent import futures
from typing import NamedTuple, Optional

import numpy as np

from issegm.datasets import read_image, read_label
from issegm.rounds import health as round_health
from issegm.rounds import layout
from issegm.rounds.debug_grid import write_debug_grid
from util.errors import UserError
from util.prefetch import Closing

__all__ = ['HealthInputs', 'CountedHealth', 'HealthJobs', 'HealthThread', 'previous_grid',
           'write_debug_grid_of']


class HealthInputs(NamedTuple):
    """What the health of one image reads: its ground truth as label ids (None without), the
    previous round's pseudo-labels at the grid's points (None without) and the CPU seconds."""
    gt: Optional[np.ndarray]
    previous: Optional[np.ndarray]
    seconds: float


class CountedHealth(NamedTuple):
    """round_health.image_health of one image and the CPU seconds of it, of its inputs and of
    its grid_confidence."""
    health: round_health.ImageHealth
    seconds: float


class HealthJobs(NamedTuple):
    """HealthThread.count's futures of one image: its CountedHealth and its HealthInputs."""
    counted: futures.Future
    inputs: futures.Future


class HealthThread(Closing):
    """The round's health of pass 2 in a thread of its own: it reads what an image needs
    (HealthInputs) up to AHEAD images ahead of pass 2, then counts the pseudo-labels pass 2
    hands over (`count`) and keeps them at the grid's points for the next round, while pass 2
    goes on; PNG decoding and the histograms release the GIL and run on the CPU the two pass-2
    threads leave idle. Nothing with --no-health."""
    AHEAD = 4

    def __init__(self, target, images):
        self.target, self.images = target, images
        self.index = {image.name: i for i, image in enumerate(images)}
        self.pending, self.submitted, self.lock = {}, 0, threading.Lock()
        self.pool = (futures.ThreadPoolExecutor(1, 'health') if target.health is not None
                     else None)
        if self.pool is not None:
            os.makedirs(target.staged(layout.GRID_DIR), exist_ok=True)

    def count(self, image, pseudo, confidence, confidence_seconds):
        """The HealthJobs of the image's pseudo-labels and their grid_confidence (which took
        `confidence_seconds`); pass 2 waits for neither."""
        with self.lock:  # the inputs job of an image is queued before its count job
            stop = min(len(self.images), self.index[image.name] + 1 + self.AHEAD)
            for later in self.images[self.submitted:stop]:
                self.pending[later.name] = self.pool.submit(_health_inputs, self.target, later)
            self.submitted = max(self.submitted, stop)
            inputs = self.pending.pop(image.name)
            return HealthJobs(self.pool.submit(self._count, image.name, inputs, pseudo,
                                               confidence, confidence_seconds), inputs)

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _count(self, name, inputs, pseudo, confidence, confidence_seconds):
        """The CountedHealth of one image; `inputs`: the future of its HealthInputs, done
        (queued before this job). Writes pseudo_grid/NAME.npy."""
        started, info = time.thread_time(), self.target.info
        read = inputs.result()
        health = round_health.image_health(pseudo, confidence, info.label_to_train, read.gt,
                                           read.previous)
        np.save(self.target.staged(layout.GRID_DIR, name + '.npy'),
                np.ascontiguousarray(round_health.grid_sample(pseudo)))
        return CountedHealth(health, read.seconds + confidence_seconds
                             + time.thread_time() - started)


def _health_inputs(target, image):
    """The HealthInputs of one image."""
    started = time.thread_time()
    gt = read_label(image.label_path) if target.has_gt else None
    previous = previous_grid(target.info, target.health.previous_dir, image.name,
                             tuple(image.hw))
    return HealthInputs(gt, previous, time.thread_time() - started)


def previous_grid(info, folder, name, shape):
    """The previous round's pseudo-labels of image NAME at the grid's points (train ids, 255 =
    not kept), from FOLDER/pseudo_grid/NAME.npy, else (a round run with --no-health or before
    the grids were kept) from FOLDER/self_train/pseudo_labelIds/NAME.png: the same values.
    None without them (round 0, another target list, another size, a file that does not read:
    no agreement)."""
    if folder is None:
        return None
    grid = os.path.join(folder, layout.GRID_DIR, name + '.npy')
    png = os.path.join(folder, layout.SELF_TRAIN, layout.PSEUDO_LABELS, name + '.png')
    try:
        if os.path.isfile(grid):
            labels = np.load(grid)
        elif os.path.isfile(png):
            labels = info.label_to_train[round_health.grid_sample(read_label(png))]
        else:
            return None
    except (UserError, OSError, ValueError, EOFError):
        return None
    if labels.dtype != np.uint8 or labels.shape != round_health.grid_shape(shape):
        return None
    return labels


def write_debug_grid_of(target, image, pseudo, inputs, probs):
    """OUTPUT/R/debug/NAME.png when the image is one of the first --debug-images (`pseudo`: its
    pseudo-labels, `inputs`: the future of its HealthInputs); the CPU seconds it took."""
    if image.name not in target.health.debug_names:
        return 0.0
    started, info = time.thread_time(), target.info
    gt = inputs.result().gt
    argmax = info.label_to_train[read_label(os.path.join(
        target.staged(layout.RESULTS, layout.ARGMAX), image.name + '.png'))]
    write_debug_grid(target.staged(layout.DEBUG_DIR, image.name + '.png'), info,
                     read_image(image.image_path), (argmax, pseudo, probs.max(axis=0)),
                     None if gt is None else info.label_to_train[gt])
    return time.thread_time() - started
