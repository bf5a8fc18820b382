"""Training data for source training and self-training (docs/internals.md, section 3): the
TrainSample records, make_train_crop (one crop of a sample and a seed, as yzou2/CBST data.py
FileIter._read; docs/algorithm.md section 3) and SegTrainIter, the MXNet iterator of shuffled
crops prepared ahead of the network.
"""
import collections
import dataclasses
import functools
import os

import mxnet as mx
import numpy as np

from issegm import cbst, datasets
from issegm.crst import netmaps
from issegm.crst.crop_labels import one_hot_labels
from issegm.crst.settings import SOFT_LABEL, is_active, label_names
from issegm.sampling import RULES, SELF_TRAINING, SOURCE_ONLY, canvas_rect, plan_crop
from util.errors import UserError
from util.image import PAD_UINT8, normalize_chw, resize_image, resize_label
from util.prefetch import Closing, Prefetcher

__all__ = ['TrainSample', 'Domain', 'LoaderSettings', 'source_only_samples',
           'self_training_samples', 'crop_arrays', 'make_train_crop', 'SegTrainIter', 'IGNORE']

IGNORE = datasets.IGNORE

# One training sample: file paths, the label id -> train id table (256 entries), the origin
# size (the "target size" a scale rate of 1 maps to), the dataset max shape, the crop rule
# (sampling.SELF_TRAINING or sampling.SOURCE_ONLY), whether it is a pseudo-labelled target
# image, and for CRST's LR-ENT its issegm/crst/netmaps.py SoftSource (else None).
TrainSample = collections.namedtuple(
    'TrainSample', 'image label label_to_train origin_size max_shape rule is_target soft',
    defaults=(False, None))
# A domain of a self-training round: its dataset (name or DatasetInfo) and the origin size its
# scale rates refer to (--origin-size, --origin-size-tgt).
Domain = collections.namedtuple('Domain', 'dataset origin_size')


@dataclasses.dataclass(frozen=True)
class LoaderSettings:
    """How the crops are made ahead of the network: `prefetch_threads` workers (0: inline),
    threads or forked processes (`prefetcher`), decoded images kept in memory
    (`cache_images`)."""
    prefetch_threads: int = 1
    prefetcher: str = 'thread'
    cache_images: bool = False


def _dataset_info(dataset):
    if isinstance(dataset, datasets.DatasetInfo):
        return dataset
    return datasets.get_dataset(dataset)


def _records(samples, info, origin_size, max_shape, rule, is_target=False, soft=None):
    table = np.asarray(info.label_to_train, np.uint8)
    soft = [None] * len(samples) if soft is None else list(soft)
    if len(soft) != len(samples):
        raise ValueError('%d soft-label sources for %d samples' % (len(soft), len(samples)))
    out = []
    for (image, label), source in zip(samples, soft):
        if label is None:
            raise UserError('training sample %s has no label' % image)
        out.append(TrainSample(image, label, table, int(origin_size), tuple(max_shape), rule,
                               is_target, source))
    return out


def source_only_samples(samples, dataset, origin_size):
    """Source training (train_src.py): every (image, label) sample with the dataset's
    MAX_SHAPES entry and the SOURCE_ONLY crop rule (yzou2/CBST issegm/data_src.py)."""
    info = _dataset_info(dataset)
    return _records(samples, info, origin_size, datasets.MAX_SHAPES[info.name], SOURCE_ONLY)


