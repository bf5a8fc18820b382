"""Train a segmentation model on a labelled source dataset.

As yzou2/CBST train_src.py and data_src.py (docs/algorithm.md section 4; the starting points
and checkpoints: docs/internals.md section 4). Commands: the README, "Source training".
"""
import dataclasses
import logging
import os
import sys
from typing import Optional

if __package__ in (None, ''):  # run by path without installation: the repo root holds `util`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from issegm import evaluate  # noqa: E402
from issegm.datacheck.lists import require_clean  # noqa: E402
from issegm.datasets import get_dataset, load_samples  # noqa: E402
from util.errors import UserError, cli_entry, require_file  # noqa: E402
from util.flags import (KVSTORE_HELP, KVSTORES, FlagParser, check_epochs,  # noqa: E402
                        check_non_negative, check_positive, parse_bool, parse_scale_range,
                        set_mxnet_switches, training_schedule_flags, training_switch_flags)
from util.kernels import log_kernels  # noqa: E402
from util.locks import output_lock  # noqa: E402
from util.logs import rank_log_file, setup_logging  # noqa: E402
from util.lr_scheduler import make_lr_scheduler  # noqa: E402
from util.model_label import (ModelLabel, check_num_classes, checkpoint_prefix,  # noqa: E402
                              is_classifier, parse_model_label, split_weights_name, start_epoch)
from util.prefetch import KINDS as PREFETCHER_KINDS  # noqa: E402

__all__ = ['parse_args', 'evaluate_argv', 'resolve_start', 'load_start_weights', 'SourceStart',
           'check_args', 'SourceTraining', 'source_training', 'lr_schedule', 'train', 'main']

log = logging.getLogger('cbst')


def parse_args(argv):
    parser = FlagParser(
        description=__doc__.splitlines()[0],
        parents=[training_switch_flags(), training_schedule_flags(to_epoch=30)],
        epilog='--phase val evaluates --weights on the source --split through issegm/'
               'evaluate.py (upstream parsed --phase but ran only train); the test flags '
               '(--test-scales, --test-flipping, --test-steps, --save-predictions, '
               '--no-save-results) apply to it. --check-start and --check-step are accepted '
               'and ignored, as in yzou2/CBST issegm/train_src.py, which declares them and never '
               'reads them (a checkpoint is written after every epoch).')
    a = parser.add_argument
    a('--gpus', default='0', help='cpu, cpu:N or GPU ids like 0,1,2,3')
    a('--split', default='train',
      help='split name (issegm/data_list/DATASET/SPLIT.lst) or .lst path')
    a('--data-root', required=True, help='dataset root (paths in the list file are relative)')
    a('--dataset', help='gta, synthia, cityscapes, cityscapes16 (default: from --model)')
    a('--output', required=True, help='output folder for checkpoints and the log')
    a('--model', help='model label, e.g. gta_rna-a1_cls19_s8 (default: the weights file name '
                      'before _ep-, unless that is the classifier)')
    a('--weights', required=True, help='ImageNet classifier or a checkpoint of this model')
    a('--phase', default='train', choices=('train', 'val'),
      help='train (default) or val: evaluate --weights on --split')
    a('--batch-images', type=int, default=16, help='images per batch over all devices')
    a('--crop-size', type=int, default=500, help='crop side (rounded up to the stride)')
    a('--scale-rate-range', default='0.7,1.3', help='random scale range lo,hi')
    a('--origin-size', type=int, help='image size the scale rates refer to (default: the '
                                      'longer side of the dataset max shape, e.g. 1914 for gta)')
    a('--base-lr', type=float, default=0.0016)
    a('--test-scales', help='--phase val: longer side(s) at test time, comma-separated')
    a('--test-flipping', action='store_true', help='--phase val: average with the mirror image')
    a('--test-steps', type=int, default=1, help='--phase val: see evaluate.py')
    a('--save-predictions', action='store_true', help='--phase val: keep the score maps')
    a('--no-save-results', action='store_true', help='--phase val: no prediction PNGs')
    a('--kvstore', default='device', choices=KVSTORES,
      help=KVSTORE_HELP + ' (default %(default)s, as yzou2/CBST train_src.py parse_args)')
    a('--prefetch-threads', type=int, default=1, help='crop workers (0: inline)')
    a('--prefetcher', default='thread', choices=PREFETCHER_KINDS, help='crop workers')
    a('--cache-images', type=parse_bool, default=False,
      help='0 or 1: keep decoded images in memory (default 0; upstream cached the image files '
           'when the flag was not given)')
    a('--log-file', help='log file (default OUTPUT/train_src.log)')
    a('--seed', type=int, default=0, help='seed of the crops, the shuffling and the head init')
    a('--no-progress', action='store_true', help='no progress bars')
    a('--skip-data-check', action='store_true',
      help='do not check the list\'s files before training (issegm/datacheck/: headers, '
           'sizes, label ids of a sample)')
    return parser.parse_args(argv)


