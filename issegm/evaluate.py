"""Evaluate a segmentation model on a labelled split.

As yzou2/CBST evaluate.py, _val_impl: the test procedure of phase val (docs/algorithm.md section
2, steps 1-2), on every device given, with the softmax in float64 as that script's OhemSoftmax.
Commands: the README, "Evaluation"; the outputs: docs/internals.md, section 2.
"""
import dataclasses
import functools
import logging
import os
import sys
import time

if __package__ in (None, ''):  # run by path without installation: the repo root holds `util`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from issegm.cbst import argmax_max  # noqa: E402
from issegm.data_checks import require_clean  # noqa: E402
from issegm.datasets import get_dataset, load_samples, sample_name, write_png  # noqa: E402
from issegm.testtime.image_list import (PredictionOptions, Timings, device_names,  # noqa: E402
                                        predict_samples, write_label_pngs)
from util.errors import UserError, cli_entry, require_file  # noqa: E402
from util.files import staged_output, write_json  # noqa: E402
from util.flags import (FlagParser, check_test_steps, parse_bool, parse_test_scales,  # noqa: E402
                        prediction_flags, set_mxnet_switches)
from util.locks import output_lock  # noqa: E402
from util.logs import setup_logging  # noqa: E402
from util.metrics import ConfusionMeter, format_table, metrics_dict, scores  # noqa: E402
from util.model_label import (check_num_classes, is_classifier,  # noqa: E402
                              model_from_weights, parse_model_label)

__all__ = ['resolve_model', 'default_dataset', 'dataset_of', 'check_prediction_flags',
           'load_predictors', 'check_unique_names', 'Timings', 'EvalOutputs', 'save_outputs',
           'evaluate_samples', 'write_report', 'evaluate_into', 'main']

log = logging.getLogger('cbst')

CORRECT, WRONG, IGNORED = 127, 0, 255
# Where a run writes its outputs before they replace those in OUTPUT (util.files.staged_output).
STAGE_NAME = '.evaluate-partial'


def resolve_model(model, weights, info):
    """The model label (default: the weights file name before `_ep-`) and its parsed form,
    checked to be a segmentation model with the dataset's number of classes."""
    model = model_from_weights(model, weights)
    if is_classifier(parse_model_label(model)):
        raise UserError('model %s is the ImageNet classifier, not a segmentation model' % model)
    return model, check_num_classes(model, info)


def default_dataset(model, weights):
    """`--dataset` when it is not given: the dataset part of the model label (yzou2/CBST
    issegm/evaluate.py, parse_model_label: `args.dataset` if given, else the label's field)."""
    return parse_model_label(model_from_weights(model, weights)).dataset


def dataset_of(args):
    """--dataset, else default_dataset of --model and --weights."""
    return args.dataset if args.dataset is not None else default_dataset(args.model, args.weights)


def check_prediction_flags(args):
    """Check the test-time flags (util.flags.prediction_flags, --dataset, --model, --weights)
    before MXNet is imported: returns (dataset info, model, parsed model label, test scales)."""
    info = get_dataset(dataset_of(args))
    if args.prefetch_threads < 0:
        raise UserError('--prefetch-threads must be >= 0, got %d' % args.prefetch_threads)
    scales = parse_test_scales(args.test_scales or str(max(info.max_shape)))
    model, parsed = resolve_model(args.model, args.weights, info)
    check_test_steps(args.test_steps, parsed.stride)
    return info, model, parsed, scales


def load_predictors(args, model, parsed):
    """One issegm.testtime.one_image.Predictor per device of --gpus, with the weights checked to
    fit `model` (a misfit is a UserError). Imports MXNet: call it once the flags are checked.
    Returns (predictors, contexts)."""
    require_file(args.weights, 'weight file')
    set_mxnet_switches(no_cudnn=args.no_cudnn, debug=args.debug)
    from issegm.testtime.one_image import make_predictors  # these import MXNet: after the flags
    from util.devices import parse_devices
    from util.symbol.resnet38 import parameter_shapes
    from util.weights import load_for_model
    contexts = parse_devices(args.gpus)
    arg_params, aux_params = load_for_model(args.weights, parameter_shapes(model))
    # float64 softmax, as yzou2/CBST evaluate.py's network (one_image.softmax_float64)
    predictors = make_predictors(model, arg_params, aux_params, contexts, parsed.stride,
                                 args.test_steps, float64_softmax=True)
    return predictors, contexts


