"""The output folder of a self-training run, named in one place: every OUTPUT/... entry the
orchestrator and both phases write (TOP_ENTRIES, ROUND_ENTRIES), the paths made from them, the
phases' done markers and what --overwrite discards (RUN_ENTRIES, derived from TOP_ENTRIES).
Layout and the meaning of each file: docs/internals.md, section 10; README, "Self-training".
"""
import glob
import json
import os
import re

from issegm.crst import netmaps
from issegm.rounds.run_flags import result_argv
from util.files import write_json
from util.locks import LOCK_NAME
from util.model_label import checkpoint_file
from util.run_record import DISCARDED, discard_entries

# Names of OUTPUT's entries ({round}: the round number, {phase}: val or train, {rank}: a
# worker's rank, {name}: any file name). Anything else in OUTPUT is left alone by --overwrite.
ROUND, VAL_STAGE = '{round}', '{round}.val-partial'
STATS, PROBMAP = 'stats', 'probmap'
SUMMARY, ROUNDS_PLOT, ROUNDS_LOG = 'summary.json', 'rounds.png', 'rounds.log'
RUN_RECORD = 'run.json'
PHASE_LOG, RANK_LOG = 'round{round}-{phase}.log', 'round{round}-{phase}.rank{rank}.log'
TEMPORARY = '.{name}.tmp'  # util.files.atomic_path's; DISCARDED: --overwrite's bin
TOP_ENTRIES = (ROUND, VAL_STAGE, STATS, PROBMAP, SUMMARY, ROUNDS_PLOT, ROUNDS_LOG, RUN_RECORD,
               PHASE_LOG, RANK_LOG, TEMPORARY, DISCARDED)

# OUTPUT/R: phase val's results/ (pass 1's argmax), self_train/ (the pseudo-labels and the
# training list), metrics.json and the round's health (none of it with --no-health: the table,
# the debug grids, the pseudo-labels at the grid's points); phase train's checkpoints.
RESULTS, SELF_TRAIN, METRICS = 'results', 'self_train', 'metrics.json'
QUALITY_FILE, DEBUG_DIR, GRID_DIR = 'pseudo_quality.md', 'debug', 'pseudo_grid'
HEALTH_PARTS = (QUALITY_FILE, DEBUG_DIR, GRID_DIR)
VAL_PARTS = (RESULTS, SELF_TRAIN, METRICS) + HEALTH_PARTS  # what phase val stages in OUTPUT/R
ARGMAX, ARGMAX_COLOR = 'nplabelIds', 'npcolor'  # under results/
PRIOR_ARGMAX, PRIOR_ARGMAX_COLOR = 'splabelIds', 'spcolor'  # under self_train/: --with-prior
PSEUDO_LABELS, PSEUDO_COLOR = 'pseudo_labelIds', 'pseudo_color'
REWEIGHTED, REWEIGHTED_COLOR = 'rwlabelIds', 'rwcolor'  # --kc-policy cb
TRAINING_LIST = '{split}_training.lst'
MAP_CACHE = 'cache'  # in the stage, between the two passes
VAL_DONE, TRAIN_DONE = 'val.done', 'train.done'
MARKERS = {'val': VAL_DONE, 'train': TRAIN_DONE}
MINING_STATS = ('mine_id', 'mine_id_priority', 'cls_thresh', 'cls_size')  # OUTPUT/stats/KEY.npy
# The lock file (util/locks.py): part of the folder, never of a run (--overwrite keeps it).
LOCK = LOCK_NAME
# Every file a round writes, relative to OUTPUT (known_file), the lock file too;
# {model}_ep-{epoch}.params is util.model_label.checkpoint_file's name.
ROUND_FILES = tuple(os.path.join(ROUND, *parts) for parts in (
    [(RESULTS, folder, '{name}.png') for folder in (ARGMAX, ARGMAX_COLOR)]
    + [(SELF_TRAIN, folder, '{name}.png') for folder in (
        PRIOR_ARGMAX, PRIOR_ARGMAX_COLOR, PSEUDO_LABELS, PSEUDO_COLOR, REWEIGHTED,
        REWEIGHTED_COLOR)]
    + [(SELF_TRAIN, TRAINING_LIST), (SELF_TRAIN, netmaps.RECORD),
       (SELF_TRAIN, netmaps.FOLDER, '{name}.npy'), (METRICS,), (QUALITY_FILE,),
       (DEBUG_DIR, '{name}.png'), (GRID_DIR, '{name}.npy'), (VAL_DONE,), (TRAIN_DONE,),
       ('{model}_ep-{epoch}.params',), ('{model}_ep-symbol.json',)])) + tuple(
    [os.path.join(STATS, key + '.npy') for key in MINING_STATS]
    + [os.path.join(PROBMAP, '{name}.npy'), SUMMARY, ROUNDS_PLOT, ROUNDS_LOG, RUN_RECORD,
       PHASE_LOG, RANK_LOG, LOCK])