def self_training_samples(source_samples, source, target_samples, target, src_port, seed,
                          soft_sources=None):
    """Samples of one self-training round; `source`, `target`: their Domain.

    S = int(N * src_port) source samples, chosen by cbst.select_source_subset(N, S, seed) and
    kept in that order, then every target sample (image, pseudo-label path) in list order
    (is_target, with its SoftSource from `soft_sources` for LR-ENT).
    Source labels go through the source dataset's table, pseudo-labels (target label ids)
    through the target dataset's; max shapes come from SELF_TRAINING_MAX_SHAPES; all use the
    SELF_TRAINING crop rule (yzou2/CBST issegm/data.py).
    """
    src = _dataset_info(source.dataset)
    tgt = _dataset_info(target.dataset)
    source_samples = list(source_samples)
    num = len(source_samples)
    num_selected = int(num * src_port)
    if not 0 <= num_selected <= num:
        raise UserError('source portion %s selects %d of %d source samples'
                        % (src_port, num_selected, num))
    chosen = cbst.select_source_subset(num, num_selected, seed) if num_selected > 0 else []
    picked = [source_samples[int(i)] for i in chosen]
    out = _records(picked, src, source.origin_size,
                   datasets.SELF_TRAINING_MAX_SHAPES[src.name], SELF_TRAINING)
    out += _records(target_samples, tgt, target.origin_size,
                    datasets.SELF_TRAINING_MAX_SHAPES[tgt.name], SELF_TRAINING, True,
                    soft_sources)
    return out


def crop_arrays(image, label, plan, crop, label_to_train=None, stride=8):
    """The network input and label of one crop (yzou2/CBST issegm/data.py, FileIter._read).

    image: (H, W, 3) uint8 RGB; label: (H, W) label ids (mapped through `label_to_train`) or
    train ids (table None); plan: sampling.CropPlan; crop: C. Returns data (3, C, C) float32
    normalised and label (C // stride, C // stride) float32 of train ids, 255 outside the image.
    """
    top, left, side = plan.top, plan.left, plan.side
    window = canvas_rect(image, top, left, side, side, PAD_UINT8)
    table = None if label_to_train is None else np.asarray(label_to_train)
    window_label = canvas_rect(label, top, left, side, side, IGNORE, table)
    data = resize_image(window, (crop, crop))
    # QUIRK kept: the label grid starts at stride / 2 with Python 2's integer division and is
    # taken before the flip, so in a flipped crop it sits at columns stride // 2 - 1 + k * stride.
    half = stride // 2
    out = resize_label(window_label, (crop, crop))[half::stride, half::stride]
    if plan.flip:
        data, out = data[:, ::-1], out[:, ::-1]
    return normalize_chw(data), out.astype(np.float32)


# Decoded (image, label ids) per (image path, label path) when cache_images is on. With the
# process prefetcher every worker process keeps its own cache.
_CACHE = {}


def _load(image_path, label_path, cache_images):
    key = (image_path, label_path)
    if cache_images:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
    image, label = datasets.read_sample(image_path, label_path)
    if cache_images:
        _CACHE[key] = (image, label)
    return image, label


def make_train_crop(sample, seed, crops, cache_images=False):
    """One training crop of a TrainSample: read, plan (sampling.plan_crop with the
    sampling.CropSettings `crops`), crop.

    Deterministic given `seed`. Bad files raise the UserError of datasets.read_sample; a
    SOURCE_ONLY image larger than its dataset's max shape (the original asserts it) and
    settings that give no window for the image are UserErrors too.
    Returns (data (3, C, C) float32, label (C // stride, C // stride) float32), followed, with
    CRST settings crops.crst that are on, by crst_labels.
    """
    image, label = _load(sample.image, sample.label, cache_images)
    h, w = label.shape
    max_h, max_w = sample.max_shape
    if sample.rule == SOURCE_ONLY and (h > max_h or w > max_w):
        raise UserError('image %s is %dx%d, larger than the %dx%d max shape of its dataset'
                        % (sample.image, h, w, max_h, max_w))
    rng = np.random.RandomState(seed)
    try:
        plan = plan_crop(rng, label, crops, sample.origin_size, sample.max_shape, sample.rule,
                         label_to_train=sample.label_to_train)
    except ValueError as err:  # settings that do not fit this image (e.g. a 0-pixel window)
        raise UserError('cannot crop %s: %s' % (sample.image, err)) from None
    data, hard = crop_arrays(image, label, plan, crops.crop, sample.label_to_train, crops.stride)
    if not is_active(crops.crst):
        return data, hard
    return (data, hard) + crst_labels(sample, plan, crops, hard)


