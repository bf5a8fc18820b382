"""Phase val's two passes over the target split (yzou2/CBST issegm/solve_ST.py, _val_impl):
pass 1 (predict_target: the network on every device, then each image's argmax and the
confidence pool) and pass 2 (label_target: the pseudo-labels of the thresholds, with the
round's health counted in a HealthThread); docs/algorithm.md section 2.
"""
import dataclasses
import functools
import os
import time
from typing import NamedTuple, Optional

import numpy as np
from tqdm import tqdm

from issegm import cbst
from issegm.crst import lrent, netmaps
from issegm.datasets import read_label, read_sample, sample_name, write_list
from issegm.rounds import health as round_health
from issegm.rounds import layout
from issegm.rounds.health_thread import HealthThread, write_debug_grid_of
from issegm.rounds.val_target import TargetImage
from issegm.testtime.image_list import Timings, predict_samples, write_label_pngs
from util.errors import UserError
from util.metrics import ConfusionMeter
from util.prefetch import Prefetcher

__all__ = ['EntropySums', 'ArgmaxPass', 'FirstPass', 'LabelRule', 'Selection',
           'weight_by_prior', 'predict_target', 'network_pass', 'argmax_pass', 'label_target']


class EntropySums(NamedTuple):
    """round_health.entropy_sums of network maps (entropy summed per argmax class, pixels per
    argmax class) and the CPU seconds they took."""
    sums: np.ndarray
    pixels: np.ndarray
    seconds: float

    def plus(self, other):
        return EntropySums(self.sums + other.sums, self.pixels + other.pixels,
                           self.seconds + other.seconds)


class ArgmaxPass(NamedTuple):
    """What pass 1b leaves: the ConfidencePool of the (prior-weighted) maps, the confusion of
    the argmax and of the prior-weighted argmax with the ground truth (None without ground
    truth or prior), the EntropySums over the images (None without the round's health)."""
    pool: cbst.ConfidencePool
    meter: Optional[ConfusionMeter]
    meter_prior: Optional[ConfusionMeter]
    entropy: Optional[EntropySums]


class FirstPass(NamedTuple):
    """What pass 1 leaves: [TargetImage] in order, pass 1b's ArgmaxPass, the seconds in the
    network (summed over devices) and the bytes kept for pass 2."""
    images: list
    argmax: ArgmaxPass
    network_seconds: float
    cache_bytes: int


class _ImageArgmax(NamedTuple):
    """Pass 1b of one image: its argmax, the prior-weighted argmax (None without prior), the
    max of the map the pool takes, its ground truth as train ids (None without) and its
    EntropySums (None without the round's health)."""
    pred: np.ndarray
    prior_pred: Optional[np.ndarray]
    top: np.ndarray
    gt: Optional[np.ndarray]
    entropy: Optional[EntropySums]


@dataclasses.dataclass(frozen=True)
class LabelRule:
    """How pass 2 labels: the threshold policy ('cb' also writes the reweighted argmax), LR-ENT's
    alpha (--lr-weight-ent; 0: CBST's rule) and the folder that keeps each full-size map
    (--keep-probmaps; None: none)."""
    policy: str
    alpha: float = 0.0
    probmap_dir: str = None


class Selection(NamedTuple):
    """What pass 2 leaves: pixels pseudo-labelled per class, pixels in all, the RoundHealth (None
    with --no-health) and the CPU seconds the health took in all threads: its signals, the
    debug grids."""
    selected: np.ndarray
    total_pixels: int
    health: Optional[round_health.RoundHealth]
    health_seconds: float
    debug_grid_seconds: float


class _LabelledImage(NamedTuple):
    """Pass 2 of one image: its pixels, the pixels kept per class (None when its health counts
    them), the future of HealthThread.count's CountedHealth (None with --no-health) and the CPU
    seconds of its debug grid."""
    pixels: int
    kept: Optional[np.ndarray]
    health: object
    debug_grid_seconds: float


def weight_by_prior(probs, prior):
    """probs *= prior in place (yzou2/CBST issegm/solve_ST.py, _val_impl, --with-prior);
    `probs` unchanged when prior is None."""
    if prior is None:
        return probs
    if prior.shape[1:] != probs.shape[1:]:
        raise UserError('spatial prior is %dx%d but target image is %dx%d'
                        % (prior.shape[1:] + probs.shape[1:]))
    probs *= prior
    return probs


