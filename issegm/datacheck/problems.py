"""A problem found in the data (a file, what kind, one line, error or warning) and how the
scripts report a list of them: one line each, one UserError when any is an error."""
import collections
import sys

from util.errors import UserError

ERROR, WARNING = 'error', 'warning'
Problem = collections.namedtuple('Problem', 'path kind message severity')
Problem.__new__.__defaults__ = (ERROR,)


def format_problem(problem):
    """One line: `error: PATH: message` (or `warning: ...`)."""
    return '%s: %s: %s' % (problem.severity, problem.path, problem.message)


def count_errors(problems):
    return sum(p.severity == ERROR for p in problems)


def raise_on_errors(problems, what, hint):
    """Print the warnings to stderr; stop with a UserError when any problem is an error: one
    line naming the file for one error; for several, one line each on stderr first."""
    errors = [p for p in problems if p.severity == ERROR]
    for p in problems:
        if p.severity != ERROR or len(errors) > 1:
            print(format_problem(p), file=sys.stderr, flush=True)
    if len(errors) == 1:
        raise UserError('%s: %s: %s (%s)' % (what, errors[0].path, errors[0].message, hint))
    if errors:
        raise UserError('%s: %d problems (above); %s' % (what, len(errors), hint))
