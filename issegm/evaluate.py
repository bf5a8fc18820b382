"""Evaluate a segmentation model on a labelled split.

As yzou2/CBST evaluate.py, _val_impl: the test procedure of phase val (docs/algorithm.md section
2, steps 1-2), on every device given, with the softmax in float64 as that script's OhemSoftmax.
Commands: the README, "Evaluation"; the outputs: docs/internals.md, section 2.
"""
import contextlib
import csv
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
from issegm.datacheck.lists import check_unique_names, require_clean  # noqa: E402
from issegm.datasets import get_dataset, load_samples, sample_name, write_png  # noqa: E402
from issegm.testtime.image_list import (PredictionOptions, Timings, device_names,  # noqa: E402
                                        predict_samples, write_label_pngs)
from issegm.testtime.predictors import (TestTimeSettings, check_devices,  # noqa: E402
                                        load_predictors)
from util.errors import UserError, cli_entry, require_file  # noqa: E402
from util.files import atomic_path, staged_output, write_json  # noqa: E402
from util.kernels import isa_record, log_kernels, threads_record  # noqa: E402
from util.flags import (FlagParser, check_test_steps, parse_bool, parse_test_scales,  # noqa: E402
                        prediction_flags)
from util.locks import output_lock  # noqa: E402
from util.logs import setup_logging  # noqa: E402
from util.metrics import (ConfusionMeter, confusion_matrix, format_table, image_iou,  # noqa: E402
                          metrics_dict, row_normalised, scores, subset_miou)
from util.model_label import (check_num_classes, is_classifier,  # noqa: E402
                              model_from_weights, parse_model_label)

__all__ = ['resolve_model', 'default_dataset', 'dataset_of', 'check_prediction_flags',
           'Timings', 'EvalOutputs', 'save_outputs',
           'evaluate_samples', 'miou13', 'write_confusion_csv', 'confusion_figure',
           'write_per_image', 'write_report', 'evaluate_into', 'main']

log = logging.getLogger('cbst')

CORRECT, WRONG, IGNORED = 127, 0, 255
# Where a run writes its outputs before they replace those in OUTPUT (util.files.staged_output).
STAGE_NAME = '.evaluate-partial'
PER_IMAGE_NAME = 'per_image.csv'
# mIoU* of SYNTHIA -> Cityscapes in UDA papers: the 16-class table without wall, fence and pole
# (13 classes). The list is that of lukemelas/pixmatch utils/eval.py, `synthia_set_16_to_13`
# = [0, 1, 2, 6, ..., 15] of the 16 classes (0 road, 1 sidewalk, 2 building; 3 wall, 4 fence,
# 5 pole left out). Undefined IoUs (0/0) count 0 as in `miou` (yzou2/CBST solve_ST.py
# ScoreUpdater), where that file takes np.nanmean; on Cityscapes val all 16 are present.
MIOU13_EXCLUDED = ('wall', 'fence', 'pole')


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
    before MXNet is imported: their TestTimeSettings."""
    info = get_dataset(dataset_of(args))
    if args.prefetch_threads < 0:
        raise UserError('--prefetch-threads must be >= 0, got %d' % args.prefetch_threads)
    scales = parse_test_scales(args.test_scales or str(max(info.max_shape)))
    model, parsed = resolve_model(args.model, args.weights, info)
    check_test_steps(args.test_steps, parsed.stride)
    return TestTimeSettings(args.weights, model, parsed, info, scales, args.test_flipping,
                            args.test_steps, args.gpus, no_cudnn=args.no_cudnn, debug=args.debug,
                            deterministic=args.deterministic,
                            prefetch_threads=args.prefetch_threads,
                            progress=not args.no_progress)


def correct_map(pred, gt_train):
    """127 where pred == gt, 255 where the ground truth is ignored (not a class), else 0."""
    out = np.where(pred == gt_train, CORRECT, WRONG).astype(np.uint8)
    out[gt_train >= 255] = IGNORED
    return out


@dataclasses.dataclass(frozen=True)
class EvalOutputs:
    """What evaluate_samples writes under `folder`: the prediction PNGs (save_results), the
    float16 score maps (save_predictions) and per_image.csv (per_image, write_per_image)."""
    folder: str
    save_results: bool = True
    save_predictions: bool = False
    per_image: bool = False


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


def evaluate_samples(predictors, samples, info, test, outputs, prefetch_threads=0, timings=None,
                     progress=True):
    """Predict every (image, label-or-None) sample with the PredictionOptions `test`, write its
    EvalOutputs `outputs` and return the (C, C) int64 confusion matrix (rows ground truth,
    train ids) over the samples with labels. With `outputs.per_image`, per_image.csv of the
    labelled samples (write_per_image).

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
    per_image = [] if outputs.per_image else None
    for sample, (pred, gt_train, _) in predict_samples(
            predictors, samples, predict, write, threads=prefetch_threads, timings=timings,
            progress='evaluate' if progress else None):
        if gt_train is not None and per_image is not None:
            timings.timed('confusion', _score_image, meter, per_image, sample, gt_train, pred)
        elif gt_train is not None:
            timings.timed('confusion', meter.update, gt_train, pred)
        timings.images += 1
    if per_image and meter.matrix.sum():  # no labelled pixel: no table (nor metrics)
        write_per_image(os.path.join(outputs.folder, PER_IMAGE_NAME), per_image, info.class_names)
    return meter.matrix


