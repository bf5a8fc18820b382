"""Phase val of a CBST round (yzou2/CBST issegm/solve_ST.py, _val_impl): `run` loads the model
and the prior, then pass 1 (predict_target), the thresholds and mining statistics, pass 2
(label_target, with the round's health unless --no-health) and the report, all into a staging
folder moved in place at the end (docs/algorithm.md section 2, docs/internals.md section 11).
"""
import collections
import dataclasses
import functools
import logging
import os
import shutil
import threading
import time
from concurrent import futures
from typing import Optional

import numpy as np
from tqdm import tqdm

from issegm import cbst, round_health
from issegm.crst import lrent, netmaps
from issegm.data_checks import require_unique_names
from issegm.datasets import (get_dataset, load_samples, read_image, read_label, read_sample,
                             sample_name, write_list)
from issegm.debug_grid import write_debug_grid
from issegm.prior import load_prior
from issegm.round_files import (probmap_dir, round_dir, stats_dir, target_list_path,
                                write_marker)
from issegm.testtime.image_list import (Timings, device_names, predict_samples,
                                        write_label_pngs)
from issegm.testtime.one_image import make_predictors, upsample_probs
from util.devices import parse_devices
from util.errors import UserError
from util.files import staged_output as _staged_output, write_atomically, write_json
from util.kernels import isa_record, log_kernels, threads_record
from util.metrics import ConfusionMeter, format_table, metrics_dict
from util.model_label import check_num_classes
from util.prefetch import Closing, Prefetcher
from util.symbol.resnet38 import parameter_shapes
from util.weights import load_for_model

__all__ = ['run', 'STAGE_SUFFIX', 'HEALTH_PARTS', 'staged_output', 'TargetSplit', 'TargetImage',
           'FirstPass', 'MapCache', 'LabelRule', 'HealthPlan', 'Selection', 'weight_by_prior',
           'predict_target', 'network_pass', 'argmax_pass', 'write_mining_stats', 'label_target',
           'HealthThread', 'round_timing', 'write_round_report']

log = logging.getLogger('cbst')

STAGE_SUFFIX = '.val-partial'
# What the round's health adds to OUTPUT/R (none of it with --no-health): the table, the debug
# grids, and the round's pseudo-labels at the grid's points (GRID_DIR/NAME.npy, train ids, 32 kB
# per 2048x1024 image) that the next round's agreement reads.
QUALITY_FILE, DEBUG_DIR, GRID_DIR = 'pseudo_quality.md', 'debug', 'pseudo_grid'
HEALTH_PARTS = (QUALITY_FILE, DEBUG_DIR, GRID_DIR)


def staged_output(final, parts):
    """util.files.staged_output in the staging folder FINAL.val-partial: `parts` ({name in the
    stage: destination}) replace their destinations when the block ends without an error; an
    error leaves every destination as it was (a run killed half-way never leaves half a round)."""
    return _staged_output(final + STAGE_SUFFIX, parts)


class TargetSplit(collections.namedtuple('TargetSplit',
                                         'info samples has_gt prior stage cache data_root health')):
    """What the steps share: the target dataset's tables, the [(image, label)] samples, whether
    every one has a label file, the float32 (C, H, W) spatial prior (or None), the staging
    folder, the MapCache, the root the samples' paths are relative to and the HealthPlan (None
    with --no-health)."""


class TargetImage(collections.namedtuple('TargetImage',
                                         'name image_path label_path scaled_hw hw')):
    """One target image after the network pass: its output name, its files, the size of the
    scaled (unpadded) network input and its own size."""


class FirstPass(collections.namedtuple('FirstPass', 'images pool meter meter_prior '
                                                    'network_seconds cache_bytes entropy')):
    """What pass 1 leaves: [TargetImage] in order, the ConfidencePool, the confusion of the
    argmax (and of the prior-weighted argmax) with the ground truth (None without), the
    seconds in the network (summed over devices), the bytes kept for pass 2 and the
    round_health.entropy_sums of the network maps summed over the images with the CPU seconds
    they took (None: --no-health)."""


