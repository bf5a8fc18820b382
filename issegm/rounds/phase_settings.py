"""The per-round script's flags (parse_round_args) and checks (phase_settings), and the
settings of one phase of a round they build (RoundSettings, ValSettings, TrainSettings: a
field per setting of issegm/rounds/run_flags.py's table, named as its flag, and the values derived
from them). No MXNet: the per-round script checks its flags before importing it, and the
orchestrator checks every round's command lines with them before round 0."""
import dataclasses
from typing import Optional, Tuple

from issegm.rounds import run_flags
from issegm.crst.settings import CrstSettings, crst_settings
from issegm.datasets import target_dataset
from issegm.prior import default_prior_path, require_prior
from issegm.rounds.layout import phase_log_file
from issegm.sampling import CropSettings
from issegm.rounds.declare import ROUND, TRAIN, VAL, room_values, settings_class
from util.errors import UserError
from util.flags import check_epochs, check_test_steps
from util.model_label import ModelLabel, model_from_weights, parse_model_label, start_epoch

__all__ = ['DataSplit', 'RoundSettings', 'ValSettings', 'TrainSettings', 'parse_round_args',
           'phase_settings', 'settings_of', 'round_settings_class', 'crst_of']


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """A split of a dataset: the name of its tables (issegm.datasets.get_dataset), the split
    name or .lst path, and the root the list's paths are relative to."""
    dataset: str
    split: str
    data_root: Optional[str]


# The values each class derives from its settings, before a field per setting of its room.
_DERIVED = {
    ROUND: ('RoundSettings', (
        ('parsed_model', ModelLabel), ('source', DataSplit), ('target', DataSplit),
        ('crst', CrstSettings), ('argv', Tuple[str, ...])),
        'What both phases of round idx_round read: the model label parsed, the source and '
        'target splits, the CRST settings, the phase\'s command line (its done marker records '
        'it); model: --model, else the weights file\'s name before _ep-; log_file: '
        '--log-file, else OUTPUT/roundR-PHASE.log.'),
    VAL: ('ValSettings', (('round', object), ('prior_path', Optional[str]))),
    TRAIN: ('TrainSettings', (('round', object), ('crops', CropSettings))),
}
_DOCS = {
    VAL: 'Phase val: pseudo-label round.target at test scale test_scales[0], keeping the '
         'init_tgt_port most confident pixels by kc_policy; prior_path: the spatial prior '
         '.mat with --with-prior, else None.',
    TRAIN: 'Phase train: retrain on init_src_port of round.source (drawn with seed_int) and the '
           'pseudo-labelled target, crops as `crops` says, epochs from_epoch .. stop_epoch of '
           'an lr schedule to to_epoch.',
}


def round_settings_class(room):
    """The settings class of `room` (ROUND, VAL or TRAIN) for run_flags.SETTINGS as it is."""
    name, derived = _DERIVED[room][:2]
    doc = _DERIVED[room][2] if room == ROUND else _DOCS[room]
    return settings_class(run_flags.SETTINGS, room, name, derived, doc)


RoundSettings = round_settings_class(ROUND)
ValSettings = round_settings_class(VAL)
TrainSettings = round_settings_class(TRAIN)


def parse_round_args(argv):
    """The per-round script's flags as given (settings_of turns them into settings)."""
    parser = run_flags.round_script_parser(
        description='One phase of one CBST self-training round.',
        epilog='--check-start and --check-step are accepted and ignored, as in yzou2/CBST '
               'issegm/solve_ST.py, which declares them and never reads them (a checkpoint is '
               'written after every epoch).')
    return parser.parse_args(argv)


def crst_of(given):
    """The CrstSettings of the four CRST settings in `given` ({dest: value}); a UserError for a
    bad value, two model regularisers, or LR-ENT without class-balanced thresholds (yzou2/CRST
    crst_seg.py, label_selection, defines it on the `cb` thresholds only)."""
    settings = crst_settings(given['lr_weight_ent'], given['mr_weight_kld'],
                             given['mr_weight_l2'], given['mr_weight_ent'])
    if settings.lr_weight_ent > 0 and given['kc_policy'] != 'cb':
        raise UserError('--lr-weight-ent needs --kc-policy cb (LR-ENT divides by the '
                        'class-balanced thresholds), got --kc-policy %s' % given['kc_policy'])
    return settings


def phase_settings(argv):
    """The ValSettings or TrainSettings of the per-round script's command line `argv` (its
    --phase), checked (settings_of)."""
    return settings_of(vars(parse_round_args(argv)), argv)


def settings_of(given, argv=()):
    """Validate the parsed flags `given` ({dest: value}; every rule of the phase that needs
    neither the data nor MXNet; the spatial prior of --with-prior must exist); the ValSettings
    or TrainSettings of --phase (argv: the command line, which the phase's done marker
    records)."""
    values = room_values(run_flags.SETTINGS, ROUND, given)
    model = model_from_weights(values['model'], values['weights'])
    parsed_model = parse_model_label(model)
    crst = crst_of(given)
    if crst.lr_weight_ent > 0 and given['test_steps'] != 1:
        # N steps keep N * N times larger network maps for phase train: 10 MB per 2048x1024
        # image at N = 2, over the 8 MB budget; the orchestrator never passes --test-steps.
        raise UserError('--lr-weight-ent needs --test-steps 1 (phase train recomputes the soft '
                        'labels from the stride-%d maps), got %d'
                        % (parsed_model.stride, given['test_steps']))
    values.update(model=model, log_file=values['log_file'] or phase_log_file(
        values['output'], values['idx_round'], values['phase']))
    rnd = round_settings_class(ROUND)(
        parsed_model=parsed_model, source=DataSplit(values['dataset'], values['split'],
                                                    values['data_root']),
        target=DataSplit(target_dataset(values['dataset'], values['dataset_tgt']),
                         values['split_tgt'], values['data_root_tgt']),
        crst=crst, argv=tuple(argv), **values)
    if rnd.phase == VAL:
        return _val_settings(given, rnd)
    return _train_settings(given, rnd)


def _val_settings(given, rnd):
    values = room_values(run_flags.SETTINGS, VAL, given)
    check_test_steps(values['test_steps'], rnd.parsed_model.stride)
    prior_path = (require_prior(values['prior'] or default_prior_path(rnd.dataset))
                  if values['with_prior'] else None)
    return round_settings_class(VAL)(round=rnd, prior_path=prior_path, **values)


def _train_settings(given, rnd):
    values = room_values(run_flags.SETTINGS, TRAIN, given)
    from_epoch = start_epoch(rnd.model, rnd.weights, values['from_epoch'])[0]
    stop_epoch = check_epochs(from_epoch, values['stop_epoch'], values['to_epoch'])
    values.update(from_epoch=from_epoch, stop_epoch=stop_epoch)
    crops = CropSettings(values['crop_size'], rnd.parsed_model.stride, values['scale_rate_range'],
                         values['mine_port'], crst=rnd.crst)
    return round_settings_class(TRAIN)(round=rnd, crops=crops, **values)
