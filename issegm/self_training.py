"""One CBST round phase (yzou2/CBST solve_ST.py; docs/algorithm.md sections 2 and 3):
`--phase val` makes pseudo-labels, `--phase train` retrains on source + pseudo-labelled target.
Wrapped by issegm/self-paced-self-trained-segresnet.py (and its later upstream name solve_ST.py).
"""
import logging
import os
import sys
import time

import numpy as np

from issegm import netmaps
from issegm.cbst import POLICIES
from issegm.datasets import (get_dataset, load_samples, read_sample, resolve_split,
                             target_dataset)
from issegm.make_prior import load_prior
from issegm.testtime import device_names
from util.crst_settings import crst_settings, describe, is_active
from util.errors import UserError, cli_entry
from util.files import write_json
from util.flags import (KVSTORE_HELP, KVSTORES, FlagParser, check_epochs, check_test_steps,
                        parse_bool, parse_scale_range, parse_test_scales, set_mxnet_switches,
                        training_schedule_flags, training_switch_flags)
from util.logs import rank_log_file, setup_logging
from util.lr_scheduler import make_lr_scheduler
from util.metrics import format_table
from util.model_label import (check_num_classes, checkpoint_path, checkpoint_prefix,
                              model_from_weights, parse_model_label, start_epoch)
from util.prefetch import KINDS as PREFETCHER_KINDS

log = logging.getLogger('cbst')

VAL_DONE = 'val.done'
TRAIN_DONE = 'train.done'


def shared_flags():
    """A parent parser of the flags the orchestrator passes on to this script, which both take
    (argparse `parents=`); a new one per call, as a child's set_defaults changes its actions."""
    parser = FlagParser(add_help=False)
    a = parser.add_argument
    a('--dataset', default='gta', help='source dataset: gta or synthia')
    a('--dataset-tgt', default='cityscapes',
      help='target dataset: cityscapes (the 16-class cityscapes16 tables when --dataset is '
           'synthia, as upstream) or cityscapes16')
    a('--split', default='train', help='source split name or .lst path')
    a('--split-tgt', default='val', help='target split name or .lst path')
    a('--data-root', help='source dataset root')
    a('--data-root-tgt', help='target dataset root')
    a('--output', required=True, help='output folder of the run')
    a('--model', help='model label (default: the weights file name before _ep-)')
    a('--weights', required=True, help='weight file to start from')
    a('--batch-images', type=int, default=2, help='images per batch (all devices)')
    a('--crop-size', type=int, default=500, help='training crop side (rounded up to the stride)')
    a('--origin-size', type=int, default=2048, help='source image size the scales refer to')
    a('--origin-size-tgt', type=int, default=2048, help='target image size the scales refer to')
    a('--init-tgt-port', type=float, default=0.3, help='portion of target pixels to pseudo-label')
    a('--init-src-port', type=float, default=0.3, help='portion of source images to train on')
    a('--seed-int', type=int, default=0, help='source sampling seed (cumulative policy)')
    a('--mine-port', type=float, default=0.5, help='probability of small-class patch mining')
    a('--mine-id-number', type=int, default=3, help='number of rarest classes to mine')
    a('--mine-thresh', type=float, default=0.001, help='class ratio below which mining has priority')
    a('--with-prior', type=parse_bool, default=False, help="'True' to weight maps by the spatial prior")
    a('--prior', help='spatial prior .mat (default spatial_prior/DATASET/prior_array.mat)')
    a('--test-scales', default='2048', help='longer side at test time (one value in phase val)')
    a('--scale-rate-range', default='0.7,1.3', help='training scale range lo,hi')
    a('--base-lr', type=float, default=1e-4)
    a('--kc-policy', default='cb', choices=POLICIES,
      help='cb (class-balanced) or global (plain ST)')
    a('--prefetch-threads', type=int, default=1)
    a('--prefetcher', default='thread', choices=PREFETCHER_KINDS,
      help='phase train: crop workers in threads or processes (default %(default)s)')
    a('--cache-images', type=parse_bool, default=False,
      help='phase train: 1 keeps decoded training images in memory (default 0, as upstream\'s '
           'solve_AO.py passed; its solve_ST.py cached the image files when not given)')
    a('--gpus', default='0', help='cpu, cpu:N or GPU ids like 0,1')
    a('--keep-probmaps', action='store_true', help='keep OUTPUT/probmap/NAME.npy (C,H,W) maps')
    a('--kvstore', default='local', choices=KVSTORES, help=KVSTORE_HELP)
    a('--no-progress', action='store_true', help='no progress bars')
    crst = parser.add_argument_group(
        'CRST (Zou et al., ICCV 2019; 0 = off, the default: CBST unchanged)',
        'A label regulariser and one model regulariser go together. The released code '
        '(yzou2/CRST crst_seg.py) multiplies the MR-KLD term by its --mr-weight-kld twice, so '
        'its value w is w * w here: its mrkld.sh\'s 0.1 is --mr-weight-kld 0.01; its '
        '--lr-weight-ent (lrent.sh: 0.25) is the same number here.')
    crst.add_argument('--lr-weight-ent', type=float, default=0.0, metavar='ALPHA',
                      help='LR-ENT: soft pseudo-labels y_k ~ (p_k / t_k)^(1/ALPHA), kept where '
                           'the entropy-regularised loss beats the thresholds\'; needs '
                           '--kc-policy cb and --test-steps 1')
    crst.add_argument('--mr-weight-kld', type=float, default=0.0, metavar='W',
                      help='MR-KLD: adds W * the mean over pseudo-labelled target pixels of '
                           'sum_k -log p_k / K')
    crst.add_argument('--mr-weight-l2', type=float, default=0.0, metavar='W',
                      help='MR-L2 (the paper\'s Table 1, not released): W * that mean of '
                           'sum_k p_k^2')
    crst.add_argument('--mr-weight-ent', type=float, default=0.0, metavar='W',
                      help='MR-ENT (the paper\'s Table 1, not released): W * that mean of '
                           'sum_k p_k log p_k')
    return parser


