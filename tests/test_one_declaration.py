"""A setting is declared once (issegm/rounds/run_flags.py): a new phase-val flag added in a fixture
with one row reaches both parsers, phase val's command line, the checks before round 0,
ValSettings, run.json and docs/flags.md; docs/flags.md is the table of the declarations."""
import json
import os

import pytest

from issegm.rounds import orchestrator, run_flags
from issegm.rounds.flags_doc import PATH as FLAG_TABLE, flag_table_text
from issegm.rounds.phase_settings import parse_round_args, phase_settings
from issegm.rounds.declare import VAL, Setting
from util.errors import UserError


def check_gain(flag, value):
    """The new flag's check: a UserError unless 0 < value <= 2."""
    if not 0 < value <= 2:
        raise UserError('%s must be in (0, 2], got %s' % (flag, value))
    return value


# The one declaration: a phase-val flag both scripts take, which changes results.
GAIN = Setting('--pseudo-gain', VAL, (VAL,), spec=dict(type=float, default=1.0,
                                                       help='a new phase val setting'),
               check=check_gain)


@pytest.fixture
def with_gain(monkeypatch):
    """run_flags.SETTINGS with GAIN declared after --kc-policy."""
    table = list(run_flags.SETTINGS)
    table.insert(table.index(run_flags.setting('--kc-policy')) + 1, GAIN)
    monkeypatch.setattr(run_flags, 'SETTINGS', tuple(table))


def _run(tmp_path, *extra):
    weights = tmp_path / 'gta_rna-a1_cls19_s8_ep-0000.params'
    weights.write_bytes(b'')  # only its name is read here
    argv = ['--output', str(tmp_path / 'o'), '--model', 'cityscapes_rna-a1_cls19_s8',
            '--weights', str(weights), '--num-round', '3'] + list(extra)
    return orchestrator.parse_args(argv), argv


def test_a_new_phase_val_flag_is_one_declaration(with_gain, tmp_path):
    run, argv = _run(tmp_path, '--pseudo-gain', '0.5')
    assert run.pseudo_gain == 0.5  # the orchestrator's parser and RunSettings
    val, train = orchestrator.phase_arguments(run, next(orchestrator.round_plans(run)),
                                              run.weights)
    assert val[val.index('--pseudo-gain'):][:2] == ['--pseudo-gain', '0.5']
    assert val.index('--pseudo-gain') == val.index('--kc-policy') + 2  # where it is declared
    assert '--pseudo-gain' not in train
    assert parse_round_args(val).pseudo_gain == 0.5  # the per-round script's parser
    settings = phase_settings(val)
    assert type(settings).__name__ == 'ValSettings' and settings.pseudo_gain == 0.5
    assert parse_round_args(train).pseudo_gain == 1.0  # its default in phase train
    orchestrator.check_rounds(run)
    os.makedirs(run.output)
    orchestrator.check_recorded_run(run, argv)  # OUTPUT/run.json
    with open(os.path.join(run.output, 'run.json')) as f:
        assert json.load(f)['settings']['--pseudo-gain'] == 0.5
    assert '| `--pseudo-gain` | `1.0` | orchestrator, round script | val | yes | a new ' \
        'phase val setting |' in flag_table_text()


def test_the_new_flag_needs_no_entry_in_the_orchestrators_tests(with_gain, tmp_path):
    """tests/test_orchestrator.py's check of every flag the orchestrator passes on takes the new
    one too, with a value made from its spec."""
    from test_orchestrator import GIVEN_TO_ORCHESTRATOR, assert_each_flag_reaches_its_phases
    assert '--pseudo-gain' not in GIVEN_TO_ORCHESTRATOR
    assert '--pseudo-gain' in assert_each_flag_reaches_its_phases(tmp_path)


def test_the_new_flags_check_runs_before_round_0(with_gain, tmp_path):
    run, _ = _run(tmp_path, '--pseudo-gain', '3')
    with pytest.raises(UserError, match=r'^--pseudo-gain must be in \(0, 2\], got 3.0$'):
        orchestrator.check_rounds(run)
    assert not os.path.exists(run.output)


def test_without_the_fixture_there_is_no_such_flag(tmp_path):
    with pytest.raises(SystemExit):
        _run(tmp_path, '--pseudo-gain', '0.5')
    assert '--pseudo-gain' not in flag_table_text()


def test_the_flag_table_in_docs_is_current():
    """docs/flags.md is made from the declarations: `python -m issegm.rounds.flags_doc`
    rewrites it."""
    with open(FLAG_TABLE) as f:
        assert f.read() == flag_table_text(), 'run: python -m issegm.rounds.flags_doc'


def test_the_flags_that_do_not_change_results_are_the_declarations(tmp_path):
    """Done markers (result_argv) and run.json leave out exactly the rows declared so."""
    neutral = {row.flag for row in run_flags.SETTINGS if not row.changes_results}
    assert {'--gpus', '--no-progress', '--prefetch-threads', '--keep-probmaps', '--no-cudnn',
            '--overwrite', '--num-round', '--launcher', '--servers'} <= neutral
    run, _ = _run(tmp_path, '--gpus', '0,1', '--no-progress', '--prefetch-threads', '3',
                  '--keep-probmaps', '--debug-images', '2', '--no-health', '--cache-images', '1')
    for child in orchestrator.phase_arguments(run, next(orchestrator.round_plans(run)),
                                              run.weights):
        kept = run_flags.result_argv(child)
        flags = [token for token in child if token.startswith('--')]
        assert [f for f in flags if f in neutral] and not [f for f in kept if f in neutral]
        assert [f for f in kept if f.startswith('--')] == [f for f in flags if f not in neutral]
    recorded = {row.flag for row in run_flags.SETTINGS
                if 'orchestrator' in row.parsers and row.in_run_record}
    # and the device count per phase-train worker, derived from --gpus, --workers, --launcher
    assert set(orchestrator.result_settings(run)) == recorded | {orchestrator.DEVICES_KEY}
    assert not recorded & (neutral | {'--output', '--to-epoch'})
