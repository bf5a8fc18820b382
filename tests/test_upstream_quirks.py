"""Every quirk docs/upstream-quirks.md lists as kept is marked `QUIRK` in the code at the place
its "port" column names (a file and a function, class, method or module constant)."""
import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIRKS = os.path.join(REPO, 'docs', 'upstream-quirks.md')


def kept_rows():
    """[(what, port cell)] of the table under '## Kept'."""
    with open(QUIRKS) as f:
        text = f.read()
    section = text[text.index('## Kept'):text.index('## Not kept')]
    rows = []
    for line in section.splitlines():
        if line.startswith('| ') and not line.startswith('| what'):
            cells = [c.strip() for c in line.strip().strip('|').split(' | ')]
            rows.append((cells[0], cells[-1]))
    return rows


def port_place(cell):
    """(file, symbol) from a port cell like "`issegm/cbst.py` `mining_classes`"."""
    ticks = re.findall(r'`([^`]+)`', cell)
    assert len(ticks) >= 2 and ticks[0].endswith('.py'), cell
    return ticks[0], ticks[1]


def _comments_above(lines, first):
    """Index of the first line of the comment block directly above line index `first`."""
    while first > 0 and lines[first - 1].lstrip().startswith('#'):
        first -= 1
    return first


def source_of(path, symbol):
    """The lines of `symbol` (function, class, Class.method or module assignment) in `path`,
    with the comment lines directly above it."""
    with open(os.path.join(REPO, path)) as f:
        text = f.read()
    lines = text.splitlines()
    body = ast.parse(text).body
    *outer, name = symbol.split('.')
    for part in outer:
        body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == part)
    for node in body:
        named = getattr(node, 'name', None) == name
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
        if named:
            first = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])
            return '\n'.join(lines[_comments_above(lines, first - 1):node.end_lineno])
    raise AssertionError('%s has no %s' % (path, symbol))


def test_the_table_is_read():
    rows = kept_rows()
    assert len(rows) >= 20
    assert all(port_place(port) for _, port in rows)


@pytest.mark.parametrize('what,port', kept_rows(), ids=lambda v: v[:40])
def test_each_kept_quirk_is_marked_where_the_table_says(what, port):
    path, symbol = port_place(port)
    assert 'QUIRK' in source_of(path, symbol), '%s: no QUIRK marker in %s %s' % (
        what[:60], path, symbol)


def test_an_unmarked_place_is_found():
    """The check itself: a function without the marker fails it."""
    assert 'QUIRK' not in source_of('util/image.py', 'resize_label')
