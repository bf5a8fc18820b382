"""One clear error line instead of a traceback for problems with the user's input."""
import functools
import sys


class UserError(Exception):
    """A problem with input the user gave (file, flag, weights): reported as one line."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def cli_entry(main):
    """Wrap a script's main(argv) so a UserError prints `error: ...` and exits non-zero."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except UserError as e:
            print('error: %s' % e, file=sys.stderr, flush=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper


def require_file(path, what='file'):
    """Raise a UserError naming `path` unless it is an existing file."""
    import os
    if not path or not os.path.isfile(path):
        raise UserError('%s not found: %s' % (what, path))
    return path


def require_dir(path, what='directory'):
    """Raise a UserError naming `path` unless it is an existing directory."""
    import os
    if not path or not os.path.isdir(path):
        raise UserError('%s not found: %s' % (what, path))
    return path
