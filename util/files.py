"""Small file helpers: atomic writes, staged output folders, a full disk as one error line."""
import contextlib
import json
import os
import re
import shutil
import tempfile
import threading

from util.errors import UserError, disk_full_error, is_disk_full

__all__ = ['atomic_path', 'write_json', 'write_atomically', 'staged_output',
           'remove_stale_temporaries', 'require_writable', 'read_text']

# The temporary names atomic_path gives (.NAME.PID-THREAD.tmp), and those of earlier versions
# of issegm/prepare_data.py (.NAME.tmpPID): group 1 or 2 is the writer's process id.
TEMPORARY_NAME = re.compile(r'^\..+\.(\d+)-\d+\.tmp$|^\..+\.tmp(\d+)$')


@contextlib.contextmanager
def atomic_path(path, needed=None):
    """Yield a temporary path beside `path` (its name holds the process and thread ids, so
    several threads and processes may write at once); when the block ends without an error it
    is renamed to `path`, so a file that exists is whole (a resumed run may skip it). Any error
    removes it; a full disk (OSError ENOSPC, MXNet's short write) becomes the UserError of
    util.errors.disk_full_error (`needed`: the bytes the file takes, when known)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, '.%s.%d-%d.tmp' % (os.path.basename(path), os.getpid(),
                                                  threading.get_ident()))
    try:
        yield tmp
        os.replace(tmp, path)
    except Exception as e:
        _remove(tmp)  # first: the error line then says how much space is free without it
        if is_disk_full(e):
            raise disk_full_error(path, needed) from None
        raise
    finally:
        _remove(tmp)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder):
    """Remove the temporary files (atomic_path's names) in `folder` whose writer process is
    gone, as a run killed between writing and renaming leaves them; returns how many."""
    removed = 0
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in os.listdir(folder):
            match = TEMPORARY_NAME.match(name)
            if match and not _process_alive(int(match.group(1) or match.group(2))):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
                    removed += 1
    return removed


def require_writable(path, what):
    """A UserError in one line unless the file `path` can be written before anything is
    changed: not a folder, no file where its folders would be, and a file can be made in its
    folder or the nearest folder above it that exists (tried: a probe file, removed at once)."""
    if os.path.isdir(path):
        raise UserError('cannot write the %s %s: it is a folder' % (what, path))
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError('cannot write the %s %s: %s is a file, not a folder'
                        % (what, path, existing))
    try:
        fd, probe = tempfile.mkstemp(prefix='.write-check-', dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise UserError('cannot write the %s %s: %s in %s' % (what, path, e.strerror, existing))


def _remove(path):
    if os.path.lexists(path):
        os.remove(path)


def write_json(path, obj):
    """Write JSON atomically (atomic_path): a reader or a resumed run never sees half a file."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(obj, f, indent=1)


def write_atomically(path, write):
    """Call write(binary file object) on a temporary file beside `path`, then rename it to
    `path` (atomic_path)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            write(f)


@contextlib.contextmanager
def staged_output(stage, parts):
    """Yield the fresh, empty folder `stage`. When the block ends without an error, what it
    wrote there replaces its destination: `parts` maps names in the stage to destinations
    (names the block did not write are left alone), or is a folder that receives every entry
    of the stage; then the stage is removed. An error removes the stage (freeing its space)
    and leaves every destination as it was: a failure half-way never leaves half an output."""
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    moves = (dict(parts) if isinstance(parts, dict) else
             {name: os.path.join(parts, name) for name in os.listdir(stage)})
    replaced = os.path.join(stage, '.replaced')  # earlier outputs, out of the way by renaming
    os.makedirs(replaced)
    for name, dest in moves.items():
        if not os.path.lexists(os.path.join(stage, name)):
            continue
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        if os.path.lexists(dest):
            os.replace(dest, os.path.join(replaced, name))
        os.replace(os.path.join(stage, name), dest)
    shutil.rmtree(stage)


def read_text(path):
    """The whole text of the file at `path`."""
    with open(path) as f:
        return f.read()