def _score_image(meter, per_image, sample, gt_train, pred):
    """Add one image's confusion matrix to `meter` and (its name, image_iou) to `per_image`."""
    conf = confusion_matrix(gt_train, pred, meter.num_classes)
    meter.add(conf)
    per_image.append((sample_name(sample[0]),) + image_iou(conf))


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


def miou13(iou, class_names):
    """The mIoU* of UDA papers over 13 classes (MIOU13_EXCLUDED left out) for the 16-class
    SYNTHIA table (datasets cityscapes16 and synthia); None for other class lists."""
    if len(class_names) != 16 or not set(MIOU13_EXCLUDED) <= set(class_names):
        return None
    return subset_miou(iou, class_names, MIOU13_EXCLUDED)


def write_confusion_csv(path, conf, class_names):
    """PATH: the (C, C) confusion matrix as CSV, a row per ground-truth class and a column per
    predicted class (pixel counts), the top-left header cell saying so."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as f:
            out = csv.writer(f)
            out.writerow(['ground truth (rows) \\ predicted (columns)'] + list(class_names))
            for name, row in zip(class_names, np.asarray(conf)):
                out.writerow([name] + [int(v) for v in row])


def confusion_figure(conf, class_names, title):
    """A matplotlib Figure (Agg canvas, no pyplot) of the confusion matrix with rows normalised
    to 1 (util.metrics.row_normalised; grey: no ground truth), shares >= 0.5% written in %."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib import colormaps
    shares, n = row_normalised(conf), len(class_names)
    fig = Figure(figsize=(3 + 0.45 * n, 2.5 + 0.45 * n))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps['Blues'].with_extremes(bad='lightgrey')
    image = ax.imshow(np.ma.masked_invalid(shares), cmap=cmap, vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.04, label='share of the ground-truth class\'s pixels')
    for (i, j), v in np.ndenumerate(shares):
        if v >= 0.005:
            ax.text(j, i, '%.0f' % (100 * v), ha='center', va='center', fontsize=7,
                    color='white' if v > 0.6 else 'black')
    ax.set_xticks(range(n), class_names, rotation=90)
    ax.set_yticks(range(n), class_names)
    ax.set(xlabel='predicted class', ylabel='ground-truth class',
           title='%s\nconfusion, rows normalised (%%; grey: no ground truth)' % title)
    fig.tight_layout()
    return fig


def write_per_image(path, rows, class_names):
    """PATH: a CSV row per (image name, IoU per class, mIoU) of `rows` (util.metrics.image_iou;
    empty cells for NaN), the worst mIoU first (NaN last, then by name)."""
    def cell(v):
        return '' if np.isnan(v) else '%.6f' % v
    ordered = sorted(rows, key=lambda r: (np.isnan(r[2]), 0 if np.isnan(r[2]) else r[2], r[0]))
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as f:
            out = csv.writer(f)
            out.writerow(['image', 'miou'] + list(class_names))
            for name, iou, miou in ordered:
                out.writerow([name, cell(miou)] + [cell(v) for v in iou])