def _two_at_a_time(fn, images, progress, desc):
    """fn(image) for every image, two at a time, one thread each (images are independent;
    Pillow, NumPy and zlib release the GIL); results in order, under a progress bar."""
    with Prefetcher(fn, num_workers=2, kind='thread', ahead=4) as workers:
        for result in tqdm(workers.map(images), total=len(images), desc=desc, unit='img',
                           disable=not progress, dynamic_ncols=True):
            yield result


# ------------------------------------------------------------------------------------ pass 1
def predict_target(predictors, target, scale, flip, policy, progress=True, prefix='round 0'):
    """Pass 1 at test scale `scale` (with flipping when `flip`): the network pass on every
    device, then the argmax pass; a FirstPass. Progress bars 'PREFIX val', 'PREFIX maps'."""
    timings = Timings()
    images = network_pass(predictors, target, scale, flip, timings, progress, prefix + ' val')
    cache_bytes = sum(os.path.getsize(target.cache.path(image.name)) for image in images)
    argmax = argmax_pass(target, images, policy, progress, prefix + ' maps')
    return FirstPass(images, argmax, timings.seconds['network'], cache_bytes)


def network_pass(predictors, target, scale, flip, timings, progress=True, desc='val'):
    """Pass 1a: the network on every image (issegm.testtime.image_list.predict_samples, on every
    device), keeping only its network-resolution maps (target.cache); [TargetImage] in order.
    Labels are read too, for read_sample's size check before the long pass."""
    images = []
    for (image_path, label_path), (_, scaled_hw, hw) in predict_samples(
            predictors, target.samples, functools.partial(_network_maps, scale, flip),
            write=functools.partial(_keep_network_maps, target.cache),
            read=functools.partial(_read_target, target.has_gt), threads=1, timings=timings,
            progress=desc if progress else None):
        images.append(TargetImage(sample_name(image_path), image_path, label_path, scaled_hw,
                                  hw))
    return images


def _read_target(has_gt, image_path, label_path):
    return read_sample(image_path, label_path if has_gt else None)


def _network_maps(scale, flip, predictor, image, label, timings):
    net, scaled_hw = timings.timed('network', predictor.network_probs, image, scale, flip)
    return net, scaled_hw, image.shape[:2]


def _keep_network_maps(cache, sample, result):
    cache.save(sample_name(sample[0]), result[0])


def argmax_pass(target, images, policy, progress=True, desc='maps'):
    """Pass 1b: each image's full-size map, its argmax PNGs (and those of the prior-weighted
    map), the confusion with the ground truth and the confidence pool of the (prior-weighted)
    map; an ArgmaxPass."""
    num_classes = len(target.info.class_names)
    pool = cbst.ConfidencePool(num_classes, policy)
    meter = ConfusionMeter(num_classes) if target.has_gt else None
    meter_prior = (ConfusionMeter(num_classes) if meter is not None and target.prior is not None
                   else None)
    entropy = EntropySums(np.zeros(num_classes), np.zeros(num_classes, np.int64), 0.0)
    for image in _two_at_a_time(functools.partial(_argmax_image, target), images, progress,
                                desc):
        pool.add_argmax_max(image.pred if image.prior_pred is None else image.prior_pred,
                            image.top)
        if meter is not None:
            meter.update(image.gt, image.pred)
            if image.prior_pred is not None:
                meter_prior.update(image.gt, image.prior_pred)
        if image.entropy is not None:  # summed in list order
            entropy = entropy.plus(image.entropy)
    return ArgmaxPass(pool, meter, meter_prior, entropy if target.health is not None else None)


def _argmax_image(target, image):
    """Pass 1b for one image: an _ImageArgmax."""
    net, entropy = target.cache.load(image), None
    if target.health is not None:
        started = time.thread_time()
        sums, pixels = round_health.entropy_sums(target.cache.cut(image, net))
        entropy = EntropySums(sums, pixels, time.thread_time() - started)
    probs = target.cache.full_probs(image, net)
    pred, top = cbst.argmax_max(probs)
    write_label_pngs(target.info, image.name, pred, target.staged(layout.RESULTS, layout.ARGMAX),
                     target.staged(layout.RESULTS, layout.ARGMAX_COLOR))
    sp = None
    if target.prior is not None:
        sp, top = cbst.argmax_max(weight_by_prior(probs, target.prior))
        write_label_pngs(target.info, image.name, sp,
                         target.staged(layout.SELF_TRAIN, layout.PRIOR_ARGMAX),
                         target.staged(layout.SELF_TRAIN, layout.PRIOR_ARGMAX_COLOR))
    gt = target.info.label_to_train[read_label(image.label_path)] if target.has_gt else None
    return _ImageArgmax(pred, sp, top, gt, entropy)