_FIELDS = {'round': r'\d+', 'phase': '(?:val|train)', 'rank': r'\d+', 'epoch': r'\d{4}',
           'name': r'[^/]+', 'model': r'[^/]+', 'split': r'[^/]+'}


def _pattern(names):
    """A regex matching any of the layout's `names`, each field {x} by _FIELDS[x]."""
    def one(name):
        parts = re.split(r'\{(\w+)\}', name)  # text, field, text, ...
        return ''.join(_FIELDS[p] if i % 2 else re.escape(p) for i, p in enumerate(parts))
    return re.compile(r'^(?:%s)$' % '|'.join(one(n) for n in names))


# The entries of OUTPUT a run writes (the orchestrator, both phases, their temporary files):
# what --overwrite discards. Anything else in the folder is left alone.
RUN_ENTRIES = _pattern(TOP_ENTRIES)
_ROUND_FILES = _pattern(ROUND_FILES)


def known_file(relative_path):
    """True when `relative_path` (a file under OUTPUT, '/'-separated) is one the layout names."""
    return bool(_ROUND_FILES.match(relative_path.replace(os.sep, '/')))


def round_dir(output, idx_round):
    return os.path.join(output, ROUND.format(round=idx_round))


def round_part(output, idx_round, *parts):
    """OUTPUT/R/PARTS...: a file or folder of round R (e.g. SELF_TRAIN, PSEUDO_LABELS)."""
    return os.path.join(round_dir(output, idx_round), *parts)


def val_stage(final):
    """The staging folder of phase val's OUTPUT/R: OUTPUT/R.val-partial."""
    return final + VAL_STAGE.format(round='')


def stats_dir(output):
    """OUTPUT/stats: phase val's mining statistics, phase train's --mine-id-address."""
    return os.path.join(output, STATS)


def probmap_dir(output):
    """OUTPUT/probmap: phase val's full-size maps with --keep-probmaps."""
    return os.path.join(output, PROBMAP)


def metrics_path(output, idx_round):
    """OUTPUT/R/metrics.json, phase val's report of the round."""
    return round_part(output, idx_round, METRICS)


def training_list_name(split_tgt):
    """The name of the pseudo-labelled target training list of the target split `split_tgt`."""
    return TRAINING_LIST.format(split=os.path.splitext(os.path.basename(split_tgt))[0])


def target_list_path(output, idx_round, split_tgt):
    """The pseudo-labelled target training list: under OUTPUT, never in the code tree."""
    return round_part(output, idx_round, SELF_TRAIN, training_list_name(split_tgt))


def phase_log_file(output, idx_round, phase):
    return os.path.join(output, PHASE_LOG.format(round=idx_round, phase=phase))


def summary_path(output):
    """OUTPUT/summary.json: the orchestrator's entry per round."""
    return os.path.join(output, SUMMARY)


def rounds_plot_path(output):
    return os.path.join(output, ROUNDS_PLOT)


def rounds_log_path(output):
    return os.path.join(output, ROUNDS_LOG)


def round_weights(output, idx_round, model, epoch):
    """The checkpoint of round R at `epoch`: the weights round R + 1 starts from."""
    return checkpoint_file(round_dir(output, idx_round), model, epoch)


def marker_path(output, idx_round, phase):
    return round_part(output, idx_round, MARKERS[phase])


def write_marker(output, idx_round, phase, argv, **extra):
    """OUTPUT/R/PHASE.done: {'argv': the phase's command line, ...extra}."""
    record = {'argv': list(argv)}
    record.update(extra)
    write_json(marker_path(output, idx_round, phase), record)


def finished(output, idx_round, phase, argv):
    """True when the phase left its marker and ran with the command line `argv`, up to the
    flags that do not change results (issegm.rounds.run_flags.result_argv)."""
    marker = marker_path(output, idx_round, phase)
    if not os.path.isfile(marker):
        return False
    try:
        with open(marker) as f:
            recorded = json.load(f).get('argv')
    except (OSError, ValueError):
        return False
    return isinstance(recorded, list) and result_argv(recorded) == result_argv(argv)


def finished_phases(output):
    """The done markers in OUTPUT (any round, either phase)."""
    return sorted(p for marker in MARKERS.values()
                  for p in glob.glob(os.path.join(glob.escape(output), '*', marker)))


def run_record_path(output):
    """OUTPUT/run.json: the settings the orchestrator's rounds in OUTPUT were run with."""
    return os.path.join(output, RUN_RECORD)


def discard_run(output):
    """Remove what earlier runs wrote in OUTPUT (RUN_ENTRIES; the lock file and anything else
    stay), as util.run_record.discard_entries does. Returns the names discarded."""
    return discard_entries(output, RUN_ENTRIES)
