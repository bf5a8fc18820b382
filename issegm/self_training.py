"""One phase of one CBST round, the command line of issegm/phase_val.py (`--phase val`) and
issegm/phase_train.py (`--phase train`): flags, checks, dispatch. Wrapped by
issegm/self-paced-self-trained-segresnet.py and solve_ST.py (yzou2/CBST's two names).
"""
import os
import sys

from issegm.datasets import target_dataset
from issegm.prior import default_prior_path
from issegm.round_files import phase_log_file
from issegm.round_flags import crst_of, shared_flags
from issegm.round_settings import DataSplit, RoundSettings, TrainSettings, ValSettings
from issegm.sampling import CropSettings
from util.errors import UserError, cli_entry
from util.flags import (FlagParser, parse_scale_range, parse_test_scales, set_mxnet_switches,
                        training_schedule_flags, training_switch_flags)
from util.logs import setup_logging
from util.model_label import model_from_weights, parse_model_label, start_epoch


def parse_args(argv):
    """The flags as given (check_args turns them into the phase's settings)."""
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
    return parser.parse_args(argv)


def check_args(args, argv=()):
    """Validate the flag values; the ValSettings or TrainSettings of --phase (argv: the command
    line, which the phase's done marker records)."""
    dataset_tgt = target_dataset(args.dataset, args.dataset_tgt)
    model = model_from_weights(args.model, args.weights)
    parsed_model = parse_model_label(model)
    from_epoch = start_epoch(model, args.weights, args.from_epoch)[0]
    test_scales = tuple(parse_test_scales(args.test_scales))
    scale_range = parse_scale_range(args.scale_rate_range)
    crst = crst_of(args)
    if crst.lr_weight_ent > 0 and args.test_steps != 1:
        # N steps keep N * N times larger network maps for phase train: 10 MB per 2048x1024
        # image at N = 2, over the 8 MB budget; the orchestrator never passes --test-steps.
        raise UserError('--lr-weight-ent needs --test-steps 1 (phase train recomputes the soft '
                        'labels from the stride-%d maps), got %d'
                        % (parsed_model.stride, args.test_steps))
    rnd = RoundSettings(
        output=args.output, idx_round=args.idx_round, phase=args.phase, model=model,
        parsed_model=parsed_model, weights=args.weights, gpus=args.gpus,
        source=DataSplit(args.dataset, args.split, args.data_root),
        target=DataSplit(dataset_tgt, args.split_tgt, args.data_root_tgt), crst=crst,
        log_file=args.log_file or phase_log_file(args.output, args.idx_round, args.phase),
        debug=args.debug, progress=not args.no_progress, argv=tuple(argv))
    if args.phase == 'val':
        prior_path = ((args.prior or default_prior_path(args.dataset)) if args.with_prior
                      else None)
        return ValSettings(rnd, test_scales, args.test_flipping, args.test_steps,
                           args.init_tgt_port, args.kc_policy, prior_path, args.mine_id_number,
                           args.mine_thresh, args.keep_probmaps)
    crops = CropSettings(args.crop_size, parsed_model.stride, scale_range, args.mine_port,
                         crst=crst)
    return TrainSettings(
        rnd, src_port=args.init_src_port, seed=args.seed_int, origin_size=args.origin_size,
        origin_size_tgt=args.origin_size_tgt, batch_images=args.batch_images, crops=crops,
        mine_id_address=args.mine_id_address, prefetch_threads=args.prefetch_threads,
        prefetcher=args.prefetcher, cache_images=args.cache_images, kvstore=args.kvstore,
        from_epoch=from_epoch,
        stop_epoch=args.to_epoch if args.stop_epoch is None else args.stop_epoch,
        to_epoch=args.to_epoch, lr_type=args.lr_type, lr_steps=args.lr_steps,
        base_lr=args.base_lr, weight_decay=args.weight_decay, mirror=args.backward_do_mirror)


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    settings = check_args(args, argv)
    # Environment switches before MXNet is imported (it reads them then, or at graph building).
    set_mxnet_switches(args.backward_do_mirror, args.no_cudnn, args.debug)
    os.makedirs(args.output, exist_ok=True)
    setup_logging(settings.round.log_file, debug=args.debug)
    if args.phase == 'val':
        from issegm import phase_val  # these import MXNet: after the flags
        phase_val.run(settings)
    else:
        from issegm import phase_train
        phase_train.run(settings)
    return 0


if __name__ == '__main__':
    sys.exit(main())
