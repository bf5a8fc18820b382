"""Phase val of a CBST round (yzou2/CBST issegm/solve_ST.py, _val_impl): `run` loads the model
and the prior, then pass 1, the thresholds and mining statistics, pass 2 (with the round's
health unless --no-health; issegm/rounds/passes.py) and the report (report.py), all into a
staging folder moved in place at the end (docs/algorithm.md section 2, docs/internals.md 11).
"""
import logging
import os
import shutil
import time
from typing import NamedTuple

from issegm.crst import netmaps
from issegm.datacheck.lists import require_unique_names
from issegm.datasets import get_dataset, load_samples, read_sample, sample_name
from issegm.prior import load_prior
from issegm.rounds import layout
from issegm.rounds.passes import FirstPass, LabelRule, Selection, label_target, predict_target
from issegm.rounds.report import Thresholds, round_timing, write_mining_stats, write_round_report
from issegm.rounds.val_target import HealthPlan, MapCache, TargetSplit
from issegm.testtime.image_list import device_names
from issegm.testtime.one_image import make_predictors
from util.devices import parse_devices
from util.files import staged_output as _staged_output
from util.kernels import log_kernels
from util.metrics import format_table
from util.model_label import check_num_classes
from util.symbol.resnet38 import parameter_shapes
from util.weights import load_for_model

__all__ = ['run', 'staged_output', 'LabelledRound']

log = logging.getLogger('cbst')


class LabelledRound(NamedTuple):
    """The two passes of a round: pass 1's FirstPass, the Thresholds, pass 2's Selection."""
    first: FirstPass
    thresholds: Thresholds
    selection: Selection


def staged_output(final, parts):
    """util.files.staged_output in the staging folder FINAL.val-partial: `parts` ({name in the
    stage: destination}) replace their destinations when the block ends without an error; an
    error leaves every destination as it was (a run killed half-way never leaves half a round)."""
    return _staged_output(layout.val_stage(final), parts)


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
    contexts = parse_devices(rnd.gpus, rnd.debug)
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
    final = layout.round_dir(rnd.output, rnd.idx_round)
    started = time.perf_counter()
    with staged_output(final, _val_parts(rnd.output, final)) as stage:
        target = TargetSplit(
            info=info, samples=samples, has_gt=has_gt, prior=prior, stage=stage,
            cache=MapCache(os.path.join(stage, layout.MAP_CACHE), predictors[0].pred_stride),
            data_root=rnd.target.data_root, health=_health_plan(settings, samples))
        labelled = _label_round(settings, predictors, target, final)
        report = write_round_report(
            os.path.join(stage, layout.METRICS), _val_header(settings, len(samples)), info,
            labelled.first, labelled.thresholds, labelled.selection,
            round_timing(time.perf_counter() - started, labelled.first, len(contexts),
                         labelled.selection))
    _remove_old_health(final, settings)
    layout.write_marker(rnd.output, rnd.idx_round, 'val', rnd.argv)
    return report


def _health_plan(settings, samples):
    """The HealthPlan of the round (None with --no-health): the previous round's folder when
    it exists, the first --debug-images target images."""
    if settings.no_health:
        return None
    rnd = settings.round
    previous = layout.round_dir(rnd.output, rnd.idx_round - 1) if rnd.idx_round > 0 else None
    return HealthPlan(previous if previous is not None and os.path.isdir(previous) else None,
                      frozenset(sample_name(image) for image, _ in
                                samples[:settings.debug_images]))


def _remove_old_health(final, settings):
    """Remove what an earlier phase val of the round left of the health that this one did not
    write (--no-health, --debug-images 0), so OUTPUT/R never mixes two runs."""
    old = (layout.HEALTH_PARTS if settings.no_health else
           (layout.DEBUG_DIR,) if not settings.debug_images else ())
    for name in old:
        path = os.path.join(final, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def _label_round(settings, predictors, target, final):
    """The two passes over the target split in the stage: a LabelledRound."""
    rnd, stage = settings.round, target.stage
    label = 'round %d' % rnd.idx_round
    first = predict_target(predictors, target, settings.test_scales[0], settings.test_flipping,
                           settings.kc_policy, not rnd.no_progress, label)
    thresholds = Thresholds(*first.argmax.pool.thresholds(settings.init_tgt_port))
    log.info('thresholds (portion %.4f, %s): %s', settings.init_tgt_port, settings.kc_policy,
             ' '.join('%.4f' % t for t in thresholds.cls_thresh))
    write_mining_stats(os.path.join(stage, layout.STATS), thresholds, settings.mine_id_number,
                       settings.mine_thresh)
    alpha = rnd.crst.lr_weight_ent
    rule = LabelRule(settings.kc_policy, alpha,
                     layout.probmap_dir(rnd.output) if settings.keep_probmaps else None)
    list_name = layout.training_list_name(rnd.target.split)
    selection = label_target(target, first.images, thresholds.cls_thresh, rule,
                             os.path.join(stage, layout.SELF_TRAIN, list_name),
                             os.path.join(os.path.abspath(final), layout.SELF_TRAIN,
                                          layout.PSEUDO_LABELS),
                             not rnd.no_progress, label + ' labels')
    if selection.health is not None:
        selection.health.add_entropy(first.argmax.entropy.sums, first.argmax.entropy.pixels)
    if alpha > 0:
        with_prior = target.prior is not None
        netmaps.write_record(os.path.join(stage, layout.SELF_TRAIN), alpha,
                             thresholds.cls_thresh, target.cache.pred_stride, first.images,
                             settings.prior_path if with_prior else None,
                             target.prior.shape[1:] if with_prior else None)
    meter = first.argmax.meter
    if meter is not None:
        log.info('%s mIoU on %s (network argmax):\n%s', label, rnd.target.split,
                 format_table([(label, meter.scores()['iou'], meter.scores()['miou'])],
                              target.info.class_names))
    return LabelledRound(first, thresholds, selection)


def _load_prior(path, samples, num_classes):
    """The spatial prior at `path` (sized as the first target image), None without a path."""
    if path is None:
        return None
    first_image, _ = read_sample(samples[0][0], None)
    return load_prior(path, num_classes, first_image.shape[:2])


def _val_parts(output, final):
    """Where phase val's staged outputs go: {name in the stage: destination}."""
    parts = {part: os.path.join(final, part) for part in layout.VAL_PARTS}
    parts[layout.STATS] = layout.stats_dir(output)
    return parts


def _val_header(settings, num_images):
    rnd = settings.round
    header = {'round': rnd.idx_round, 'tgt_port': settings.init_tgt_port,
              'kc_policy': settings.kc_policy, 'with_prior': settings.prior_path is not None,
              'num_images': num_images}
    if rnd.crst.lr_weight_ent > 0:  # a CBST round's metrics.json stays as it was
        header['lr_weight_ent'] = rnd.crst.lr_weight_ent
    return header