def correct_map(pred, gt_train):
    """127 where pred == gt, 255 where the ground truth is ignored (not a class), else 0."""
    out = np.where(pred == gt_train, CORRECT, WRONG).astype(np.uint8)
    out[gt_train >= 255] = IGNORED
    return out


@dataclasses.dataclass(frozen=True)
class EvalOutputs:
    """What evaluate_samples writes under `folder`: the prediction PNGs (save_results) and the
    float16 score maps (save_predictions)."""
    folder: str
    save_results: bool = True
    save_predictions: bool = False


def save_outputs(output, name, pred, gt_train, info, probs=None):
    """Write the PNGs of one image (none when `pred` is None) and its float16 scores (when
    `probs` is given)."""
    if pred is not None:
        write_label_pngs(info, name, pred, os.path.join(output, 'labelId'),
                         os.path.join(output, 'color'))
        write_png(os.path.join(output, 'trainId', name + '.png'), pred)
        if gt_train is not None:
            write_png(os.path.join(output, 'color', 'correct', name + '.png'),
                      correct_map(pred, gt_train))
    if probs is not None:
        save_scores(os.path.join(output, 'scores', name + '.npy'), probs)


def save_scores(path, probs):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.save(path, probs.astype(np.float16))


def check_unique_names(named):
    """Raise a UserError naming both sources when two (output name, source) pairs share a
    name: their outputs would overwrite each other."""
    seen = {}
    for name, source in named:
        if name in seen:
            raise UserError('two images share the output name %s: %s and %s'
                            % (name, seen[name], source))
        seen[name] = source


def evaluate_samples(predictors, samples, info, test, outputs, prefetch_threads=0, timings=None,
                     progress=True):
    """Predict every (image, label-or-None) sample with the PredictionOptions `test`, write its
    EvalOutputs `outputs` and return the (C, C) int64 confusion matrix (rows ground truth,
    train ids) over the samples with labels.

    `predictors`: one issegm.testtime.one_image.Predictor per device (or a single Predictor);
    image i goes to predictors[i % N] (issegm.testtime.image_list.predict_samples). The class
    maps of the test scales are averaged at the image's size. With `prefetch_threads` > 0
    images are read and outputs written by that many threads while the network runs.
    `timings` (a Timings) receives the seconds of each step.
    """
    if not isinstance(predictors, (list, tuple)):
        predictors = [predictors]
    timings = timings if timings is not None else Timings()
    meter = ConfusionMeter(len(info.class_names))
    check_unique_names((sample_name(image), image) for image, _ in samples)
    predict = functools.partial(_predict_image, info, test.scales, test.flip,
                                outputs.save_predictions)
    write = (functools.partial(_write_image, outputs.folder, info, outputs.save_results)
             if outputs.save_results or outputs.save_predictions else None)
    for _, (pred, gt_train, _) in predict_samples(
            predictors, samples, predict, write, threads=prefetch_threads, timings=timings,
            progress='evaluate' if progress else None):
        if gt_train is not None:
            timings.timed('confusion', meter.update, gt_train, pred)
        timings.images += 1
    return meter.matrix


def _predict_image(info, scales, flip, keep_probs, predictor, image, label, timings):
    """One image on a device thread: (argmax train ids, ground truth as train ids or None,
    the averaged class map when `keep_probs` else None)."""
    probs = predictor.predict(image, scales, flip, timed=timings.timed)
    pred = timings.timed('argmax', argmax_max, probs)[0]
    gt_train = None if label is None else info.label_to_train[label]
    return pred, gt_train, probs if keep_probs else None


def _write_image(output, info, save_results, sample, result):
    pred, gt_train, probs = result
    save_outputs(output, sample_name(sample[0]), pred if save_results else None, gt_train, info,
                 probs)


def write_report(output, conf, info, title):
    """metrics.json and results.md of a confusion matrix; returns the metrics dict."""
    metrics = metrics_dict(conf, info.class_names)
    s = scores(conf)
    table = format_table([(title, s['iou'], s['miou'])], info.class_names)
    write_json(os.path.join(output, 'metrics.json'), metrics)
    summary = ('pixel accuracy %.2f%%, mean class accuracy %.2f%%, mean IoU %.2f%% over %d classes'
               % (100 * s['pixel_acc'], 100 * s['mean_acc'], 100 * s['miou'], len(s['iou'])))
    with open(os.path.join(output, 'results.md'), 'w') as f:
        f.write('# %s\n\n%s\n\nIoU per class (%%):\n\n%s' % (title, summary, table))
    return metrics, summary, table