def crst_of(args):
    """The CrstSettings of the four CRST flags (util/crst_settings.py); a UserError for a bad
    value, two model regularisers, or LR-ENT without class-balanced thresholds (yzou2/CRST
    crst_seg.py, label_selection, defines it on the `cb` thresholds only)."""
    settings = crst_settings(args.lr_weight_ent, args.mr_weight_kld, args.mr_weight_l2,
                             args.mr_weight_ent)
    if settings.lr_weight_ent > 0 and args.kc_policy != 'cb':
        raise UserError('--lr-weight-ent needs --kc-policy cb (LR-ENT divides by the '
                        'class-balanced thresholds), got --kc-policy %s' % args.kc_policy)
    return settings


def parse_args(argv):
    parser = FlagParser(
        description='One phase of one CBST self-training round.',
        parents=[shared_flags(), training_switch_flags(), training_schedule_flags(to_epoch=2)],
        epilog='--check-start and --check-step are accepted and ignored, as upstream (a '
               'checkpoint is written after every epoch).')
    a = parser.add_argument
    a('--phase', default='train', choices=('train', 'val'))
    a('--idx-round', type=int, default=0)
    a('--mine-id-address', help='folder with mine_id.npy and mine_id_priority.npy (phase train)')
    a('--test-flipping', action='store_true')
    a('--test-steps', type=int, default=1)
    a('--log-file')
    args = parser.parse_args(argv)
    return check_args(args)


def check_args(args):
    """Validate flag values and fill in defaults derived from other flags."""
    args.dataset_tgt = target_dataset(args.dataset, args.dataset_tgt)
    args.model = model_from_weights(args.model, args.weights)
    args.parsed_model = parse_model_label(args.model)
    args.from_epoch = start_epoch(args.model, args.weights, args.from_epoch)[0]
    if args.stop_epoch is None:
        args.stop_epoch = args.to_epoch
    args.test_scales_list = parse_test_scales(args.test_scales)
    args.scale_range = parse_scale_range(args.scale_rate_range)
    args.crst = crst_of(args)
    if args.crst.lr_weight_ent > 0 and args.test_steps != 1:
        # N steps keep N * N times larger network maps for phase train: 10 MB per 2048x1024
        # image at N = 2, over the 8 MB budget; the orchestrator never passes --test-steps.
        raise UserError('--lr-weight-ent needs --test-steps 1 (phase train recomputes the soft '
                        'labels from the stride-%d maps), got %d'
                        % (args.parsed_model.stride, args.test_steps))
    return args


