"""The output folder of a self-training run, shared by the orchestrator and both phases.

OUTPUT/R/ holds round R (phase val's results/, self_train/, metrics.json; phase train's
checkpoints), OUTPUT/stats/ the latest mining statistics, OUTPUT/roundR-PHASE.log the logs,
OUTPUT/run.json the orchestrator's settings. A finished phase leaves OUTPUT/R/val.done or
train.done holding its command line."""
import glob
import json
import os
import re

from issegm.round_flags import result_argv
from util.files import write_json
from util.model_label import checkpoint_file
from util.run_record import discard_entries

VAL_DONE = 'val.done'
TRAIN_DONE = 'train.done'
MARKERS = {'val': VAL_DONE, 'train': TRAIN_DONE}
RUN_RECORD = 'run.json'
# The entries of OUTPUT a run writes (the orchestrator, both phases, their temporary files):
# what --overwrite discards. Anything else in the folder is left alone.
RUN_ENTRIES = re.compile(r'^(\d+(\.val-partial)?|stats|probmap|summary\.json|rounds\.png|'
                         r'rounds\.log|run\.json|round\d+-(val|train)(\.rank\d+)?\.log|'
                         r'\..+\.tmp|\.discarded)$')


def round_dir(output, idx_round):
    return os.path.join(output, str(idx_round))


def stats_dir(output):
    """OUTPUT/stats: phase val's mining statistics, phase train's --mine-id-address."""
    return os.path.join(output, 'stats')


def probmap_dir(output):
    """OUTPUT/probmap: phase val's full-size maps with --keep-probmaps."""
    return os.path.join(output, 'probmap')


def metrics_path(output, idx_round):
    """OUTPUT/R/metrics.json, phase val's report of the round."""
    return os.path.join(round_dir(output, idx_round), 'metrics.json')


def target_list_path(output, idx_round, split_tgt):
    """The pseudo-labelled target training list: under OUTPUT, never in the code tree."""
    split = os.path.splitext(os.path.basename(split_tgt))[0]
    return os.path.join(round_dir(output, idx_round), 'self_train', '%s_training.lst' % split)


def phase_log_file(output, idx_round, phase):
    return os.path.join(output, 'round%d-%s.log' % (idx_round, phase))


def round_weights(output, idx_round, model, epoch):
    """The checkpoint of round R at `epoch`: the weights round R + 1 starts from."""
    return checkpoint_file(round_dir(output, idx_round), model, epoch)


def marker_path(output, idx_round, phase):
    return os.path.join(round_dir(output, idx_round), MARKERS[phase])


def write_marker(output, idx_round, phase, argv, **extra):
    """OUTPUT/R/PHASE.done: {'argv': the phase's command line, ...extra}."""
    record = {'argv': list(argv)}
    record.update(extra)
    write_json(marker_path(output, idx_round, phase), record)


def finished(output, idx_round, phase, argv):
    """True when the phase left its marker and ran with the command line `argv`, up to the
    flags that do not change results (issegm.round_flags.result_argv)."""
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