def write_report(output, conf, info, title):
    """metrics.json (with the kernels' "cpu_isa" and "cpu_threads", util/kernels.py),
    results.md, confusion.csv and confusion.png of a confusion matrix; returns (the metrics
    dict, the summary line, the results table)."""
    metrics = metrics_dict(conf, info.class_names)
    s = scores(conf)
    star = miou13(s['iou'], info.class_names)
    extra = [] if star is None else [('mIoU* (13 classes)', [star])]
    table = format_table([(title, s['iou'], s['miou'])], info.class_names, extra_columns=extra)
    summary = ('pixel accuracy %.2f%%, mean class accuracy %.2f%%, mean IoU %.2f%% over %d classes'
               % (100 * s['pixel_acc'], 100 * s['mean_acc'], 100 * s['miou'], len(s['iou'])))
    if star is not None:
        metrics['miou13'] = star
        summary += '; mIoU* (13 classes: without %s) %.2f%%' % (', '.join(MIOU13_EXCLUDED),
                                                                100 * star)
    metrics.update(cpu_isa=isa_record(), cpu_threads=threads_record())  # the kernels used
    write_json(os.path.join(output, 'metrics.json'), metrics)
    with open(os.path.join(output, 'results.md'), 'w') as f:
        f.write('# %s\n\n%s\n\nIoU per class (%%):\n\n%s' % (title, summary, table))
    write_confusion_csv(os.path.join(output, 'confusion.csv'), conf, info.class_names)
    with atomic_path(os.path.join(output, 'confusion.png')) as tmp:
        confusion_figure(conf, info.class_names, title).savefig(tmp, format='png', dpi=100)
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
    a('--per-image', action='store_true',
      help='also write OUTPUT/per_image.csv: per labelled image its name, its mIoU (the mean '
           'IoU over the classes in its ground truth or predicted on its pixels with ground '
           'truth; ignored pixels do not count) and its IoU per class (empty for a class in '
           'neither), worst mIoU first')
    a('--skip-data-check', action='store_true',
      help='do not check the list\'s files first (issegm/datacheck/: headers, sizes, label '
           'ids of a sample)')
    return parser.parse_args(argv)


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    # Checks of the flags and files first, before MXNet is even imported (a quick error).
    test = check_prediction_flags(args)
    dataset = test.info.name
    samples = load_samples(args.data_root, args.split, dataset, require_labels=False)
    require_file(args.weights, 'weight file')
    if not args.skip_data_check:
        require_clean(samples, dataset, what=args.split)
    check_devices(test)
    with output_lock(args.output) as lock:
        predictors, contexts = load_predictors(test)
        setup_logging(args.log_file or os.path.join(args.output, 'evaluate.log'),
                      debug=args.debug)
        if lock.takeover:
            log.warning('%s', lock.takeover)
        log.info('evaluate %s (%s) on %s %s: %d images, scales %s, flipping %s, devices %s',
                 test.model, args.weights, dataset, args.split, len(samples),
                 ','.join(map(str, test.scales)), 'on' if args.test_flipping else 'off',
                 device_names(contexts))
        log_kernels(log)
        # Written into a stage and moved in place at the end: a run failing half-way leaves
        # the outputs of an earlier run in OUTPUT as they were.
        with staged_output(os.path.join(args.output, STAGE_NAME), args.output) as stage:
            outputs = EvalOutputs(stage, save_results=not args.no_save_results,
                                  save_predictions=args.save_predictions,
                                  per_image=args.per_image)
            evaluate_into(outputs, predictors, samples, test, args.split, args.output)
        if not args.per_image:  # an earlier run's table would not match this metrics.json
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(args.output, PER_IMAGE_NAME))
    return 0


def evaluate_into(outputs, predictors, samples, test, split, output):
    """Predict and score `samples` of the list `split` with `predictors` and the
    TestTimeSettings `test`, writing the EvalOutputs `outputs` and the report into
    outputs.folder (a stage that replaces `output` at the end)."""
    info, model, dataset = test.info, test.model, test.info.name
    timings = Timings()
    t0 = time.time()
    conf = evaluate_samples(predictors, samples, info,
                            PredictionOptions(test.scales, test.flip), outputs,
                            prefetch_threads=test.prefetch_threads, timings=timings,
                            progress=test.progress)
    log.info('done in %.1f s; %s', time.time() - t0, timings.summary())
    nothing = ('no ground truth in %s' if not any(label is not None for _, label in samples)
               else 'no labelled pixel in the labels of %s (every pixel maps to ignore)'
               if not conf.sum() else None)
    if nothing:  # a split without labels, or labels without a labelled pixel: alike
        log.info('%s: no metrics written%s', nothing % split,
                 ' (nor %s)' % PER_IMAGE_NAME if outputs.per_image else '')
        return
    metrics, summary, table = write_report(outputs.folder, conf, info, '%s on %s %s' % (
        model, dataset, os.path.splitext(os.path.basename(split))[0]))
    log.info('%s', summary)
    log.info('IoU per class: %s', ' '.join('%.4f' % v for v in metrics['iou'].values()))
    log.info('results (%%):\n%s', table)
    log.info('wrote metrics.json, results.md, confusion.csv, confusion.png%s in %s',
             ' and ' + PER_IMAGE_NAME if outputs.per_image else '', output)


if __name__ == '__main__':
    sys.exit(main())