def round_dir(args):
    return os.path.join(args.output, str(args.idx_round))


def target_list_path(args):
    """The pseudo-labelled target training list: under OUTPUT, never in the code tree."""
    split = os.path.splitext(os.path.basename(args.split_tgt))[0]
    return os.path.join(round_dir(args), 'self_train', '%s_training.lst' % split)


def default_prior_path(dataset):
    """spatial_prior/DATASET/prior_array.mat relative to the working directory, else the repo."""
    rel = os.path.join('spatial_prior', dataset, 'prior_array.mat')
    if os.path.isfile(rel):
        return rel
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(repo, rel)


def _load_model(args, allow_missing=False):
    from util.symbol.resnet38 import parameter_shapes  # these import MXNet: after the flags
    from util.weights import load_for_model
    return load_for_model(args.weights, parameter_shapes(args.model), allow_missing=allow_missing)


# ----------------------------------------------------------------------------------- phase val
def run_val(args):
    """Pseudo-label the target split (yzou2/CBST issegm/solve_ST.py, _val_impl) and write the
    mining statistics: the checks, the model and prior, then the steps of issegm/phase_val.py."""
    from issegm import phase_val  # these import MXNet: after the flags
    from issegm.inference import make_predictors
    from util.devices import parse_devices

    info = get_dataset(args.dataset_tgt)
    num_classes = check_num_classes(args.model, info).num_classes
    if len(args.test_scales_list) != 1:
        raise UserError('phase val takes one test scale, got --test-scales %s' % args.test_scales)
    check_test_steps(args.test_steps, args.parsed_model.stride)
    samples = load_samples(args.data_root_tgt, args.split_tgt, args.dataset_tgt,
                           require_labels=False)
    contexts = parse_devices(args.gpus)
    arg_params, aux_params = _load_model(args)
    prior = _load_prior(args, samples, num_classes)
    predictors = make_predictors(args.model, arg_params, aux_params, contexts,
                                 args.parsed_model.stride, args.test_steps)
    has_gt = all(label is not None and os.path.isfile(label) for _, label in samples)
    log.info('round %d phase val: %d target images, scale %d, flipping %s, test steps %d, '
             'prior %s, policy %s, devices %s', args.idx_round, len(samples),
             args.test_scales_list[0], args.test_flipping, args.test_steps, args.with_prior,
             args.kc_policy, device_names(contexts))
    final = round_dir(args)
    label = 'round %d' % args.idx_round
    progress = not args.no_progress
    started = time.perf_counter()
    with phase_val.staged_output(final, _val_parts(args, final)) as stage:
        target = phase_val.TargetSplit(info, samples, has_gt, prior, stage, phase_val.MapCache(
            os.path.join(stage, 'cache'), predictors[0].pred_stride))
        first = phase_val.predict_target(predictors, target, args.test_scales_list[0],
                                         args.test_flipping, args.kc_policy, progress, label)
        cls_thresh, cls_size = first.pool.thresholds(args.init_tgt_port)
        log.info('thresholds (portion %.4f, %s): %s', args.init_tgt_port, args.kc_policy,
                 ' '.join('%.4f' % t for t in cls_thresh))
        phase_val.write_mining_stats(os.path.join(stage, 'stats'), cls_thresh, cls_size,
                                     args.mine_id_number, args.mine_thresh)
        selected, total_pixels = phase_val.label_target(
            target, first.images, cls_thresh, args.kc_policy,
            os.path.join(stage, 'self_train', os.path.basename(target_list_path(args))),
            os.path.join(os.path.abspath(final), 'self_train', 'pseudo_labelIds'),
            args.data_root_tgt, os.path.join(args.output, 'probmap') if args.keep_probmaps
            else None, progress, label + ' labels', alpha=args.crst.lr_weight_ent)
        if args.crst.lr_weight_ent > 0:
            netmaps.write_record(os.path.join(stage, 'self_train'), args.crst.lr_weight_ent,
                                 cls_thresh, target.cache.pred_stride, first.images,
                                 *_prior_source(args, prior))
        if first.meter is not None:
            log.info('%s mIoU on %s (network argmax):\n%s', label, args.split_tgt,
                     format_table([(label, first.meter.scores()['iou'],
                                    first.meter.scores()['miou'])], info.class_names))
        report = phase_val.write_round_report(
            os.path.join(stage, 'metrics.json'), _val_header(args, len(samples)), info, first,
            cls_thresh, cls_size, selected, total_pixels,
            phase_val.round_timing(time.perf_counter() - started, first, len(contexts)))
    write_json(os.path.join(final, VAL_DONE), {'argv': args.argv})
    return report


