"""One clear error line instead of a traceback for problems with the user's input (and for a
full disk)."""
import errno
import functools
import os
import re
import shutil
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
    hang instead of ending with its status (see util/ps_launcher.py)."""
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
        except OSError as e:
            if is_disk_full(e):
                error = disk_full_error(e.filename)
            else:
                error = missing_library_error(e)
                if error is None:
                    raise
            print('error: %s' % error, file=sys.stderr, flush=True)
            _exit(1)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr, flush=True)
            _exit(130)

    return wrapper


def not_a_file(path):
    """None for a file that exists, else why not, worded to follow its name: 'not found',
    'is a folder, not a file', 'is a symbolic link loop', 'is a broken symbolic link (to X)',
    'cannot be read (the system's reason)'."""
    if path and os.path.isfile(path):
        return None
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return 'is a symbolic link loop'
        if e.errno == errno.ENOENT and os.path.islink(path):
            return 'is a broken symbolic link (to %s)' % os.readlink(path)
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return 'not found'
        return 'cannot be read (%s)' % e.strerror
    except (TypeError, ValueError):  # no path at all
        return 'not found'
    return 'is a folder, not a file' if os.path.isdir(path) else 'is not a regular file'


def file_error(path, what='file'):
    """The UserError of a `what` at `path` that is not a file (not_a_file): '`what` not found:
    PATH', or e.g. '`what` PATH is a folder, not a file'."""
    reason = not_a_file(path) or 'not found'
    if reason == 'not found':
        return UserError('%s not found: %s' % (what, path))
    return UserError('%s %s %s' % (what, path, reason))


# The dynamic loader's words for a library it cannot find (ctypes.CDLL's OSError, e.g. when
# `import mxnet` of a CUDA wheel loads libmxnet.so): 'libcudnn.so.8: cannot open shared ...'.
MISSING_LIBRARY = re.compile(r'(\S+\.so[.\d]*): cannot open shared object file')
# What to install for each library a CUDA MXNet 1.9.1 wheel needs beside the driver (NVIDIA's
# apt repository names; README, "Installing for GPUs"); the first prefix that fits is used.
LIBRARY_HINTS = (
    ('libcuda.so', 'the NVIDIA driver (libcuda.so.1 comes with it; nvidia-smi tells whether '
                   'one is installed)'),
    ('libcudnn', 'cuDNN 8 for CUDA 11 (package libcudnn8)'),
    ('libnccl', 'NCCL 2 (package libnccl2; needed even on one GPU)'),
    ('lib', 'the CUDA 11 libraries of the wheel\'s CUDA version (package cuda-libraries-11-X, '
            'e.g. cuda-libraries-11-2 for mxnet-cu112)'),
)


def missing_library_error(exc):
    """The UserError of an OSError saying a shared library was not found (None for another
    OSError): the library's name and what to install, or the CPU MXNet instead."""
    found = MISSING_LIBRARY.search(str(exc))
    if not found:
        return None
    library = os.path.basename(found.group(1))
    needs = next(hint for prefix, hint in LIBRARY_HINTS if library.startswith(prefix))
    return UserError('a shared library is missing (%s): install %s, with its folder on '
                     'LD_LIBRARY_PATH (README, "Installing for GPUs"), or use the CPU MXNet '
                     '(pip package mxnet) with --gpus cpu' % (str(exc).strip(), needs))


def require_file(path, what='file'):
    """Raise a UserError naming `path` unless it is an existing file (file_error)."""
    if not path or not os.path.isfile(path):
        raise file_error(path, what)
    return path


def require_dir(path, what='directory'):
    """Raise a UserError naming `path` unless it is an existing directory."""
    if not path or not os.path.isdir(path):
        raise UserError('%s not found: %s' % (what, path))
    return path


# errno values of a write that found no room: the device is full, or the user's quota is.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# What MXNet's dmlc streams say when fwrite writes less than asked (mx.nd.save, Symbol.save).
MXNET_SHORT_WRITE = 'FileStream.Write incomplete'


def is_disk_full(exc):
    """True for an OSError of a full disk or quota, and for MXNet's short write."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    return MXNET_SHORT_WRITE in str(exc)


def _megabytes(n):
    return '%.1f MB' % (n / 1e6)


def disk_full_error(path=None, needed=None):
    """The UserError of a write to `path` (a file, or the folder written into) that found the
    disk full: it names the folder, the space left there and, when known, the `needed`
    bytes."""
    if not path:
        return UserError('disk full: no space left on device; free some space and rerun')
    folder = os.path.abspath(path)
    writing = ''
    if not os.path.isdir(folder):
        writing = ' writing %s' % os.path.basename(folder)
        folder = os.path.dirname(folder)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        free = _megabytes(shutil.disk_usage(folder).free)
    except OSError:
        free = 'unknown'
    if writing and needed is not None:
        writing += ', which needs about %s' % _megabytes(needed)
    return UserError('disk full: no space left in %s (%s free)%s; free some space and rerun'
                     % (folder, free, writing))
