"""Writes docs/flags.md, the table of every flag of the orchestrator and the per-round script,
made from issegm/rounds/run_flags.py (tests/test_flags.py checks that it is current):
`python -m issegm.rounds.flags_doc` (or `python issegm/rounds/flags_doc.py`).
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))))

from issegm.rounds import run_flags  # noqa: E402
from issegm.rounds.declare import markdown_table  # noqa: E402
from util.files import write_atomically  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = os.path.join(REPO, 'docs', 'flags.md')
HEADER = '''# The self-training flags

Generated from `issegm/rounds/run_flags.py` by `python -m issegm.rounds.flags_doc`: do not edit by
hand.
"parsed by": the orchestrator (`solve_AO.py`) and/or the per-round script (`solve_ST.py`);
"phases": the children's command lines that carry it (the orchestrator writes them); "changes
results: no": a rerun may change it (the done markers and `OUTPUT/run.json` ignore it).

'''


def flag_table_text(table=None):
    """docs/flags.md's text for `table` (default run_flags.SETTINGS)."""
    return HEADER + markdown_table(run_flags.SETTINGS if table is None else table)


def main():
    text = flag_table_text()
    write_atomically(PATH, lambda f: f.write(text.encode('utf-8')))
    print('wrote %s' % PATH)
    return 0


if __name__ == '__main__':
    sys.exit(main())