# ------------------------------------------------------------------------------------ pass 2
def label_target(target, images, cls_thresh, rule, list_path, pseudo_dir, progress=True,
                 desc='labels'):
    """Pass 2: each image's map again, exactly as in pass 1 (prior-weighted), thresholded into
    pseudo-label PNGs as the LabelRule `rule` says; then the cache is removed and the training
    list written: one row (image relative to target.data_root, PSEUDO_DIR/NAME.png) per image.
    Returns a Selection; with target.health, the round's health is counted in a HealthThread.

    rule.alpha > 0 (--lr-weight-ent): CRST's LR-ENT selection instead (issegm/crst/lrent.py,
    lrent_label_maps), and the network maps are kept in self_train/netmaps
    (issegm/crst/netmaps.py) for phase train's soft labels."""
    num_classes = len(target.info.class_names)
    selected, total_pixels = np.zeros(num_classes, np.int64), 0
    health_seconds = debug_grid_seconds = 0.0
    health = (round_health.RoundHealth(num_classes, target.has_gt)
              if target.health is not None else None)
    with HealthThread(target, images) as thread:
        for image in _two_at_a_time(functools.partial(_label_image, target, cls_thresh, rule,
                                                      thread), images, progress, desc):
            kept = image.kept
            if image.health is not None:  # added in list order: the sums do not depend on threads
                counted = image.health.result()
                health.add(counted.health)
                kept = counted.health.kept  # np.bincount(pseudo)[:C], from the health's counts
                health_seconds += counted.seconds
                debug_grid_seconds += image.debug_grid_seconds
            selected += kept
            total_pixels += image.pixels
    target.cache.close()
    write_list(list_path, [(os.path.relpath(image.image_path, target.data_root),
                            os.path.join(pseudo_dir, image.name + '.png')) for image in images])
    return Selection(selected, total_pixels, health, health_seconds, debug_grid_seconds)


def _label_image(target, cls_thresh, rule, thread, image):
    """Pass 2 for one image: its PNGs (and kept map); a _LabelledImage."""
    probs = weight_by_prior(target.cache.full_probs(image), target.prior)
    if rule.alpha > 0:
        # rw = argmax p / t, the class of the soft label; kept = bincount(pseudo) below
        pseudo, reweighted, _ = lrent.lrent_label_maps(probs, cls_thresh, rule.alpha)
    else:
        pseudo, reweighted = cbst.pseudo_label_maps(probs, cls_thresh)
    # unselected pixels (255) are stored as label id 0 (unlabeled)
    write_label_pngs(target.info, image.name, pseudo,
                     target.staged(layout.SELF_TRAIN, layout.PSEUDO_LABELS),
                     target.staged(layout.SELF_TRAIN, layout.PSEUDO_COLOR))
    if rule.policy == 'cb':
        write_label_pngs(target.info, image.name, reweighted,
                         target.staged(layout.SELF_TRAIN, layout.REWEIGHTED),
                         target.staged(layout.SELF_TRAIN, layout.REWEIGHTED_COLOR))
    if rule.probmap_dir is not None:
        os.makedirs(rule.probmap_dir, exist_ok=True)
        np.save(os.path.join(rule.probmap_dir, image.name + '.npy'), probs)
    num_classes = len(target.info.class_names)
    if target.health is None:
        labelled = _LabelledImage(pseudo.size, round_health.class_counts(pseudo, num_classes),
                                  None, 0.0)
    else:  # the counts come with the health; p_c at the grid's points before probs is reused
        started = time.thread_time()
        confidence = round_health.grid_confidence(pseudo, probs, num_classes)
        jobs = thread.count(image, pseudo, confidence, time.thread_time() - started)
        labelled = _LabelledImage(pseudo.size, None, jobs.counted, write_debug_grid_of(
            target, image, pseudo, jobs.inputs, probs))
    target.cache.remove(image.name, target.staged(layout.SELF_TRAIN, netmaps.FOLDER)
                        if rule.alpha > 0 else None)
    return labelled