def evaluate_argv(args):
    """The issegm/evaluate.py command line for `--phase val`: --weights on the source --split."""
    argv = ['--data-root', args.data_root, '--output', args.output, '--split', args.split,
            '--weights', args.weights, '--gpus', args.gpus, '--prefetch-threads',
            str(args.prefetch_threads), '--test-steps', str(args.test_steps),
            '--cache-images', str(int(args.cache_images))]
    for flag, value in (('--dataset', args.dataset), ('--model', args.model),
                        ('--test-scales', args.test_scales), ('--log-file', args.log_file)):
        if value is not None:
            argv += [flag, value]
    for flag, on in (('--test-flipping', args.test_flipping),
                     ('--save-predictions', args.save_predictions),
                     ('--no-save-results', args.no_save_results), ('--no-cudnn', args.no_cudnn),
                     ('--deterministic', args.deterministic), ('--debug', args.debug),
                     ('--no-progress', args.no_progress),
                     ('--skip-data-check', args.skip_data_check)):
        if on:
            argv.append(flag)
    return argv


def resolve_start(model, weights, from_epoch):
    """(model label, parsed label, from_epoch, continuing) from the flags (the rules of
    yzou2/CBST train_src.py parse_args)."""
    weights_model = split_weights_name(weights)[0]
    if not model:
        if weights_model is None or is_classifier(parse_model_label(weights_model)):
            raise UserError('--model is required when the weights (%s) are not a checkpoint '
                            'MODEL_ep-NNNN.params of a segmentation model'
                            % os.path.basename(weights or ''))
        model = weights_model
    parsed = parse_model_label(model)
    if is_classifier(parsed):
        raise UserError('--model %s is the ImageNet classifier; train_src trains a segmentation '
                        'model, e.g. gta_rna-a1_cls19_s8' % model)
    from_epoch, continuing = start_epoch(model, weights, from_epoch)
    return model, parsed, from_epoch, continuing


def load_start_weights(path, model, continuing, from_epoch):
    """Parameters to start from: a checkpoint of the model must fit exactly; another model's
    file (the classifier) may lack the head (only at epoch 0) and have extra parameters, which
    are dropped. Returns ((arg_params, aux_params), names of the missing parameters)."""
    from util.symbol.resnet38 import parameter_shapes  # these import MXNet: after the flags
    from util.weights import check_fit, load_for_model
    expected = parameter_shapes(model)
    if continuing:
        return load_for_model(path, expected), []
    try:
        arg_params, aux_params = load_for_model(path, expected, allow_missing=from_epoch == 0,
                                                allow_unexpected=True)
    except UserError as e:
        if from_epoch == 0:
            raise
        raise UserError('%s; parameters missing from the weights are initialised only when '
                        'starting at epoch 0 (--from-epoch %d)' % (e, from_epoch))
    if not arg_params:
        raise UserError('weight file %s shares no parameter with %s' % (path, model))
    missing = ['%s:%s' % key for key in check_fit(expected, arg_params, aux_params).missing]
    if missing:
        log.info('initialising %d parameters missing from %s: %s', len(missing), path,
                 ', '.join(missing))
    return (arg_params, aux_params), missing


@dataclasses.dataclass(frozen=True)
class SourceStart:
    """What check_args derives from the flags: the model label (parsed), where training starts
    (from_epoch; continuing its own checkpoint or not) and stops, the dataset's tables, the
    scale range and the origin size."""
    model: str
    parsed_model: ModelLabel
    from_epoch: int
    stop_epoch: int
    continuing: bool
    info: object
    scale_range: tuple
    origin_size: int


def check_args(args):
    """Checks of the flags and files that need no MXNet (a quick error), in upstream's order of
    use; the SourceStart."""
    require_file(args.weights, 'weight file')
    model, parsed_model, from_epoch, continuing = resolve_start(
        args.model, args.weights, args.from_epoch)
    info = get_dataset(args.dataset or parsed_model.dataset)
    check_num_classes(model, info)
    stop_epoch = check_epochs(from_epoch, args.stop_epoch, args.to_epoch)
    check_positive('--batch-images', args.batch_images)
    check_positive('--crop-size', args.crop_size)
    check_non_negative('--prefetch-threads', args.prefetch_threads)
    scale_range = parse_scale_range(args.scale_rate_range)
    origin_size = check_positive('--origin-size', args.origin_size or max(info.max_shape))
    return SourceStart(model, parsed_model, from_epoch, stop_epoch, continuing, info,
                       scale_range, origin_size)


@dataclasses.dataclass(frozen=True)
class SourceTraining:
    """The flags `train` and `lr_schedule` read, as parsed (each field the flag's dest)."""
    split: str
    output: str
    log_file: Optional[str]
    weights: str
    gpus: str
    debug: bool
    kvstore: str
    batch_images: int
    crop_size: int
    scale_rate_range: str
    seed: int
    prefetch_threads: int
    prefetcher: str
    cache_images: bool
    lr_type: str
    base_lr: float
    lr_steps: Optional[str]
    to_epoch: int
    weight_decay: float
    no_progress: bool
    backward_do_mirror: bool