def _prior_path(args):
    return args.prior or default_prior_path(args.dataset)


def _load_prior(args, samples, num_classes):
    """The spatial prior with --with-prior (sized as the first target image), else None."""
    if not args.with_prior:
        return None
    first_image, _ = read_sample(samples[0][0], None)
    return load_prior(_prior_path(args), num_classes, first_image.shape[:2])


def _prior_source(args, prior):
    """(path, (H, W)) of the prior phase val loaded, (None, None) without one."""
    return (None, None) if prior is None else (_prior_path(args), prior.shape[1:])


def _val_parts(args, final):
    """Where phase val's staged outputs go: {name in the stage: destination}."""
    parts = {part: os.path.join(final, part) for part in ('results', 'self_train', 'metrics.json')}
    parts['stats'] = os.path.join(args.output, 'stats')
    return parts


def _val_header(args, num_images):
    header = {'round': args.idx_round, 'tgt_port': args.init_tgt_port,
              'kc_policy': args.kc_policy, 'with_prior': bool(args.with_prior),
              'num_images': num_images}
    if args.crst.lr_weight_ent > 0:  # a CBST round's metrics.json stays as it was
        header['lr_weight_ent'] = args.crst.lr_weight_ent
    return header


# --------------------------------------------------------------------------------- phase train
def schedule_batches_per_epoch(args):
    """Batches per epoch of the lr schedule: the number of lines of the SOURCE list file //
    --batch-images (yzou2/CBST issegm/solve_ST.py, _train_impl). QUIRK kept: not the number of
    samples this phase trains on (selected source + pseudo-labelled target)."""
    with open(resolve_split(args.dataset, args.split)) as f:
        lines = len(f.readlines())
    return lines // args.batch_images


def mining_statistics(args):
    """(mine_id, mine_id_priority) as lists from --mine-id-address (phase val's OUTPUT/stats);
    empty without mining (--mine-port 0)."""
    if args.mine_port <= 0:
        return (), ()
    if not args.mine_id_address:
        raise UserError('--mine-id-address is required in phase train when --mine-port > 0 '
                        '(the stats folder written by phase val, e.g. OUTPUT/stats)')
    files = [os.path.join(args.mine_id_address, n + '.npy') for n in ('mine_id', 'mine_id_priority')]
    for f in files:
        if not os.path.isfile(f):
            raise UserError('mining statistics not found: %s' % f)
    mine_id, mine_id_priority = (np.load(f).astype(int).tolist() for f in files)
    return mine_id, mine_id_priority


def phase_log_file(args):
    return args.log_file or os.path.join(args.output, 'round%d-%s.log' % (args.idx_round,
                                                                          args.phase))


def run_train(args):
    """Retrain on the selected source images and the pseudo-labelled target (yzou2/CBST solve_ST.py
    _train_impl): the
    checks of the flags and files, then _train_round."""
    infos = get_dataset(args.dataset), get_dataset(args.dataset_tgt)
    tgt_list = target_list_path(args)
    if not os.path.isfile(tgt_list):
        raise UserError('pseudo-label list %s not found: run phase val of round %d first'
                        % (tgt_list, args.idx_round))
    mining = mining_statistics(args)
    check_epochs(args.from_epoch, args.stop_epoch, args.to_epoch)
    if args.batch_images < 1:
        raise UserError('--batch-images must be positive, got %d' % args.batch_images)
    batches = schedule_batches_per_epoch(args)
    schedule = make_lr_scheduler(args.lr_type, args.base_lr, args.lr_steps,
                                 args.from_epoch * batches, args.to_epoch * batches)
    return _train_round(args, infos, tgt_list, mining, batches, schedule)


