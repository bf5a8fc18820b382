"""Every setting of a self-training run, declared once (SETTINGS, rows of
issegm.rounds.declare.Setting): the orchestrator's, the per-round script's and those the round
loop passes on, in the order the children's command lines have always had (the phases' done
markers record them; the rows without phases follow). Both parsers, the command lines, the
settings classes and docs/flags.md are made from it (docs/internals.md, section 1).
"""
from issegm.cbst import POLICIES
from issegm.rounds.declare import (BOTH, IGNORED, ORCHESTRATOR, ROUND, ROUND_SCRIPT, RUN, TRAIN,
                                 VAL, Setting, build_parser, nonzero, switch, unless_default,
                                 zero_one)
from issegm.rounds.declare import child_argv as _child_argv
from issegm.rounds.declare import result_argv as _result_argv
from util.errors import UserError
from util.flags import (DETERMINISTIC_HELP, KVSTORE_HELP, KVSTORES, TRAINING_SWITCHES,
                        check_at_least_one, check_non_negative, check_portion, check_positive,
                        parse_bool, parse_scale_range, parse_test_scales,
                        training_schedule_specs)
from util.ps_launcher import LAUNCHERS as PS_LAUNCHERS
from util.prefetch import KINDS as PREFETCHER_KINDS

__all__ = ['SETTINGS', 'GROUPS', 'LAUNCHERS', 'SOURCE_SAMPLE_POLICIES', 'round_script_parser',
           'orchestrator_parser', 'child_argv', 'result_argv', 'default_of', 'setting']

# Phase val's debug grids by default (--debug-images).
DEBUG_IMAGES = 4
# How phase train runs on --workers N: issegm.launch's parameter-server job (local or ssh), or
# horovodrun (all-reduce, --kvstore horovod).
LAUNCHERS = PS_LAUNCHERS + ('horovod',)
# How each round picks its source images: 'cumulative' always draws with --seed-int (a larger
# portion adds images), 'random' with the round number (yzou2/CBST issegm/solve_AO.py).
SOURCE_SAMPLE_POLICIES = ('cumulative', 'random')
_SCHEDULE = training_schedule_specs(to_epoch=2)

GROUPS = {'crst': (
    'CRST (Zou et al., ICCV 2019; 0 = off, the default: CBST unchanged)',
    'A label regulariser and one model regulariser go together. The released code '
    '(yzou2/CRST crst_seg.py) multiplies the MR-KLD term by its --mr-weight-kld twice, so '
    'its value w is w * w here: its mrkld.sh\'s 0.1 is --mr-weight-kld 0.01; its '
    '--lr-weight-ent (lrent.sh: 0.25) is the same number here.')}


def one_test_scale(flag, text):
    """Phase val's --test-scales: one scale, as a tuple."""
    scales = tuple(parse_test_scales(text))
    if len(scales) != 1:
        raise UserError('phase val takes one test scale, got %s %s'
                        % (flag, ','.join(map(str, scales))))
    return scales


def scale_range(flag, text):
    return parse_scale_range(text)


def _loop(flag, room, phases, spec, **keywords):
    """A flag of the per-round script whose value the round loop fills in."""
    return Setting(flag, room, phases, spec=spec, parsers=(ROUND_SCRIPT,), **keywords)


def _script(flag, room, spec=None, **keywords):
    """A flag of the per-round script the orchestrator does not pass on."""
    return Setting(flag, room, spec=spec or {}, parsers=(ROUND_SCRIPT,), **keywords)


def _run(flag, check=None, changes_results=True, **spec):
    """A flag of the orchestrator alone."""
    return Setting(flag, RUN, spec=spec, parsers=(ORCHESTRATOR,), check=check,
                   changes_results=changes_results)