def parse_args(argv):
    parser = FlagParser(description=__doc__.splitlines()[0], parents=[prediction_flags()])
    a = parser.add_argument
    a('--data-root', required=True, help='dataset root (paths in the list file are relative)')
    a('--output', required=True, help='output folder')
    a('--dataset', help='cityscapes, cityscapes16, gta or synthia (default: the dataset part of '
                        'the model label, as upstream)')
    a('--phase', default='val', choices=['val'], help='only val (as upstream)')
    a('--split', default='train',
      help='split name (issegm/data_list/DATASET/SPLIT.lst) or .lst path (default train, as '
           'upstream)')
    a('--weights', required=True,
      help='weight file, e.g. models/gta_rna-a1_cls19_s8_ep-0000.params')
    a('--model', help='model label (default: the weights file name before _ep-)')
    a('--cache-images', type=parse_bool, default=None,
      help='accepted and ignored, as upstream (it only set a flag evaluation never reads)')
    a('--save-predictions', action='store_true',
      help='keep the score maps: OUTPUT/scores/NAME.npy, float16 (C, H, W) at the image size')
    a('--no-save-results', action='store_true', help='do not write the prediction PNGs')
    a('--log-file', help='log file (default OUTPUT/evaluate.log)')
    a('--skip-data-check', action='store_true',
      help='do not check the list\'s files first (issegm/data_checks.py: headers, sizes, label '
           'ids of a sample)')
    return parser.parse_args(argv)


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    # Checks of the flags and files first, before MXNet is even imported (a quick error).
    info, model, parsed, scales = check_prediction_flags(args)
    dataset = info.name
    samples = load_samples(args.data_root, args.split, dataset, require_labels=False)
    require_file(args.weights, 'weight file')
    if not args.skip_data_check:
        require_clean(samples, dataset, what=args.split)
    with output_lock(args.output) as lock:
        predictors, contexts = load_predictors(args, model, parsed)
        setup_logging(args.log_file or os.path.join(args.output, 'evaluate.log'),
                      debug=args.debug)
        if lock.takeover:
            log.warning('%s', lock.takeover)
        log.info('evaluate %s (%s) on %s %s: %d images, scales %s, flipping %s, devices %s',
                 model, args.weights, dataset, args.split, len(samples),
                 ','.join(map(str, scales)), 'on' if args.test_flipping else 'off',
                 device_names(contexts))
        # Written into a stage and moved in place at the end: a run failing half-way leaves
        # the outputs of an earlier run in OUTPUT as they were.
        with staged_output(os.path.join(args.output, STAGE_NAME), args.output) as stage:
            evaluate_into(stage, args, (predictors, samples, info, scales), model, dataset)
    return 0


def evaluate_into(folder, args, task, model, dataset):
    """Predict and score the samples of `task` = (predictors, samples, dataset info, test
    scales) as the flags say, writing the outputs and the report into `folder`."""
    predictors, samples, info, scales = task
    timings = Timings()
    t0 = time.time()
    outputs = EvalOutputs(folder, save_results=not args.no_save_results,
                          save_predictions=args.save_predictions)
    conf = evaluate_samples(predictors, samples, info,
                            PredictionOptions(scales, args.test_flipping), outputs,
                            prefetch_threads=args.prefetch_threads, timings=timings,
                            progress=not args.no_progress)
    log.info('done in %.1f s; %s', time.time() - t0, timings.summary())
    if not any(label is not None for _, label in samples):
        log.info('no ground truth in %s: no metrics written', args.split)
        return
    metrics, summary, table = write_report(folder, conf, info, '%s on %s %s' % (
        model, dataset, os.path.splitext(os.path.basename(args.split))[0]))
    log.info('%s', summary)
    log.info('IoU per class: %s', ' '.join('%.4f' % v for v in metrics['iou'].values()))
    log.info('results (%%):\n%s', table)
    log.info('wrote %s', os.path.join(args.output, 'metrics.json'))


if __name__ == '__main__':
    sys.exit(main())
