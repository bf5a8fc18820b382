"""One clear error line instead of a traceback for problems with the user's input."""
import functools
import os
import sys

# Set by exit_hard_on_errors(): leave with os._exit instead of sys.exit (see there).
_EXIT_HARD = False


class UserError(Exception):
    """A problem with input the user gave (file, flag, weights): reported as one line."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def exit_hard_on_errors(enable=True):
    """Make cli_entry leave with os._exit after reporting an error.

    For distributed workers: once a dist kvstore exists, a normal interpreter exit runs its
    finalizer, which waits in a barrier for every other worker, so a failing worker would
    hang instead of ending with its status (see util/launch.py)."""
    global _EXIT_HARD
    _EXIT_HARD = bool(enable)


def _exit(code):
    if _EXIT_HARD:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def cli_entry(main):
    """Wrap a script's main(argv) so a UserError prints `error: ...` and exits non-zero."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except UserError as e:
            print('error: %s' % e, file=sys.stderr, flush=True)
            _exit(e.exit_code)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr, flush=True)
            _exit(130)

    return wrapper


def require_file(path, what='file'):
    """Raise a UserError naming `path` unless it is an existing file."""
    if not path or not os.path.isfile(path):
        raise UserError('%s not found: %s' % (what, path))
    return path


def require_dir(path, what='directory'):
    """Raise a UserError naming `path` unless it is an existing directory."""
    if not path or not os.path.isdir(path):
        raise UserError('%s not found: %s' % (what, path))
    return path