SETTINGS = (
    _loop('--phase', ROUND, BOTH, dict(default='train', choices=(TRAIN, VAL),
                                       help='val: pseudo-label the target; train: retrain')),
    Setting('--dataset', ROUND, BOTH, spec=dict(default='gta',
                                                help='source dataset: gta or synthia')),
    # cityscapes16 under synthia: yzou2/CBST solve_ST.py get_dataset_specs_tgt (datasets.py,
    # target_dataset)
    Setting('--dataset-tgt', ROUND, BOTH, spec=dict(
        default='cityscapes', help='target dataset: cityscapes (the 16-class cityscapes16 tables '
                                   'when --dataset is synthia, as upstream) or cityscapes16')),
    # yzou2/CBST solve_AO.py main gives --split to phase train only; phase val never reads it
    Setting('--split', ROUND, BOTH, spec=dict(default='train',
                                              help='source split name or .lst path')),
    Setting('--split-tgt', ROUND, BOTH, spec=dict(default='val',
                                                  help='target split name or .lst path')),
    Setting('--data-root', ROUND, BOTH, spec=dict(help='source dataset root')),
    Setting('--data-root-tgt', ROUND, BOTH, spec=dict(help='target dataset root')),
    Setting('--output', ROUND, BOTH, spec=dict(required=True, help='output folder of the run'),
            recorded=False),
    Setting('--model', ROUND, BOTH, spec=dict(
        help='model label (default: the weights file name before _ep-)')),
    Setting('--weights', ROUND, BOTH, spec=dict(required=True, help='weight file to start from')),
    _loop('--idx-round', ROUND, BOTH, dict(type=int, default=0,
                                           help='the round R (outputs in OUTPUT/R)')),
    Setting('--gpus', ROUND, BOTH, spec=dict(default='0', help='cpu, cpu:N or GPU ids like 0,1'),
            changes_results=False),
    Setting('--no-progress', ROUND, BOTH, switch, dict(action='store_true',
                                                       help='no progress bars'),
            changes_results=False),
    Setting('--init-tgt-port', VAL, (VAL,), spec=dict(
        type=float, default=0.3, help='portion of target pixels to pseudo-label'),
        check=check_portion),
    Setting('--test-scales', VAL, (VAL,), spec=dict(
        default='2048', help='longer side at test time (one value in phase val)'),
        check=one_test_scale),
    # yzou2/CBST solve_AO.py main gives phase val --test-flipping every round
    _loop('--test-flipping', VAL, (VAL,), dict(
        action='store_true', help='average with the mirrored image (the orchestrator always '
                                  'passes it, as upstream)'), write=switch),
    # yzou2/CBST solve_AO.py main gives phase val --no-cudnn every round
    Setting('--no-cudnn', ROUND, (VAL,), switch, TRAINING_SWITCHES['--no-cudnn'],
            orchestrator=dict(default=True,
                              help='phase val: pass --no-cudnn (the default, as upstream)'),
            negation=('--cudnn-autotune', 'phase val: do not pass --no-cudnn (MXNet\'s cuDNN '
                                          'autotuning stays on)'), changes_results=False),
    Setting('--with-prior', VAL, (VAL,), spec=dict(
        type=parse_bool, default=False, help="'True' to weight maps by the spatial prior")),
    Setting('--prior', VAL, (VAL,), spec=dict(
        help='spatial prior .mat (default spatial_prior/DATASET/prior_array.mat)')),
    Setting('--kc-policy', VAL, (VAL,), spec=dict(
        default='cb', choices=POLICIES, help='cb (class-balanced) or global (plain ST)')),
    Setting('--init-src-port', TRAIN, (TRAIN,), spec=dict(
        type=float, default=0.3, help='portion of source images to train on'),
        check=check_portion),
    Setting('--base-lr', TRAIN, (TRAIN,), spec=dict(type=float, default=1e-4)),
    # The orchestrator's --to-epoch is accepted and ignored, as upstream (QUIRK kept): round r
    # trains until epoch (r + 1) * --epoch-per-round.
    Setting('--to-epoch', TRAIN, (TRAIN,), spec=_SCHEDULE['--to-epoch'], orchestrator=dict(
        default=None, help='accepted and ignored (a warning says so), as upstream: round r '
                           'trains until epoch (r + 1) * --epoch-per-round'), recorded=False),
    Setting('--seed-int', TRAIN, (TRAIN,), spec=dict(
        type=int, default=0, help='source sampling seed (cumulative policy)')),
    Setting('--mine-port', TRAIN, (TRAIN,), spec=dict(
        type=float, default=0.5, help='probability of small-class patch mining'),
        check=check_portion),
    # yzou2/CBST solve_AO.py main gives --mine-id-number to phase val only; train never reads it
    Setting('--mine-id-number', VAL, BOTH, spec=dict(type=int, default=3,
                                                     help='number of rarest classes to mine')),
    # QUIRK kept: yzou2/CBST solve_AO.py main gives --mine-thresh to phase train only, which
    # never reads it; phase val, which does, keeps its default (the orchestrator warns).
    Setting('--mine-thresh', VAL, (TRAIN,), spec=dict(
        type=float, default=0.001,
        help='phase val: class ratio below which mining has priority (the orchestrator passes '
             'it to phase train only, as upstream\'s solve_AO.py: it changes nothing there)'),
        changes_results=False),
    _loop('--mine-id-address', TRAIN, (TRAIN,), dict(
        help='folder with mine_id.npy and mine_id_priority.npy (phase train)')),
    Setting('--crop-size', TRAIN, (TRAIN,), spec=dict(
        type=int, default=500, help='training crop side (rounded up to the stride)'),
        check=check_positive),
    Setting('--scale-rate-range', TRAIN, (TRAIN,), spec=dict(
        default='0.7,1.3', help='training scale range lo,hi'), check=scale_range),
    Setting('--origin-size', TRAIN, (TRAIN,), spec=dict(
        type=int, default=2048, help='source image size the scales refer to'),
        check=check_positive),
    Setting('--origin-size-tgt', TRAIN, (TRAIN,), spec=dict(
        type=int, default=2048, help='target image size the scales refer to'),
        check=check_positive),
    Setting('--batch-images', TRAIN, (TRAIN,), spec=dict(
        type=int, default=2, help='images per batch (all devices)'), check=check_positive),
    Setting('--prefetch-threads', TRAIN, (TRAIN,), spec=dict(type=int, default=1),
            check=check_non_negative, changes_results=False),
    Setting('--prefetcher', TRAIN, (TRAIN,), spec=dict(
        default='thread', choices=PREFETCHER_KINDS,
        help='phase train: crop workers in threads or processes (default %(default)s)'),
        orchestrator=dict(default='process'),  # as upstream's solve_AO.py passed
        changes_results=False),
    Setting('--cache-images', TRAIN, (TRAIN,), zero_one, dict(
        type=parse_bool, default=False,
        help='phase train: 1 keeps decoded training images in memory (default 0, as '
             'upstream\'s solve_AO.py passed; its solve_ST.py cached the image files when '
             'not given)'), changes_results=False),
    Setting('--backward-do-mirror', ROUND, (TRAIN,), switch,
            TRAINING_SWITCHES['--backward-do-mirror'],
            orchestrator=dict(default=True, help='phase train: pass --backward-do-mirror (the '
                                                 'default, as upstream)'),
            negation=('--no-backward-do-mirror', 'phase train: do not pass --backward-do-mirror'),
            changes_results=False),
    Setting('--kvstore', TRAIN, (TRAIN,), spec=dict(default='local', choices=KVSTORES,
                                                    help=KVSTORE_HELP)),
    Setting('--keep-probmaps', VAL, (VAL,), switch, dict(
        action='store_true', help='keep OUTPUT/probmap/NAME.npy (C,H,W) maps'),
        changes_results=False),
    Setting('--debug-images', VAL, (VAL,), unless_default(DEBUG_IMAGES), dict(
        type=int, default=DEBUG_IMAGES, metavar='N',
        help='phase val: OUTPUT/R/debug/NAME.png, one row of panels (image | argmax | '
             'pseudo-label | confidence | ground truth) for each of the first N target '
             'images, the same every round; 0: none (default %(default)s)'),
        check=check_non_negative, changes_results=False),
    Setting('--no-health', VAL, (VAL,), switch, dict(
        action='store_true',
        help='phase val: skip the round\'s health (metrics.json\'s pseudo-label precision, '
             'recall, confidence, entropy and agreement keys, OUTPUT/R/pseudo_quality.md, '
             'the debug grids); the pseudo-labels are the same either way'),
        changes_results=False),
    Setting('--lr-weight-ent', ROUND, BOTH, nonzero, dict(
        type=float, default=0.0, metavar='ALPHA',
        help='LR-ENT: soft pseudo-labels y_k ~ (p_k / t_k)^(1/ALPHA), kept where the '
             'entropy-regularised loss beats the thresholds\'; needs --kc-policy cb and '
             '--test-steps 1'), group='crst'),
    Setting('--mr-weight-kld', ROUND, (TRAIN,), nonzero, dict(
        type=float, default=0.0, metavar='W',
        help='MR-KLD: adds W * the mean over pseudo-labelled target pixels of '
             'sum_k -log p_k / K'), group='crst'),
    Setting('--mr-weight-l2', ROUND, (TRAIN,), nonzero, dict(
        type=float, default=0.0, metavar='W',
        help='MR-L2 (the paper\'s Table 1, not released): W * that mean of sum_k p_k^2'),
        group='crst'),
    Setting('--mr-weight-ent', ROUND, (TRAIN,), nonzero, dict(
        type=float, default=0.0, metavar='W',
        help='MR-ENT (the paper\'s Table 1, not released): W * that mean of '
             'sum_k p_k log p_k'), group='crst'),
    # Last of the rows with phases, so a run without it keeps the command lines it always had.
    # Not result-changing, as --no-cudnn: both choose among GPU algorithms (util/kernels.py;
    # README, "Reproducibility").
    Setting('--deterministic', ROUND, BOTH, switch, TRAINING_SWITCHES['--deterministic'],
            orchestrator=dict(help='both phases: pass --deterministic (%s)'
                                   % DETERMINISTIC_HELP), changes_results=False),
    # The per-round script's own flags (the orchestrator does not pass them on).
    _script('--test-steps', VAL, dict(type=int, default=1, help='N x N shifted network passes '
                                                             'per image, predicting at stride '
                                                             '// N (as upstream)')),
    _script('--log-file', ROUND, dict(help='default: OUTPUT/roundR-PHASE.log'),
            changes_results=False),
    _script('--debug', ROUND, TRAINING_SWITCHES['--debug'], changes_results=False),
    _script('--check-start', IGNORED, TRAINING_SWITCHES['--check-start'], changes_results=False),
    _script('--check-step', IGNORED, TRAINING_SWITCHES['--check-step'], changes_results=False),
    _script('--lr-type', TRAIN, _SCHEDULE['--lr-type']),
    _script('--lr-steps', TRAIN, _SCHEDULE['--lr-steps']),
    _script('--weight-decay', TRAIN, _SCHEDULE['--weight-decay']),
    _script('--from-epoch', TRAIN, _SCHEDULE['--from-epoch']),
    _script('--stop-epoch', TRAIN, _SCHEDULE['--stop-epoch']),
    # The orchestrator's own flags (the round loop's schedule, launchers, the folder).
    _run('--num-round', check_at_least_one, False, type=int, default=12),
    _run('--epoch-per-round', type=int, default=2, help='epochs each round trains'),
    _run('--max-tgt-port', type=float, default=0.5, help='the target portion grows while below it'),
    _run('--max-src-port', type=float, default=0.06,
         help='the source portion grows while below it'),
    _run('--step-tgt-port', type=float, default=0.05, help='target portion added per round'),
    _run('--step-src-port', type=float, default=0.0025, help='source portion added per round'),
    _run('--source-sample-policy', default='cumulative', choices=SOURCE_SAMPLE_POLICIES),
    _run('--self-training-script', changes_results=False,
         help='the per-round script run for each phase (default: '
              'issegm/self-paced-self-trained-segresnet.py)'),
    _run('--workers', check_at_least_one, type=int, default=1,
         help='run phase train on N workers (phase val stays one process): with --launcher '
              'local or ssh a parameter-server job through issegm.launch, where --kvstore local '
              'means dist_sync and device means dist_device_sync; with --launcher horovod under '
              'horovodrun with --kvstore horovod (see the per-round script\'s --kvstore for what '
              'each does to the learning rate); the local launcher\'s workers split --gpus '
              '(0,1,2,3 over 2 workers: 0,1 and 2,3), each Horovod rank takes one'),
    _run('--servers', check_at_least_one, False, type=int,
         help='parameter servers for --workers (default: as many as workers)'),
    _run('--launcher', None, False, default='local', choices=LAUNCHERS, help='with --workers'),
    _run('--hostfile', None, False, help='--launcher ssh: hosts, one per line; --launcher '
                                         'horovod: horovodrun\'s host file ("HOST slots=N" '
                                         'lines; default localhost)'),
    _run('--skip-data-check', None, False, action='store_true',
         help='do not check both lists\' files before round 0 (issegm/datacheck/)'),
    _run('--overwrite', None, False, action='store_true',
         help='discard the rounds an earlier run left in --output and start over (a rerun with '
              'other values of flags that change results is refused without it)'),
)


def setting(flag):
    """The row of `flag`."""
    return next(row for row in SETTINGS if row.flag == flag)


def default_of(flag):
    """The per-round script's default of `flag`."""
    return setting(flag).spec.get('default')


def round_script_parser(**keywords):
    """The per-round script's parser, made from SETTINGS."""
    return build_parser(SETTINGS, GROUPS, ROUND_SCRIPT, **keywords)


def orchestrator_parser(**keywords):
    """The orchestrator's parser, made from SETTINGS."""
    return build_parser(SETTINGS, GROUPS, ORCHESTRATOR, **keywords)


def child_argv(phase, values):
    """The per-round script's command line for `phase` from values[dest] (setting_rows)."""
    return _child_argv(SETTINGS, phase, values)


def result_argv(argv):
    """A child's command line without the settings that do not change results."""
    return _result_argv(SETTINGS, argv)
