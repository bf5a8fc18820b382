"""What a predict.py run leaves beside its maps: OUTPUT/predict.json (the settings that made
them; a rerun with others is refused, --overwrite discards OUTPUT_ENTRIES first) and
OUTPUT/summary.json."""
import contextlib
import os
import re

import numpy as np

from issegm.prediction.outputs import KINDS
from issegm.testtime.image_list import device_names
from util.files import write_json
from util.run_record import check_recorded_settings, discard_entries

RECORD_NAME = 'predict.json'
SUMMARY_NAME = 'summary.json'
OUTPUT_ENTRIES = re.compile(r'^(%s|summary\.json|predict\.json|predict\.log)$'
                            % '|'.join(KINDS))


def write_summary(output, test, kinds, contexts, run):
    """OUTPUT/summary.json of a run with the TestTimeSettings `test`, the output `kinds` and
    the devices `contexts`; `run`: dict of images, skipped, videos, seconds and counts (pixels
    per class)."""
    info = test.info
    counts = run.pop('counts')
    shares = counts / counts.sum() if counts.sum() else np.zeros(len(counts))
    summary = dict(run, images_per_second=round(run['images'] / max(run['seconds'], 1e-9), 3),
                   seconds=round(run['seconds'], 3), model=test.model, weights=test.weights,
                   dataset=info.name, test_scales=test.scales, test_flipping=test.flip,
                   test_steps=test.test_steps, devices=device_names(contexts),
                   outputs=list(kinds),
                   class_shares={name: round(float(s), 6)
                                 for name, s in zip(info.class_names, shares)})
    write_json(os.path.join(output, SUMMARY_NAME), summary)
    return summary


def result_settings(test, opacity):
    """{flag: value} of the flags that change the maps (the weights file absolute; not --gpus,
    --outputs, ...): what OUTPUT/predict.json records."""
    return {'--weights': os.path.abspath(test.weights), '--model': test.model,
            '--dataset': test.info.name, '--test-scales': ','.join(map(str, test.scales)),
            '--test-flipping': test.flip, '--test-steps': test.test_steps,
            '--opacity': opacity}


def has_outputs(output):
    """True when OUTPUT holds an output file of some kind (KINDS)."""
    for kind in KINDS:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            with os.scandir(os.path.join(output, kind)) as entries:
                if any(entry.is_file() for entry in entries):
                    return True
    return False


def check_recorded(output, overwrite, argv, settings):
    """With `overwrite`, discard the earlier run's outputs (OUTPUT_ENTRIES); then compare
    `settings` with OUTPUT/predict.json (util.run_record, as the orchestrator's run.json).
    Returns the names discarded."""
    discarded = discard_entries(output, OUTPUT_ENTRIES) if overwrite else []
    path = os.path.join(output, RECORD_NAME)
    check_recorded_settings(
        path, settings, argv, lambda: has_outputs(output),
        lambda changed: '%s holds predictions made with other settings (%s): %s; rerun with '
        'those values, use another --output, or add --overwrite to discard them' % (
            output, path, changed))
    return discarded