def _clear_round_outputs(args, prefix):
    """A redone phase starts clean: no checkpoints or marker of an earlier, killed attempt."""
    for epoch in range(args.from_epoch + 1, args.stop_epoch + 1):
        stale = checkpoint_path(prefix, epoch)
        if os.path.exists(stale):
            os.remove(stale)
    done = os.path.join(round_dir(args), TRAIN_DONE)
    if os.path.exists(done):
        os.remove(done)


def _train_round(args, infos, tgt_list, mining, batches, schedule):
    """Phase train's MXNet part: devices, weights, kvstore, the round's samples, fit."""
    from issegm.data_iter import SegTrainIter, self_training_samples  # these import MXNet
    from issegm.training import NLL_EPS_SELF_TRAINING, fit, start_worker
    from util.crst_loss import training_symbol
    from util.devices import parse_devices

    arg_params, aux_params = _load_model(args, allow_missing=args.from_epoch == 0)
    kv, contexts, (_, rank, workers) = start_worker(args.kvstore, parse_devices(args.gpus))
    if rank > 0:
        setup_logging(rank_log_file(phase_log_file(args), rank), debug=args.debug)
    source = load_samples(args.data_root, args.split, args.dataset)
    target = load_samples(args.data_root_tgt, tgt_list, args.dataset_tgt)
    soft = (netmaps.soft_sources(os.path.dirname(tgt_list), args.crst.lr_weight_ent, target)
            if args.crst.lr_weight_ent > 0 else None)
    samples = self_training_samples(source, infos[0], target, infos[1], args.init_src_port,
                                    args.seed_int, args.origin_size, args.origin_size_tgt, soft)
    train_iter = SegTrainIter(samples, args.batch_images, args.crop_size,
                              stride=args.parsed_model.stride, scale_rate_range=args.scale_range,
                              mine_port=args.mine_port, mine_id=mining[0],
                              mine_id_priority=mining[1], seed=args.seed_int + args.idx_round,
                              prefetch_threads=args.prefetch_threads, prefetcher=args.prefetcher,
                              num_parts=workers, part_index=rank,
                              cache_images=bool(args.cache_images), crst=args.crst,
                              num_classes=len(infos[1].class_names))
    prefix = checkpoint_prefix(round_dir(args), args.model)
    os.makedirs(round_dir(args), exist_ok=True)
    if rank == 0:
        _clear_round_outputs(args, prefix)
    log.info('round %d phase train: %d source (portion %s, seed %d) + %d target samples, '
             'epochs %d..%d of a schedule to %d (%d batches per epoch), lr %s %g, %d device(s), '
             'worker %d/%d', args.idx_round, len(samples) - len(target), args.init_src_port,
             args.seed_int, len(target), args.from_epoch, args.stop_epoch, args.to_epoch,
             batches, args.lr_type, args.base_lr, len(contexts), rank, workers)
    if is_active(args.crst):
        log.info('CRST: %s', ', '.join('%s %g' % kv for kv in describe(args.crst).items()))
    try:
        history = fit(training_symbol(args.parsed_model, args.crst), train_iter, contexts,
                      arg_params, aux_params, args.from_epoch, args.stop_epoch, prefix, schedule,
                      args.weight_decay, kv, allow_missing=args.from_epoch == 0,
                      nll_eps=NLL_EPS_SELF_TRAINING, progress=not args.no_progress,
                      mirror=args.backward_do_mirror)
    finally:
        train_iter.close()
    if rank == 0:
        write_json(os.path.join(round_dir(args), TRAIN_DONE),
                   {'argv': args.argv, 'history': history})
    return history


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv
    # Environment switches before MXNet is imported (it reads them then, or at graph building).
    set_mxnet_switches(args.backward_do_mirror, args.no_cudnn, args.debug)
    os.makedirs(args.output, exist_ok=True)
    setup_logging(phase_log_file(args), debug=args.debug)
    if args.phase == 'val':
        run_val(args)
    else:
        run_train(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