class MapCache:
    """The network-resolution maps, kept on disk between the two passes (under 3 MB an image,
    where upstream kept 160 MB full-size maps), and the full-size maps made from them, alike in
    both passes (issegm.testtime.one_image.upsample_probs)."""

    def __init__(self, folder, pred_stride):
        self.folder = folder
        self.pred_stride = pred_stride
        os.makedirs(folder)
        self._reused = threading.local()  # per thread: its full-size map array

    def path(self, name):
        return os.path.join(self.folder, name + '.npy')

    def save(self, name, net_probs):
        np.save(self.path(name), net_probs)

    def load(self, image):
        """The network-resolution map of a TargetImage, as kept."""
        return np.load(self.path(image.name))

    def cut(self, image, net):
        """A network-resolution map cut to the rows and columns that cover the scaled image
        (the rest is padding)."""
        rows, cols = (-(-int(side) // self.pred_stride) for side in image.scaled_hw)
        return net[:, :rows, :cols]

    def full_probs(self, image, net=None):
        """The (C, H, W) float32 map of a TargetImage (from its network map `net` when loaded
        already), in an array the calling thread reuses (a fresh 150 MB array costs its page
        faults): valid until the thread's next call."""
        net = self.load(image) if net is None else net
        shape = (net.shape[0],) + tuple(image.hw)
        if getattr(self._reused, 'probs', None) is None or self._reused.probs.shape != shape:
            self._reused.probs = np.empty(shape, np.float32)
        return upsample_probs(net, self.pred_stride, image.scaled_hw, image.hw,
                              out=self._reused.probs)

    def remove(self, name, keep_in=None):
        """Drop an image's map, or move it into the folder `keep_in` (LR-ENT's netmaps)."""
        if keep_in is None:
            os.remove(self.path(name))
        else:
            os.makedirs(keep_in, exist_ok=True)
            os.replace(self.path(name), os.path.join(keep_in, name + '.npy'))

    def close(self):
        shutil.rmtree(self.folder)


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
    pool, meter, meter_prior, entropy = argmax_pass(target, images, policy, progress,
                                                    prefix + ' maps')
    return FirstPass(images, pool, meter, meter_prior, timings.seconds['network'], cache_bytes,
                     entropy)


def network_pass(predictors, target, scale, flip, timings, progress=True, desc='val'):
    """Pass 1a: the network on every image (issegm.testtime.image_list.predict_samples, on every
    device),
    keeping only its network-resolution maps (target.cache); [TargetImage] in order. Labels
    are read too, for read_sample's size check before the long pass."""
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
    map. Returns (ConfidencePool, meter, meter of the prior-weighted argmax, the entropy sums of
    the round's health); a meter is None without ground truth or prior, the sums without the
    health."""
    num_classes = len(target.info.class_names)
    pool = cbst.ConfidencePool(num_classes, policy)
    meter = ConfusionMeter(num_classes) if target.has_gt else None
    meter_prior = (ConfusionMeter(num_classes) if meter is not None and target.prior is not None
                   else None)
    entropy = (np.zeros(num_classes), np.zeros(num_classes, np.int64), 0.0)
    for pred, sp, top, gt, image_entropy in _two_at_a_time(
            functools.partial(_argmax_image, target), images, progress, desc):
        pool.add_argmax_max(pred if sp is None else sp, top)
        if meter is not None:
            meter.update(gt, pred)
            if sp is not None:
                meter_prior.update(gt, sp)
        if image_entropy is not None:  # summed in list order
            entropy = tuple(a + b for a, b in zip(entropy, image_entropy))
    return pool, meter, meter_prior, entropy if target.health is not None else None


def _argmax_image(target, image):
    """Pass 1b for one image: (argmax, prior-weighted argmax or None, the max of the map the
    pool takes, ground truth as train ids or None, round_health.entropy_sums of the network map
    and the CPU seconds they took, or None without the round's health)."""
    net, entropy = target.cache.load(image), None
    if target.health is not None:
        started = time.thread_time()
        entropy = round_health.entropy_sums(target.cache.cut(image, net))
        entropy += (time.thread_time() - started,)
    probs = target.cache.full_probs(image, net)
    pred, top = cbst.argmax_max(probs)
    write_label_pngs(target.info, image.name, pred, _staged(target, 'results', 'nplabelIds'),
                     _staged(target, 'results', 'npcolor'))
    sp = None
    if target.prior is not None:
        sp, top = cbst.argmax_max(weight_by_prior(probs, target.prior))
        write_label_pngs(target.info, image.name, sp, _staged(target, 'self_train', 'splabelIds'),
                         _staged(target, 'self_train', 'spcolor'))
    gt = target.info.label_to_train[read_label(image.label_path)] if target.has_gt else None
    return pred, sp, top, gt, entropy


def _staged(target, *parts):
    return os.path.join(target.stage, *parts)


# ------------------------------------------------------------------------------- thresholds
def write_mining_stats(folder, cls_thresh, cls_size, mine_id_number, mine_thresh):
    """FOLDER/{mine_id,mine_id_priority,cls_thresh,cls_size}.npy (phase train's
    --mine-id-address); returns (mine_id, mine_id_priority) of cbst.mining_classes."""
    mine_id, mine_id_priority = cbst.mining_classes(cls_size, mine_id_number, mine_thresh)
    os.makedirs(folder)
    for key, value in (('mine_id', mine_id), ('mine_id_priority', mine_id_priority),
                       ('cls_thresh', cls_thresh), ('cls_size', cls_size)):
        np.save(os.path.join(folder, key + '.npy'), value)
    log.info('mine_id %s, mine_id_priority %s', list(mine_id), list(mine_id_priority))
    return mine_id, mine_id_priority


# ------------------------------------------------------------------------------------ pass 2
@dataclasses.dataclass(frozen=True)
class HealthPlan:
    """What pass 2 adds for the round's health (docs/internals.md section 11): the previous
    round's folder OUTPUT/R-1 (None at round 0) and the names of the images that get a debug
    grid in the stage's debug/ folder."""
    previous_dir: Optional[str]
    debug_names: frozenset


class Selection(collections.namedtuple('Selection', 'selected total_pixels health seconds')):
    """What pass 2 leaves: pixels pseudo-labelled per class, pixels in all, the RoundHealth (None
    with --no-health) and the CPU seconds the health took in all threads: (signals, grids)."""


@dataclasses.dataclass(frozen=True)
class LabelRule:
    """How pass 2 labels: the threshold policy ('cb' also writes the reweighted argmax), LR-ENT's
    alpha (--lr-weight-ent; 0: CBST's rule) and the folder that keeps each full-size map
    (--keep-probmaps; None: none)."""
    policy: str
    alpha: float = 0.0
    probmap_dir: str = None


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
    selected, total_pixels, seconds = np.zeros(num_classes, np.int64), 0, [0.0, 0.0]
    health = (round_health.RoundHealth(num_classes, target.has_gt)
              if target.health is not None else None)
    with HealthThread(target, images) as thread:
        for counts, pixels, image_health in _two_at_a_time(
                functools.partial(_label_image, target, cls_thresh, rule, thread), images,
                progress, desc):
            if image_health is not None:  # added in list order: the sums do not depend on threads
                counted, cpu = image_health[0].result()
                health.add(counted)
                counts = counted.kept  # np.bincount(pseudo)[:C], from the health's counts
                seconds = [seconds[0] + cpu, seconds[1] + image_health[1]]
            selected += counts
            total_pixels += pixels
    target.cache.close()
    write_list(list_path, [(os.path.relpath(image.image_path, target.data_root),
                            os.path.join(pseudo_dir, image.name + '.png')) for image in images])
    return Selection(selected, total_pixels, health, tuple(seconds))


def _label_image(target, cls_thresh, rule, thread, image):
    """Pass 2 for one image: its PNGs; (pixels selected per class, pixels, None) with
    --no-health, else (None, pixels, (HealthThread.count's future, CPU seconds of the grid))."""
    policy, alpha, probmap_dir = rule.policy, rule.alpha, rule.probmap_dir
    probs = weight_by_prior(target.cache.full_probs(image), target.prior)
    if alpha > 0:
        # rw = argmax p / t, the class of the soft label; kept = bincount(pseudo) below
        pseudo, reweighted, _ = lrent.lrent_label_maps(probs, cls_thresh, alpha)
    else:
        pseudo, reweighted = cbst.pseudo_label_maps(probs, cls_thresh)
    # unselected pixels (255) are stored as label id 0 (unlabeled)
    write_label_pngs(target.info, image.name, pseudo,
                     _staged(target, 'self_train', 'pseudo_labelIds'),
                     _staged(target, 'self_train', 'pseudo_color'))
    if policy == 'cb':
        write_label_pngs(target.info, image.name, reweighted,
                         _staged(target, 'self_train', 'rwlabelIds'),
                         _staged(target, 'self_train', 'rwcolor'))
    if probmap_dir is not None:
        os.makedirs(probmap_dir, exist_ok=True)
        np.save(os.path.join(probmap_dir, image.name + '.npy'), probs)
    kept = health = None
    if target.health is None:
        kept = round_health.class_counts(pseudo, len(target.info.class_names))
    else:  # the counts come with the health; p_c at the grid's points before probs is reused
        started = time.thread_time()
        confidence = round_health.grid_confidence(pseudo, probs, len(target.info.class_names))
        counted, inputs = thread.count(image, pseudo, confidence,
                                       time.thread_time() - started)
        health = counted, _debug_grid(target, image, (pseudo, inputs), probs)
    target.cache.remove(image.name, _staged(target, 'self_train', netmaps.FOLDER)
                        if alpha > 0 else None)
    return kept, pseudo.size, health


# -------------------------------------------------------------------- pass 2: the round's health
def _debug_grid(target, image, labels, probs):
    """OUTPUT/R/debug/NAME.png when the image is one of the first --debug-images (`labels` =
    (pseudo-labels, the future of its _health_inputs)); the CPU seconds it took."""
    if image.name not in target.health.debug_names:
        return 0.0
    started, info, (pseudo, inputs) = time.thread_time(), target.info, labels
    gt = inputs.result()[0]
    argmax = info.label_to_train[read_label(os.path.join(
        _staged(target, 'results', 'nplabelIds'), image.name + '.png'))]
    write_debug_grid(_staged(target, DEBUG_DIR, image.name + '.png'), info,
                     read_image(image.image_path), (argmax, pseudo, probs.max(axis=0)),
                     None if gt is None else info.label_to_train[gt])
    return time.thread_time() - started


class HealthThread(Closing):
    """The round's health of pass 2 in a thread of its own: it reads what an image needs
    (_health_inputs) up to AHEAD images ahead of pass 2, then counts the pseudo-labels pass 2
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
            os.makedirs(_staged(target, GRID_DIR), exist_ok=True)

    def count(self, image, pseudo, confidence, seconds):
        """Futures of (ImageHealth, CPU seconds) of the image's pseudo-labels and their
        grid_confidence (which took `seconds`), and of its _health_inputs; pass 2 waits for
        neither."""
        with self.lock:  # the inputs job of an image is queued before its count job
            stop = min(len(self.images), self.index[image.name] + 1 + self.AHEAD)
            for later in self.images[self.submitted:stop]:
                self.pending[later.name] = self.pool.submit(_health_inputs, self.target, later)
            self.submitted = max(self.submitted, stop)
            inputs = self.pending.pop(image.name)
            return self.pool.submit(self._count, image.name, inputs, pseudo,
                                    (confidence, seconds)), inputs

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _count(self, name, inputs, pseudo, confidence):
        """(round_health.image_health of one image, CPU seconds of it, of its inputs and of its
        grid_confidence); `inputs`: the future of its _health_inputs, done (queued before this
        job). Writes GRID_DIR/NAME.npy."""
        started, info = time.thread_time(), self.target.info
        gt, previous, read_seconds = inputs.result()
        health = round_health.image_health(pseudo, confidence[0], info.label_to_train, gt,
                                           previous)
        np.save(_staged(self.target, GRID_DIR, name + '.npy'),
                np.ascontiguousarray(round_health.grid_sample(pseudo)))
        return health, read_seconds + confidence[1] + time.thread_time() - started


def _health_inputs(target, image):
    """What the health of one image reads: (its ground truth as label ids or None, the previous
    round's pseudo-labels at the grid's points or None, CPU seconds)."""
    started = time.thread_time()
    gt = read_label(image.label_path) if target.has_gt else None
    previous = _previous_grid(target.info, target.health.previous_dir, image.name,
                              tuple(image.hw))
    return gt, previous, time.thread_time() - started


def _previous_grid(info, folder, name, shape):
    """The previous round's pseudo-labels of image NAME at the grid's points (train ids, 255 =
    not kept), from FOLDER/pseudo_grid/NAME.npy, else (a round run with --no-health or before
    the grids were kept) from FOLDER/self_train/pseudo_labelIds/NAME.png: the same values.
    None without them (round 0, another target list, another size, a file that does not read:
    no agreement)."""
    if folder is None:
        return None
    grid = os.path.join(folder, GRID_DIR, name + '.npy')
    png = os.path.join(folder, 'self_train', 'pseudo_labelIds', name + '.png')
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


# ------------------------------------------------------------------------------------ report
def round_timing(seconds, first, num_devices, selection=None):
    """metrics.json 'timing': per image, the seconds in the network (summed over devices), the
    rest of the phase's `seconds` (wall time less the network's share of each device) and the
    bytes kept between the passes; with the round's health (a Selection with one), the CPU
    seconds per image its signals took (summed over threads) and those of all debug grids."""
    n = len(first.images)
    timing = {'network_s_per_image': first.network_seconds / n,
              'other_s_per_image': (seconds - first.network_seconds / num_devices) / n,
              'cache_bytes_per_image': first.cache_bytes / n}
    if selection is not None and selection.health is not None:
        timing.update(health_cpu_s_per_image=(selection.seconds[0] + first.entropy[2]) / n,
                      debug_grid_cpu_s=selection.seconds[1])
    return timing


def write_round_report(path, header, info, first, thresholds, selection, timing):
    """metrics.json of the round: `header` (round, portion, policy, ...), the thresholds
    (cls_thresh, cls_size), the share of pixels selected per class (selection: label_target's
    Selection), the scores of pass 1's argmax when the split has ground truth (and of the
    prior-weighted argmax), the round's health (and pseudo_quality.md), the timing, and the
    kernels that computed them ("cpu_isa", "cpu_threads": util/kernels.py)."""
    (cls_thresh, cls_size), (selected, total_pixels) = thresholds, selection[:2]
    report = dict(header)
    report.update({'cls_thresh': [float(t) for t in cls_thresh],
                   'cls_size': [int(s) for s in cls_size],
                   'selected_share': {n: float(s) / max(total_pixels, 1)
                                      for n, s in zip(info.class_names, selected)},
                   'selected_total': float(selected.sum()) / max(total_pixels, 1)})
    if first.meter is not None:
        report.update(metrics_dict(first.meter.matrix, info.class_names))
        if first.meter_prior is not None:
            report['with_prior_metrics'] = metrics_dict(first.meter_prior.matrix,
                                                         info.class_names)
    if selection.health is not None:
        report.update(round_health.health_metrics(selection.health, info.class_names))
    report['timing'] = timing
    report.update(cpu_isa=isa_record(), cpu_threads=threads_record())
    log.info('per image: network %.3f s, everything else %.3f s; kept %.2f MB between passes',
             timing['network_s_per_image'], timing['other_s_per_image'],
             timing['cache_bytes_per_image'] / 1e6)
    write_json(path, report)
    if selection.health is not None:
        _write_quality_table(os.path.join(os.path.dirname(path), QUALITY_FILE), report,
                             info.class_names, selection.health)
    return report


def _write_quality_table(path, report, class_names, health):
    """PATH (pseudo_quality.md) and one log line of the round's health."""
    text = round_health.quality_table(report, class_names)
    write_atomically(path, lambda f: f.write(text.encode('utf-8')))
    numbers = ['%s %s' % (label, '-' if report.get(key) is None else '%.3f' % report[key])
               for label, key in (('precision', 'pseudo_precision_total'),
                                  ('recall', 'pseudo_recall_total'),
                                  ('kept share', 'pseudo_kept_share_total'),
                                  ('agreement', 'agreement'),
                                  ('mean confidence', 'mean_confidence_total'),
                                  ('mean entropy', 'mean_entropy_total'))
               if key in report]
    log.info('pseudo-labels: %s (agreement over %d of %d images with the previous round\'s)',
             ', '.join(numbers), health.previous_images, health.num_images)


# --------------------------------------------------------------------------------- the phase
def run(settings):
    """Phase val as the ValSettings `settings` say (yzou2/CBST issegm/solve_ST.py, _val_impl):
    the checks, the model and the prior, pass 1, the thresholds and mining statistics, pass 2,
    the report; then OUTPUT/R/val.done. Returns the report (metrics.json)."""
    rnd = settings.round
    info = get_dataset(rnd.target.dataset)
    num_classes = check_num_classes(rnd.model, info).num_classes
    samples = load_samples(rnd.target.data_root, rnd.target.split, rnd.target.dataset,
                           require_labels=False)
    require_unique_names(samples, 'the target list %s' % rnd.target.split)
    contexts = parse_devices(rnd.gpus)
    arg_params, aux_params = load_for_model(rnd.weights, parameter_shapes(rnd.model))
    prior = _load_prior(settings.prior_path, samples, num_classes)
    predictors = make_predictors(rnd.model, arg_params, aux_params, contexts,
                                 rnd.parsed_model.stride, settings.test_steps)
    has_gt = all(label is not None and os.path.isfile(label) for _, label in samples)
    log.info('round %d phase val: %d target images, scale %d, flipping %s, test steps %d, '
             'prior %s, policy %s, devices %s', rnd.idx_round, len(samples),
             settings.test_scales[0], settings.test_flipping, settings.test_steps,
             settings.prior_path is not None, settings.kc_policy, device_names(contexts))
    log_kernels(log)
    final = round_dir(rnd.output, rnd.idx_round)
    started = time.perf_counter()
    with staged_output(final, _val_parts(rnd.output, final)) as stage:
        target = TargetSplit(info, samples, has_gt, prior, stage, MapCache(
            os.path.join(stage, 'cache'), predictors[0].pred_stride), rnd.target.data_root,
            _health_plan(settings, samples))
        first, thresholds, selection = _label_round(settings, predictors, target, final)
        report = write_round_report(
            os.path.join(stage, 'metrics.json'), _val_header(settings, len(samples)), info,
            first, thresholds, selection,
            round_timing(time.perf_counter() - started, first, len(contexts), selection))
    _remove_old_health(final, settings)
    write_marker(rnd.output, rnd.idx_round, 'val', rnd.argv)
    return report


def _health_plan(settings, samples):
    """The HealthPlan of the round (None with --no-health): the previous round's folder when
    it exists, the first --debug-images target images."""
    if not settings.health:
        return None
    rnd = settings.round
    previous = round_dir(rnd.output, rnd.idx_round - 1) if rnd.idx_round > 0 else None
    return HealthPlan(previous if previous is not None and os.path.isdir(previous) else None,
                      frozenset(sample_name(image) for image, _ in
                                samples[:settings.debug_images]))


def _remove_old_health(final, settings):
    """Remove what an earlier phase val of the round left of the health that this one did not
    write (--no-health, --debug-images 0), so OUTPUT/R never mixes two runs."""
    old = HEALTH_PARTS if not settings.health else (DEBUG_DIR,) if not settings.debug_images \
        else ()
    for name in old:
        path = os.path.join(final, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def _label_round(settings, predictors, target, final):
    """The two passes over the target split in the stage: (FirstPass, (cls_thresh, cls_size),
    Selection)."""
    rnd, stage = settings.round, target.stage
    label = 'round %d' % rnd.idx_round
    first = predict_target(predictors, target, settings.test_scales[0], settings.test_flipping,
                           settings.kc_policy, rnd.progress, label)
    cls_thresh, cls_size = first.pool.thresholds(settings.tgt_port)
    log.info('thresholds (portion %.4f, %s): %s', settings.tgt_port, settings.kc_policy,
             ' '.join('%.4f' % t for t in cls_thresh))
    write_mining_stats(os.path.join(stage, 'stats'), cls_thresh, cls_size,
                       settings.mine_id_number, settings.mine_thresh)
    alpha = rnd.crst.lr_weight_ent
    rule = LabelRule(settings.kc_policy, alpha,
                     probmap_dir(rnd.output) if settings.keep_probmaps else None)
    list_name = os.path.basename(target_list_path(rnd.output, rnd.idx_round, rnd.target.split))
    selection = label_target(target, first.images, cls_thresh, rule,
                             os.path.join(stage, 'self_train', list_name),
                             os.path.join(os.path.abspath(final), 'self_train', 'pseudo_labelIds'),
                             rnd.progress, label + ' labels')
    if selection.health is not None:
        selection.health.add_entropy(*first.entropy[:2])
    if alpha > 0:
        prior_source = ((settings.prior_path, target.prior.shape[1:])
                        if target.prior is not None else (None, None))
        netmaps.write_record(os.path.join(stage, 'self_train'), alpha, cls_thresh,
                             target.cache.pred_stride, first.images, *prior_source)
    if first.meter is not None:
        log.info('%s mIoU on %s (network argmax):\n%s', label, rnd.target.split,
                 format_table([(label, first.meter.scores()['iou'],
                                first.meter.scores()['miou'])], target.info.class_names))
    return first, (cls_thresh, cls_size), selection


def _load_prior(path, samples, num_classes):
    """The spatial prior at `path` (sized as the first target image), None without a path."""
    if path is None:
        return None
    first_image, _ = read_sample(samples[0][0], None)
    return load_prior(path, num_classes, first_image.shape[:2])


def _val_parts(output, final):
    """Where phase val's staged outputs go: {name in the stage: destination}."""
    parts = {part: os.path.join(final, part)
             for part in ('results', 'self_train', 'metrics.json') + HEALTH_PARTS}
    parts['stats'] = stats_dir(output)
    return parts


def _val_header(settings, num_images):
    rnd = settings.round
    header = {'round': rnd.idx_round, 'tgt_port': settings.tgt_port,
              'kc_policy': settings.kc_policy, 'with_prior': settings.prior_path is not None,
              'num_images': num_images}
    if rnd.crst.lr_weight_ent > 0:  # a CBST round's metrics.json stays as it was
        header['lr_weight_ent'] = rnd.crst.lr_weight_ent
    return header
