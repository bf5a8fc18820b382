"""The flags of a round's two child command lines, declared once (ROUND_FLAGS): each row names a
flag, the phases it reaches (as yzou2/CBST solve_AO.py main passes them) and how the orchestrator
writes it; shared_flags() and child_argv() are made from it. The rows keep the command lines'
order, which the phases' done markers record (docs/internals.md, section 1).
"""
import dataclasses
from typing import Callable, Optional

from issegm.cbst import POLICIES
from issegm.crst.settings import crst_settings
from util.errors import UserError
from util.flags import KVSTORE_HELP, KVSTORES, FlagParser, parse_bool, py2_str
from util.prefetch import KINDS as PREFETCHER_KINDS

__all__ = ['VAL', 'TRAIN', 'BOTH', 'RoundFlag', 'ROUND_FLAGS', 'shared_flags', 'child_argv',
           'result_argv', 'default_of', 'crst_of']

VAL, TRAIN = 'val', 'train'
BOTH = (VAL, TRAIN)
# Phase val's debug grids by default (--debug-images).
DEBUG_IMAGES = 4


def value(flag, v):
    """[flag, v as Python 2's str() wrote it (util.flags.py2_str)]; nothing for None."""
    return [] if v is None else [flag, py2_str(v)]


def switch(flag, on):
    return [flag] if on else []


def nonzero(flag, v):
    """A CRST weight: passed on only when on, so a CBST run's children get the command lines
    (and the phases' markers the argv) they always had."""
    return value(flag, v) if v else []


def unless_default(default):
    """A writer of a value passed on only when it is not `default`: a run with the default
    keeps the command lines (and the phases' markers the argv) it always had."""
    def write(flag, v):
        return [] if v == default else value(flag, v)
    return write


def zero_one(flag, on):
    """'0' or '1' (yzou2/CBST solve_AO.py main passes --cache-images 0)."""
    return [flag, str(int(on))]


@dataclasses.dataclass(frozen=True)
class RoundFlag:
    """One flag of the children's command lines: the `phases` it reaches, written by
    `write(flag, value)`; `spec`: its argparse keywords when both scripts define it (None: only
    the per-round script does, and the round loop supplies the value); `group`: its help
    section (a key of GROUPS); `changes_results`: False for a flag a rerun may change (devices,
    helpers, progress bars, kept extras): the done markers and OUTPUT/run.json ignore it."""
    flag: str
    phases: tuple
    write: Callable = value
    spec: Optional[dict] = None
    group: Optional[str] = None
    changes_results: bool = True

    @property
    def dest(self):
        return self.flag[2:].replace('-', '_')


def _shared(flag, phases, write=value, group=None, changes_results=True, **spec):
    return RoundFlag(flag, phases, write, spec, group, changes_results)


def _loop(flag, phases, write=value, changes_results=True):
    return RoundFlag(flag, phases, write, changes_results=changes_results)


GROUPS = {'crst': (
    'CRST (Zou et al., ICCV 2019; 0 = off, the default: CBST unchanged)',
    'A label regulariser and one model regulariser go together. The released code '
    '(yzou2/CRST crst_seg.py) multiplies the MR-KLD term by its --mr-weight-kld twice, so '
    'its value w is w * w here: its mrkld.sh\'s 0.1 is --mr-weight-kld 0.01; its '
    '--lr-weight-ent (lrent.sh: 0.25) is the same number here.')}

