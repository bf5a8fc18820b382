"""The settings a run recorded in its output folder, and what a rerun there with other settings
gets: one line naming each changed flag, or with --overwrite the earlier outputs discarded
(README, "Safety"). Used by the orchestrator (OUTPUT/run.json) and predict.py
(OUTPUT/predict.json)."""
import json
import os
import shutil

from util.errors import UserError
from util.files import write_json
from util.flags import py2_str

__all__ = ['DISCARDED', 'changed_flags', 'check_recorded_settings', 'discard_entries']

DISCARDED = '.discarded'


def _shown(v):
    return '(none)' if v is None else py2_str(v)


def changed_flags(recorded, current):
    """['--flag RECORDED (now CURRENT)'] of every flag whose value differs, in the order of
    `current` (flags only recorded last)."""
    order = list(current)

    def position(flag):
        return order.index(flag) if flag in order else len(order), flag
    return ['%s %s (now %s)' % (flag, _shown(recorded.get(flag)), _shown(current.get(flag)))
            for flag in sorted(set(recorded) | set(current), key=position)
            if recorded.get(flag) != current.get(flag)]


def check_recorded_settings(path, current, command, has_results, refusal, defaults=None,
                            extra=None):
    """Compare {flag: value} `current` with the settings recorded in `path` (JSON {'command',
    'settings'}): equal, nothing happens; different while `has_results()` is true (outputs made
    with the recorded settings are there), the UserError refusal(the changed flags, joined by
    ', ': changed_flags); else `path` records `current` and the `command` line. An unreadable record
    is a UserError too (--overwrite starts over). `defaults` {flag: value}: what a record
    written before such a flag was recorded is taken to hold for it. `extra` {key: value}: more
    keys written beside them (e.g. the CPU kernels that computed the results)."""
    recorded = None
    if os.path.isfile(path):
        try:
            with open(path) as f:
                recorded = json.load(f)['settings']
        except (ValueError, KeyError, TypeError) as e:
            raise UserError('cannot read %s (%s): add --overwrite to start over' % (path, e))
        if isinstance(recorded, dict):
            for flag, value in (defaults or {}).items():
                recorded.setdefault(flag, value)
    if recorded == current:
        return
    if recorded is not None and has_results():
        raise UserError(refusal(', '.join(changed_flags(recorded, current))))
    write_json(path, dict({'command': list(command), 'settings': current}, **(extra or {})))


def discard_entries(output, pattern):
    """Remove the entries of OUTPUT whose names match the compiled regex `pattern` (the lock
    file and anything else stay): each is first moved into OUTPUT/.discarded (a rename: a kill
    half-way leaves every entry whole or gone), then that folder is deleted. Returns the names
    discarded."""
    names = sorted(n for n in os.listdir(output) if pattern.match(n) and n != DISCARDED)
    bin_dir = os.path.join(output, DISCARDED)
    shutil.rmtree(bin_dir, ignore_errors=True)  # what a killed discard left
    os.makedirs(bin_dir)
    for name in names:
        os.replace(os.path.join(output, name), os.path.join(bin_dir, name))
    shutil.rmtree(bin_dir)
    return names