def source_training(args):
    """The SourceTraining of the parsed flags."""
    return SourceTraining(**{field.name: getattr(args, field.name)
                             for field in dataclasses.fields(SourceTraining)})


def lr_schedule(run, start, num_samples):
    """The lr schedule over epochs 0 .. --to-epoch. yzou2/CBST issegm/train_src.py,
    _train_impl: it counts the iterator's batches per epoch, len(samples) // batch_images."""
    batches = num_samples // run.batch_images
    return make_lr_scheduler(run.lr_type, run.base_lr, run.lr_steps,
                             start.from_epoch * batches, run.to_epoch * batches)


def train(run, start, samples, schedule, lock=None):
    """The MXNet part (`run`: a SourceTraining): devices, kvstore, the per-rank log, weights,
    seeds, iterator, fit (`lock`: the output folder's util.locks.OutputLock, whose takeover
    line is logged)."""
    import mxnet as mx  # MXNet and the modules using it: only once the flags are checked

    from issegm.data_iter import LoaderSettings, SegTrainIter, source_only_samples
    from issegm.sampling import CropSettings
    from issegm.training import NLL_EPS_SOURCE, FitSettings, fit, start_worker
    from util.devices import parse_devices
    from util.symbol.resnet38 import build_symbol

    # a Horovod rank keeps one device of --gpus (start_worker): --debug is checked on that one
    contexts = parse_devices(run.gpus, run.debug and run.kvstore != 'horovod')
    kv, contexts, (_, rank, workers) = start_worker(run.kvstore, contexts)
    if run.batch_images < len(contexts):
        raise UserError('--batch-images %d is less than the %d devices'
                        % (run.batch_images, len(contexts)))
    os.makedirs(run.output, exist_ok=True)
    setup_logging(rank_log_file(run.log_file or os.path.join(run.output, 'train_src.log'),
                                rank), debug=run.debug)
    if lock is not None and lock.takeover:
        log.warning('%s', lock.takeover)
    (arg_params, aux_params), missing = load_start_weights(run.weights, start.model,
                                                           start.continuing, start.from_epoch)
    np.random.seed(run.seed)
    mx.random.seed(run.seed)  # the initialiser of the missing head draws from MXNet's generator
    crops = CropSettings(run.crop_size, start.parsed_model.stride, start.scale_range)
    loading = LoaderSettings(run.prefetch_threads, run.prefetcher, run.cache_images)
    train_iter = SegTrainIter(source_only_samples(samples, start.info, start.origin_size),
                              run.batch_images, crops, seed=run.seed, loading=loading,
                              num_parts=workers, part_index=rank, begin_epoch=start.from_epoch)
    log.info('train_src %s on %s %s: %d samples, %d batches of %d per epoch, crop %d, scales %s, '
             'origin %d, epochs %d..%d of a schedule to %d, lr %s %g, wd %g, %d device(s) %s, '
             'kvstore %s, worker %d/%d, from %s', start.model, start.info.name, run.split,
             len(samples), len(train_iter), run.batch_images, train_iter.crop,
             run.scale_rate_range, start.origin_size, start.from_epoch, start.stop_epoch,
             run.to_epoch, run.lr_type, run.base_lr, run.weight_decay, len(contexts),
             ','.join(map(str, contexts)), run.kvstore, rank, workers, run.weights)
    log_kernels(log)
    fitting = FitSettings(start.from_epoch, start.stop_epoch,
                          checkpoint_prefix(run.output, start.model), schedule,
                          weight_decay=run.weight_decay, allow_missing=bool(missing),
                          nll_eps=NLL_EPS_SOURCE, progress=not run.no_progress,
                          mirror=run.backward_do_mirror)
    try:
        return fit(build_symbol(start.parsed_model), train_iter, contexts,
                   (arg_params, aux_params), fitting, kv)
    finally:
        train_iter.close()


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    if args.phase == 'val':
        return evaluate.main(evaluate_argv(args))
    # Environment switches first: MXNet reads them when it is imported or builds the graph.
    set_mxnet_switches(args.backward_do_mirror, args.no_cudnn, args.debug, args.deterministic)
    start = check_args(args)
    samples = load_samples(args.data_root, args.split, start.info.name)
    if not args.skip_data_check:
        require_clean(samples, start.info.name, what=args.split)
    from util.devices import parse_devices  # imports MXNet: after the flags
    # a bad --gpus stops before the output folder and its lock
    parse_devices(args.gpus, args.debug and args.kvstore != 'horovod')
    with output_lock(args.output) as lock:  # evaluate.py locks it itself for --phase val
        run = source_training(args)
        history = train(run, start, samples, lr_schedule(run, start, len(samples)), lock)
    for h in history:
        log.info('epoch %d: NLL %.5f over %d batches', h['epoch'], h['nll'], h['batches'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
