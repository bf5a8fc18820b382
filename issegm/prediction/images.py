"""Predict a list of images (or a video's frames) on every device and write the requested
output kinds of each; counts the pixels per class."""
import collections
import functools

import numpy as np

from issegm.cbst import argmax_max
from issegm.datasets import read_sample, sample_name
from issegm.prediction.inputs import frame_name
from issegm.prediction.outputs import Prediction, render, save_rendered
from issegm.testtime.image_list import Timings, predict_samples

# What to predict and write: dataset facts, test scales, flipping, output kinds, overlay
# opacity, output folder, helper threads, progress bar.
Settings = collections.namedtuple('Settings',
                                  'info scales flip kinds opacity output threads progress')


def _predict_image(scales, flip, keep_probs, predictor, image, label, timings):
    """One image on a device thread, as evaluate.py's (issegm/evaluate.py, _predict_image)."""
    probs = predictor.predict(image, scales, flip, timed=timings.timed)
    train_ids, top = timings.timed('argmax', argmax_max, probs)
    return Prediction(image, train_ids, top, probs if keep_probs else None)


def _write_outputs(settings, name, prediction):
    rendered = render(settings.info, settings.kinds, settings.opacity, prediction)
    save_rendered(settings.output, name, rendered, settings.info.palette)


def _write_image(settings, sample, prediction):
    _write_outputs(settings, sample_name(sample[0]), prediction)


def write_frame(settings, stem, sample, prediction):
    """Write the outputs of frame sample[1] of the video STEM."""
    _write_outputs(settings, frame_name(stem, sample[1]), prediction)


def class_pixels(train_ids, num_classes):
    """Pixels per train id 0..C-1, int64."""
    return np.bincount(train_ids.ravel(), minlength=num_classes)[:num_classes].astype(np.int64)


def predict_and_write(predictors, samples, settings, write, timings, read=read_sample,
                      desc='predict', on_result=None):
    """predict_samples over `samples`, writing settings.kinds; returns the pixels per class."""
    num_classes = len(settings.info.class_names)
    keep_probs = 'entropy' in settings.kinds or 'probs' in settings.kinds
    predict = functools.partial(_predict_image, settings.scales, settings.flip, keep_probs)
    counts = np.zeros(num_classes, np.int64)
    for sample, prediction in predict_samples(
            predictors, samples, predict, write, read=read, threads=settings.threads,
            timings=timings, progress=desc if settings.progress else None):
        if on_result is not None:
            on_result(sample, prediction)
        counts += timings.timed('counting', class_pixels, prediction.train_ids, num_classes)
        timings.images += 1
    return counts


def predict_images(predictors, images, settings, timings=None):
    """Predict every image path and write its outputs under settings.output; returns the
    pixels per class (train ids) over the images."""
    timings = timings if timings is not None else Timings()
    write = functools.partial(_write_image, settings)
    return predict_and_write(predictors, [(image, None) for image in images], settings, write,
                             timings)