def crst_labels(sample, plan, crops, hard):
    """The CRST label inputs of a crop after its hard label, in issegm/crst/settings.py
    label_names order: with LR-ENT the (C, n, n) soft label (target crops: recomputed from
    phase val's maps, issegm/crst/netmaps.py; source crops: one-hot, as yzou2/CRST
    deeplab/datasets.py SoftSrcSTDataSet), with a model regulariser the (n, n) mask of the
    regularised pixels (ones on target crops, zeros on source crops: crst_seg.py main gives
    the target samples reg_weight = --mr-weight-kld and the source ones --mr-weight-src, 0
    here)."""
    out = ()
    crst = crops.crst
    if crst.lr_weight_ent > 0:
        if not sample.is_target:
            out += (one_hot_labels(hard, crops.num_classes),)
        elif sample.soft is None:
            raise ValueError('target sample %s has no LR-ENT soft-label source' % sample.image)
        else:
            out += (netmaps.crop_soft_label(sample.soft, plan, crops.crop, hard, crops.stride),)
    if crst.regulariser is not None:
        out += (np.full(hard.shape, float(sample.is_target), np.float32),)
    return out


def _crop_job(crops, cache_images, job):
    sample, seed = job
    return make_train_crop(sample, seed, crops, cache_images)


def _id_tuple(ids):
    return tuple(int(k) for k in np.asarray(ids if ids is not None else (), np.int64).ravel())


def _checked_crops(crops, samples):
    """The CropSettings with the scale range and mining port as floats, the stride an int and
    the mining ids as int tuples; a UserError for values the crops cannot take."""
    lo, hi = (float(v) for v in crops.scale_rate_range)
    if not 0 < lo <= hi:
        raise UserError('bad scale rate range %s' % (crops.scale_rate_range,))
    mine_port = crops.mine_port
    if not 0.0 <= float(mine_port) <= 1.0:
        raise UserError('mine port must be in [0, 1], got %s' % mine_port)
    mine_id, mine_id_priority = _id_tuple(crops.mine_id), _id_tuple(crops.mine_id_priority)
    if IGNORE in mine_id + mine_id_priority:
        raise UserError('mining class ids must be train ids below %d, got %d'
                        % (IGNORE, IGNORE))
    rules = set(s.rule for s in samples)
    if not rules <= set(RULES):
        raise UserError('unknown crop rule(s) %s' % sorted(rules - set(RULES)))
    if float(mine_port) > 0 and SOURCE_ONLY in rules:
        raise UserError('mining (mine port %s) applies to self-training samples only; the '
                        'source-training crops have none' % mine_port)
    return dataclasses.replace(crops, stride=int(crops.stride), scale_rate_range=(lo, hi),
                               mine_port=float(mine_port), mine_id=mine_id,
                               mine_id_priority=mine_id_priority)