ROUND_FLAGS = (
    _loop('--phase', BOTH),
    _shared('--dataset', BOTH, default='gta', help='source dataset: gta or synthia'),
    _shared('--dataset-tgt', BOTH, default='cityscapes',
            help='target dataset: cityscapes (the 16-class cityscapes16 tables when --dataset is '
                 'synthia, as upstream) or cityscapes16'),
    # yzou2/CBST solve_AO.py main gives --split to phase train only; phase val never reads it
    _shared('--split', BOTH, default='train', help='source split name or .lst path'),
    _shared('--split-tgt', BOTH, default='val', help='target split name or .lst path'),
    _shared('--data-root', BOTH, help='source dataset root'),
    _shared('--data-root-tgt', BOTH, help='target dataset root'),
    _shared('--output', BOTH, required=True, help='output folder of the run'),
    _shared('--model', BOTH, help='model label (default: the weights file name before _ep-)'),
    _shared('--weights', BOTH, required=True, help='weight file to start from'),
    _loop('--idx-round', BOTH),
    _shared('--gpus', BOTH, changes_results=False, default='0',
            help='cpu, cpu:N or GPU ids like 0,1'),
    _shared('--no-progress', BOTH, switch, changes_results=False, action='store_true',
            help='no progress bars'),
    _shared('--init-tgt-port', VAL, type=float, default=0.3,
            help='portion of target pixels to pseudo-label'),
    _shared('--test-scales', VAL, default='2048',
            help='longer side at test time (one value in phase val)'),
    _loop('--test-flipping', VAL, switch),
    _loop('--no-cudnn', VAL, switch, changes_results=False),
    _shared('--with-prior', VAL, type=parse_bool, default=False,
            help="'True' to weight maps by the spatial prior"),
    _shared('--prior', VAL,
            help='spatial prior .mat (default spatial_prior/DATASET/prior_array.mat)'),
    _shared('--kc-policy', VAL, default='cb', choices=POLICIES,
            help='cb (class-balanced) or global (plain ST)'),
    _shared('--init-src-port', TRAIN, type=float, default=0.3,
            help='portion of source images to train on'),
    _shared('--base-lr', TRAIN, type=float, default=1e-4),
    _loop('--to-epoch', TRAIN),
    _shared('--seed-int', TRAIN, type=int, default=0,
            help='source sampling seed (cumulative policy)'),
    _shared('--mine-port', TRAIN, type=float, default=0.5,
            help='probability of small-class patch mining'),
    # yzou2/CBST solve_AO.py main gives --mine-id-number to phase val only; train never reads it
    _shared('--mine-id-number', BOTH, type=int, default=3,
            help='number of rarest classes to mine'),
    # QUIRK kept: yzou2/CBST solve_AO.py main gives --mine-thresh to phase train only, which
    # never reads it; phase val, which does, keeps its default (the orchestrator warns).
    _shared('--mine-thresh', TRAIN, changes_results=False, type=float, default=0.001,
            help='phase val: class ratio below which mining has priority (the orchestrator '
                 'passes it to phase train only, as upstream\'s solve_AO.py: it changes '
                 'nothing there)'),
    _loop('--mine-id-address', TRAIN),
    _shared('--crop-size', TRAIN, type=int, default=500,
            help='training crop side (rounded up to the stride)'),
    _shared('--scale-rate-range', TRAIN, default='0.7,1.3', help='training scale range lo,hi'),
    _shared('--origin-size', TRAIN, type=int, default=2048,
            help='source image size the scales refer to'),
    _shared('--origin-size-tgt', TRAIN, type=int, default=2048,
            help='target image size the scales refer to'),
    _shared('--batch-images', TRAIN, type=int, default=2, help='images per batch (all devices)'),
    _shared('--prefetch-threads', TRAIN, changes_results=False, type=int, default=1),
    _shared('--prefetcher', TRAIN, changes_results=False, default='thread',
            choices=PREFETCHER_KINDS,
            help='phase train: crop workers in threads or processes (default %(default)s)'),
    _shared('--cache-images', TRAIN, zero_one, changes_results=False, type=parse_bool,
            default=False,
            help='phase train: 1 keeps decoded training images in memory (default 0, as '
                 'upstream\'s solve_AO.py passed; its solve_ST.py cached the image files when '
                 'not given)'),
    _loop('--backward-do-mirror', TRAIN, switch, changes_results=False),
    _shared('--kvstore', TRAIN, default='local', choices=KVSTORES, help=KVSTORE_HELP),
    _shared('--keep-probmaps', VAL, switch, changes_results=False, action='store_true',
            help='keep OUTPUT/probmap/NAME.npy (C,H,W) maps'),
    _shared('--debug-images', VAL, unless_default(DEBUG_IMAGES), changes_results=False, type=int,
            default=DEBUG_IMAGES, metavar='N',
            help='phase val: OUTPUT/R/debug/NAME.png, one row of panels (image | argmax | '
                 'pseudo-label | confidence | ground truth) for each of the first N target '
                 'images, the same every round; 0: none (default %(default)s)'),
    _shared('--no-health', VAL, switch, changes_results=False, action='store_true',
            help='phase val: skip the round\'s health (metrics.json\'s pseudo-label precision, '
                 'recall, confidence, entropy and agreement keys, OUTPUT/R/pseudo_quality.md, '
                 'the debug grids); the pseudo-labels are the same either way'),
    _shared('--lr-weight-ent', BOTH, nonzero, 'crst', type=float, default=0.0, metavar='ALPHA',
            help='LR-ENT: soft pseudo-labels y_k ~ (p_k / t_k)^(1/ALPHA), kept where the '
                 'entropy-regularised loss beats the thresholds\'; needs --kc-policy cb and '
                 '--test-steps 1'),
    _shared('--mr-weight-kld', TRAIN, nonzero, 'crst', type=float, default=0.0, metavar='W',
            help='MR-KLD: adds W * the mean over pseudo-labelled target pixels of '
                 'sum_k -log p_k / K'),
    _shared('--mr-weight-l2', TRAIN, nonzero, 'crst', type=float, default=0.0, metavar='W',
            help='MR-L2 (the paper\'s Table 1, not released): W * that mean of sum_k p_k^2'),
    _shared('--mr-weight-ent', TRAIN, nonzero, 'crst', type=float, default=0.0, metavar='W',
            help='MR-ENT (the paper\'s Table 1, not released): W * that mean of '
                 'sum_k p_k log p_k'),
    # Last, so a run without it keeps the command lines it always had. Not result-changing, as
    # --no-cudnn: both choose among GPU algorithms (util/kernels.py; README, "Reproducibility").
    _loop('--deterministic', BOTH, switch, changes_results=False),
)


