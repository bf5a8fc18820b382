"""A setting declared once (Setting): its flag, the settings class that holds it, the phases
whose command line carries it and how, its argparse spec in each script, its check and whether
it changes results. From a table of them (issegm/rounds/run_flags.py): both scripts' parsers, the
children's command lines, the flags a done marker and run.json ignore, the settings classes and
the Markdown flag table (docs/internals.md, section 1, "How to add a flag").
"""
import dataclasses
import functools
from typing import Callable, Optional

from util.flags import FlagParser, py2_str

__all__ = ['VAL', 'TRAIN', 'BOTH', 'RUN', 'ROUND', 'IGNORED', 'ORCHESTRATOR', 'ROUND_SCRIPT',
           'Setting', 'value', 'switch', 'nonzero', 'unless_default', 'zero_one', 'build_parser',
           'child_argv', 'result_argv', 'room_values', 'settings_class', 'markdown_table']

VAL, TRAIN = 'val', 'train'
BOTH = (VAL, TRAIN)
# The settings classes a value goes to: the orchestrator's RunSettings (RUN) or, in the
# per-round script, RoundSettings (both phases), ValSettings (VAL), TrainSettings (TRAIN);
# IGNORED: accepted and never read (--check-start, --check-step: yzou2/CBST solve_ST.py and
# train_src.py parse_args declare them and never read them).
RUN, ROUND, IGNORED = 'run', 'round', 'ignored'
# The two parsers: the orchestrator's and the per-round script's.
ORCHESTRATOR, ROUND_SCRIPT = 'orchestrator', 'round script'


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


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a table is a cache key
class Setting:
    """One setting. `room`: the settings class holding it, field `dest`; `phases`: the children
    whose command line carries it, written by `write(flag, value)` (the round loop's value or
    the orchestrator's flag); `spec`: its argparse keywords in `parsers`, `orchestrator`:
    the orchestrator's changes to them, `negation`: (flag, help) of the orchestrator's switch
    storing False; `check(flag, value)`: the settings value, a UserError when bad;
    `changes_results`: False for a value a rerun may change (devices, helpers, progress bars,
    kept extras): done markers and run.json ignore it; `recorded`: in run.json (default
    changes_results); `group`: its help section (run_flags.GROUPS)."""
    flag: str
    room: str
    phases: tuple = ()
    write: Callable = value
    spec: dict = dataclasses.field(default_factory=dict)
    parsers: tuple = (ORCHESTRATOR, ROUND_SCRIPT)
    orchestrator: dict = dataclasses.field(default_factory=dict)
    negation: Optional[tuple] = None
    check: Optional[Callable] = None
    changes_results: bool = True
    recorded: Optional[bool] = None
    group: Optional[str] = None

    @property
    def dest(self):
        return self.spec.get('dest', self.flag[2:].replace('-', '_'))

    @property
    def in_run_record(self):
        return self.changes_results if self.recorded is None else self.recorded

    def spec_in(self, parser):
        """The argparse keywords of the flag in `parser` (ORCHESTRATOR or ROUND_SCRIPT)."""
        return dict(self.spec, **self.orchestrator) if parser == ORCHESTRATOR else self.spec


def build_parser(table, groups, parser_name, **keywords):
    """The FlagParser of `parser_name` (ORCHESTRATOR or ROUND_SCRIPT): the table's flags it
    takes, in table order, each group (a key of `groups`: (title, description)) a section."""
    parser = FlagParser(**keywords)
    sections = {None: parser}
    for row in table:
        if parser_name not in row.parsers:
            continue
        if row.group not in sections:
            sections[row.group] = parser.add_argument_group(*groups[row.group])
        sections[row.group].add_argument(row.flag, **row.spec_in(parser_name))
        if row.negation is not None and parser_name == ORCHESTRATOR:
            sections[row.group].add_argument(row.negation[0], dest=row.dest,
                                             action='store_false', help=row.negation[1])
    return parser


def child_argv(table, phase, values):
    """The per-round script's command line for `phase`: each setting reaching it, in table
    order, written from values[dest]."""
    argv = []
    for row in table:
        if phase in row.phases:
            argv += row.write(row.flag, values[row.dest])
    return argv


def result_argv(table, argv):
    """A child's command line without the flags of the settings that do not change results: a
    phase finished with other devices or helpers counts as finished (round_files.finished)."""
    neutral = {row.flag: row.write is not switch for row in table
               if row.phases and not row.changes_results}
    kept, tokens = [], iter(argv)
    for token in tokens:
        if token in neutral:
            if neutral[token]:  # the flag's value goes too
                next(tokens, None)
            continue
        kept.append(token)
    return kept


def _members(table, room):
    """The rows of `room` (ROUND, VAL, TRAIN, RUN) in the per-round script, or every flag the
    orchestrator takes (room ORCHESTRATOR)."""
    if room == ORCHESTRATOR:
        return [row for row in table if ORCHESTRATOR in row.parsers]
    return [row for row in table if row.room == room]


def room_values(table, room, given):
    """{dest: value} of the settings of `room` (see _members), from `given` ({dest: parsed
    value}), each through its check in table order (the first bad value is the error); the
    orchestrator checks only its own flags' (RUN), the per-round script checks the others."""
    values = {}
    for row in _members(table, room):
        v = given[row.dest]
        checked = row.check is not None and (room != ORCHESTRATOR or row.room == RUN)
        values[row.dest] = row.check(row.flag, v) if checked else v
    return values


@functools.lru_cache(maxsize=None)
def settings_class(table, room, name, derived, doc):
    """The frozen dataclass NAME of `room` (see _members): `derived` ((field, type) its builder
    computes), then a field per setting, named as its flag's dest. One class per table."""
    fields = list(derived) + [(row.dest, object) for row in _members(table, room)]
    cls = dataclasses.make_dataclass(name, fields, frozen=True)
    cls.__doc__ = doc
    return cls


def _spec_shown(row):
    """The argparse keywords the table shows: the orchestrator's when it takes the flag."""
    return row.spec_in(ORCHESTRATOR if ORCHESTRATOR in row.parsers else ROUND_SCRIPT)


def _default(row):
    spec = _spec_shown(row)
    if spec.get('required'):
        return '(required)'
    if spec.get('action') == 'store_true':
        return 'on' if spec.get('default') else 'off'
    return '' if spec.get('default') is None else '`%s`' % py2_str(spec['default'])


def markdown_table(table):
    """The flags of both scripts as a Markdown table: flag, default (the orchestrator's when it
    takes the flag), the parsers, the phases it reaches, whether it changes results, help."""
    lines = ['| flag | default | parsed by | phases | changes results | help |',
             '|---|---|---|---|---|---|']
    for row in table:
        flags = '`%s`' % row.flag + (' / `%s`' % row.negation[0] if row.negation else '')
        spec = _spec_shown(row)
        help_text = spec.get('help', '').replace('%(default)s', py2_str(spec.get('default')))
        lines.append('| %s | %s | %s | %s | %s | %s |' % (
            flags, _default(row), ', '.join(row.parsers), ', '.join(row.phases) or '-',
            'yes' if row.changes_results else 'no', help_text.replace('|', '\\|')))
    return '\n'.join(lines) + '\n'