class SegTrainIter(Closing, mx.io.DataIter):
    """Shuffled random crops for segmentation training.

    Each epoch shuffles all samples, keeps this worker's shard `[part_index::num_parts]` and
    yields `len(samples) // num_parts // batch_images` batches (the same count on every shard,
    so distributed workers stay in step; with one part this is len(samples) // batch_images).
    `reset()` starts the next epoch (a no-op while the current one is untouched). Batches:
    data (B, 3, C, C) float32, softmax_label (B, C // stride, C // stride) float32 with
    255 = ignore, C = crops.crop; with CRST settings crops.crst that are on, also
    crst_soft_label (B, num_classes, n, n) and/or crst_reg_mask (B, n, n) (see crst_labels).
    Each sample is cropped by its own rule (TrainSample.rule) with the sampling.CropSettings
    `crops`; mining (crops.mine_port > 0) needs self-training samples.

    `loading` (LoaderSettings) workers prepare up to two batches ahead. `begin_epoch` selects
    the epoch whose shuffle comes first (to resume a run with the same crops). Call close() (or
    use `with`) to stop the workers.
    """

    def __init__(self, samples, batch_images, crops, seed=None, loading=LoaderSettings(),
                 num_parts=1, part_index=0, begin_epoch=0):
        batch_images = int(batch_images)
        super().__init__(batch_images)
        self.samples = list(samples)
        num_parts, part_index = int(num_parts), int(part_index)
        if batch_images < 1:
            raise UserError('batch size must be >= 1, got %d' % batch_images)
        if num_parts < 1 or not 0 <= part_index < num_parts:
            raise UserError('bad data shard %d of %d' % (part_index, num_parts))
        self.crops = _checked_crops(crops, self.samples)
        self.num_batches = len(self.samples) // num_parts // batch_images
        if self.num_batches < 1:
            raise UserError('%d training samples give no batch of %d images%s'
                            % (len(self.samples), batch_images,
                               ' per shard (%d shards)' % num_parts if num_parts > 1 else ''))
        self.batch_images = batch_images
        self.stride = self.crops.stride
        self.crop = self.crops.crop
        self.label_size = len(range(self.stride // 2, self.crop, self.stride))
        self.num_parts, self.part_index = num_parts, part_index
        if seed is None:
            seed = int.from_bytes(os.urandom(4), 'little')
        self.seed = int(seed) % (2 ** 32)
        self.epoch = int(begin_epoch)
        self.label_names = label_names(crops.crst if is_active(crops.crst) else None)
        if SOFT_LABEL in self.label_names and not crops.num_classes:
            raise ValueError('LR-ENT soft labels need num_classes')
        self.num_classes = crops.num_classes
        self._prefetcher = Prefetcher(
            functools.partial(_crop_job, self.crops, bool(loading.cache_images)),
            int(loading.prefetch_threads), loading.prefetcher, ahead=2 * batch_images)
        self._results = None
        self._start_epoch()

    @property
    def provide_data(self):
        return [mx.io.DataDesc('data', (self.batch_images, 3, self.crop, self.crop), np.float32)]

    @property
    def provide_label(self):
        grid = (self.label_size, self.label_size)
        shapes = {SOFT_LABEL: (self.batch_images, self.num_classes) + grid}
        return [mx.io.DataDesc(name, shapes.get(name, (self.batch_images,) + grid), np.float32)
                for name in self.label_names]

    def __len__(self):
        return self.num_batches

    @property
    def batches_per_epoch(self):
        return self.num_batches

    def epoch_plan(self, epoch):
        """(sample indices, crop seeds) of this shard in epoch `epoch`, in batch order."""
        rng = np.random.RandomState([self.seed, epoch])
        order = rng.permutation(len(self.samples))
        seeds = rng.randint(0, 2 ** 31 - 1, size=len(self.samples))
        used = self.num_batches * self.batch_images
        return (order[self.part_index::self.num_parts][:used],
                seeds[self.part_index::self.num_parts][:used])

    def _start_epoch(self):
        self._stop_results()
        self.epoch_indices, seeds = self.epoch_plan(self.epoch)
        jobs = [(self.samples[i], int(s)) for i, s in zip(self.epoch_indices, seeds)]
        self._results = self._prefetcher.map(jobs)
        self._cursor = 0
        self._touched = False  # no batch asked for yet in this epoch

    def _stop_results(self):
        if self._results is not None:
            self._results.close()
            self._results = None

    def reset(self):
        """Start the next epoch.

        A reset before any batch of the current epoch was taken keeps that epoch, so a loop
        that resets at the start of every epoch and Module.fit, which resets at the end, see
        the same epochs (begin_epoch, begin_epoch + 1, ...).
        """
        if not self._touched and self._results is not None:
            return
        self.epoch += 1
        self._start_epoch()

    def next(self):
        self._touched = True
        if self._cursor >= self.num_batches or self._results is None:
            raise StopIteration
        data = np.empty((self.batch_images, 3, self.crop, self.crop), np.float32)
        labels = [np.empty(desc.shape, np.float32) for desc in self.provide_label]
        for k in range(self.batch_images):
            crop = next(self._results)
            data[k] = crop[0]
            for label, value in zip(labels, crop[1:]):
                label[k] = value
        self._cursor += 1
        return mx.io.DataBatch(data=[mx.nd.array(data, dtype=np.float32)],
                               label=[mx.nd.array(label, dtype=np.float32)
                                      for label in labels], pad=0,
                               provide_data=self.provide_data,
                               provide_label=self.provide_label)

    def close(self):
        """Stop the prefetch workers."""
        self._stop_results()
        self._prefetcher.close()
