"""The per-round script's flags (parse_round_args) and checks (check_round_args), and the
settings of one phase of a round they build, read by issegm/phase_val.py and
issegm/phase_train.py. No MXNet: the per-round script checks its flags before importing it,
and the orchestrator checks every round's command lines with them before round 0."""
import dataclasses
from typing import Optional, Tuple

from issegm.crst.settings import CrstSettings
from issegm.datasets import target_dataset
from issegm.prior import default_prior_path, require_prior
from issegm.round_files import phase_log_file
from issegm.round_flags import crst_of, shared_flags
from issegm.sampling import CropSettings
from util.errors import UserError
from util.flags import (FlagParser, check_epochs, check_test_steps, parse_scale_range,
                        parse_test_scales, training_schedule_flags, training_switch_flags)
from util.model_label import ModelLabel, model_from_weights, parse_model_label, start_epoch

__all__ = ['DataSplit', 'RoundSettings', 'ValSettings', 'TrainSettings', 'parse_round_args',
           'check_round_args', 'check_portion']


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """A split of a dataset: the name of its tables (issegm.datasets.get_dataset), the split
    name or .lst path, and the root the list's paths are relative to."""
    dataset: str
    split: str
    data_root: Optional[str]


@dataclasses.dataclass(frozen=True)
class RoundSettings:
    """What both phases of round `idx_round` read. log_file: --log-file, else
    OUTPUT/roundR-PHASE.log; argv: the phase's command line, which its done marker records."""
    output: str
    idx_round: int
    phase: str
    model: str
    parsed_model: ModelLabel
    weights: str
    gpus: str
    source: DataSplit
    target: DataSplit
    crst: CrstSettings
    log_file: str
    debug: bool
    progress: bool
    argv: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ValSettings:
    """Phase val: pseudo-label round.target at test scale test_scales[0] (one scale), keeping
    the tgt_port most confident pixels by policy kc_policy; prior_path: the spatial prior .mat
    with --with-prior, else None; mining statistics from mine_id_number and mine_thresh;
    health: the round's health (off: --no-health), with grids of the first debug_images."""
    round: RoundSettings
    test_scales: Tuple[int, ...]
    test_flipping: bool
    test_steps: int
    tgt_port: float
    kc_policy: str
    prior_path: Optional[str]
    mine_id_number: int
    mine_thresh: float
    keep_probmaps: bool
    health: bool = True
    debug_images: int = 4


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Phase train: retrain on src_port of round.source (drawn with `seed`) and the
    pseudo-labelled target, crops as `crops` says (phase train adds the mining classes of the
    statistics under mine_id_address and the number of classes), epochs from_epoch ..
    stop_epoch of an lr schedule to to_epoch."""
    round: RoundSettings
    src_port: float
    seed: int
    origin_size: int
    origin_size_tgt: int
    batch_images: int
    crops: CropSettings
    mine_id_address: Optional[str]
    prefetch_threads: int
    prefetcher: str
    cache_images: bool
    kvstore: str
    from_epoch: int
    stop_epoch: int
    to_epoch: int
    lr_type: str
    lr_steps: str
    base_lr: float
    weight_decay: float
    mirror: bool = False  # --backward-do-mirror: recompute each residual unit (util/mirroring.py)


def parse_round_args(argv):
    """The per-round script's flags as given (check_round_args turns them into settings)."""
    parser = FlagParser(
        description='One phase of one CBST self-training round.',
        parents=[shared_flags(), training_switch_flags(), training_schedule_flags(to_epoch=2)],
        epilog='--check-start and --check-step are accepted and ignored, as in yzou2/CBST '
               'issegm/solve_ST.py, which declares them and never reads them (a checkpoint is '
               'written after every epoch).')
    a = parser.add_argument
    a('--phase', default='train', choices=('train', 'val'))
    a('--idx-round', type=int, default=0)
    a('--mine-id-address', help='folder with mine_id.npy and mine_id_priority.npy (phase train)')
    a('--test-flipping', action='store_true')
    a('--test-steps', type=int, default=1)
    a('--log-file')
    return parser.parse_args(argv)


def check_portion(flag, value):
    """A portion or probability flag: a UserError unless 0 <= value <= 1."""
    if not 0.0 <= value <= 1.0:
        raise UserError('%s must be in [0, 1], got %s' % (flag, value))
    return value


def check_round_args(args, argv=()):
    """Validate the flag values (every rule of the phase that needs neither the data nor MXNet;
    the spatial prior of --with-prior must exist); the ValSettings or TrainSettings of --phase
    (argv: the command line, which the phase's done marker records)."""
    model = model_from_weights(args.model, args.weights)
    parsed_model = parse_model_label(model)
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
        target=DataSplit(target_dataset(args.dataset, args.dataset_tgt), args.split_tgt,
                         args.data_root_tgt), crst=crst,
        log_file=args.log_file or phase_log_file(args.output, args.idx_round, args.phase),
        debug=args.debug, progress=not args.no_progress, argv=tuple(argv))
    if args.phase == 'val':
        return _val_settings(args, rnd)
    return _train_settings(args, rnd)


def _val_settings(args, rnd):
    test_scales = tuple(parse_test_scales(args.test_scales))
    if len(test_scales) != 1:
        raise UserError('phase val takes one test scale, got --test-scales %s'
                        % ','.join(map(str, test_scales)))
    check_test_steps(args.test_steps, rnd.parsed_model.stride)
    prior_path = (require_prior(args.prior or default_prior_path(args.dataset))
                  if args.with_prior else None)
    if args.debug_images < 0:
        raise UserError('--debug-images must be >= 0, got %d' % args.debug_images)
    return ValSettings(rnd, test_scales, args.test_flipping, args.test_steps,
                       check_portion('--init-tgt-port', args.init_tgt_port), args.kc_policy,
                       prior_path, args.mine_id_number, args.mine_thresh, args.keep_probmaps,
                       health=not args.no_health, debug_images=args.debug_images)


def _train_settings(args, rnd):
    from_epoch = start_epoch(rnd.model, args.weights, args.from_epoch)[0]
    stop_epoch = args.to_epoch if args.stop_epoch is None else args.stop_epoch
    check_epochs(from_epoch, stop_epoch, args.to_epoch)
    for flag, value in (('--batch-images', args.batch_images), ('--crop-size', args.crop_size),
                        ('--origin-size', args.origin_size),
                        ('--origin-size-tgt', args.origin_size_tgt)):
        if value < 1:
            raise UserError('%s must be positive, got %d' % (flag, value))
    if args.prefetch_threads < 0:
        raise UserError('--prefetch-threads must be >= 0, got %d' % args.prefetch_threads)
    crops = CropSettings(args.crop_size, rnd.parsed_model.stride,
                         parse_scale_range(args.scale_rate_range),
                         check_portion('--mine-port', args.mine_port), crst=rnd.crst)
    return TrainSettings(
        rnd, src_port=check_portion('--init-src-port', args.init_src_port), seed=args.seed_int,
        origin_size=args.origin_size, origin_size_tgt=args.origin_size_tgt,
        batch_images=args.batch_images, crops=crops, mine_id_address=args.mine_id_address,
        prefetch_threads=args.prefetch_threads, prefetcher=args.prefetcher,
        cache_images=args.cache_images, kvstore=args.kvstore, from_epoch=from_epoch,
        stop_epoch=stop_epoch, to_epoch=args.to_epoch, lr_type=args.lr_type,
        lr_steps=args.lr_steps, base_lr=args.base_lr, weight_decay=args.weight_decay,
        mirror=args.backward_do_mirror)