def shared_flags():
    """A parent parser (argparse `parents=`) of the flags both scripts take: the rows with a
    spec. A new one per call, as a child's set_defaults changes its actions."""
    parser = FlagParser(add_help=False)
    sections = {None: parser}
    for row in ROUND_FLAGS:
        if row.spec is None:
            continue
        if row.group not in sections:
            sections[row.group] = parser.add_argument_group(*GROUPS[row.group])
        sections[row.group].add_argument(row.flag, **row.spec)
    return parser


def child_argv(phase, values):
    """The per-round script's command line for `phase`: each row reaching it, in table order,
    written from values[row.dest]."""
    argv = []
    for row in ROUND_FLAGS:
        if phase in row.phases:
            argv += row.write(row.flag, values[row.dest])
    return argv


def result_argv(argv):
    """A child's command line without the flags of the rows that do not change results: a
    phase finished with other devices or helpers counts as finished (round_files.finished)."""
    neutral = {row.flag: row.write is not switch for row in ROUND_FLAGS
               if not row.changes_results}
    kept, tokens = [], iter(argv)
    for token in tokens:
        if token in neutral:
            if neutral[token]:  # the flag's value goes too
                next(tokens, None)
            continue
        kept.append(token)
    return kept


def default_of(flag):
    """The default of a shared flag."""
    row = next(r for r in ROUND_FLAGS if r.flag == flag)
    return row.spec.get('default')


def crst_of(args):
    """The CrstSettings of the four CRST flags (issegm/crst/settings.py); a UserError for a bad
    value, two model regularisers, or LR-ENT without class-balanced thresholds (yzou2/CRST
    crst_seg.py, label_selection, defines it on the `cb` thresholds only)."""
    settings = crst_settings(args.lr_weight_ent, args.mr_weight_kld, args.mr_weight_l2,
                             args.mr_weight_ent)
    if settings.lr_weight_ent > 0 and args.kc_policy != 'cb':
        raise UserError('--lr-weight-ent needs --kc-policy cb (LR-ENT divides by the '
                        'class-balanced thresholds), got --kc-policy %s' % args.kc_policy)
    return settings
