"""One run per output folder: an advisory fcntl.flock on OUTPUT/.lock, held while the run lasts
and released by the OS when its process ends, so a lock left by a killed run is free and is
taken over (README, "Safety"; docs/internals.md, section 10).
"""
import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
import uuid

from util.errors import UserError, disk_full_error, is_disk_full

__all__ = ['LOCK_NAME', 'TOKEN_ENV', 'OutputLock', 'output_lock', 'acquire', 'first_process']

LOCK_NAME = '.lock'
# The holder's token, in its children's environment: a child run on the same folder (the
# per-round script under the orchestrator, its ranks under issegm.launch or horovodrun) works
# under its parent's lock instead of being refused by it.
TOKEN_ENV = 'CBST_OUTPUT_LOCK'
_HELD = {}  # real path of a lock file -> the OutputLock this process holds on it
_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


class OutputLock:
    """The lock of one folder as this process has it: `fd` open and locked when held here (None
    when the parent's lock covers this process, or for a rank other than the first); `token`
    the holder's; `stale` the record of a gone holder whose lock this one took over."""

    def __init__(self, path, fd=None, token=None, stale=None):
        self.path = path
        self.fd = fd
        self.token = token
        self.stale = stale
        self.depth = 1

    @property
    def takeover(self):
        """A log line when this lock was taken over from a gone process, else None."""
        if not self.stale:
            return None
        return ('took over the lock %s of PID %s on host %s (started %s): that process is gone'
                % (self.path, self.stale.get('pid', '?'), self.stale.get('host', '?'),
                   self.stale.get('started', '?')))

    def child_env(self):
        """The environment for child processes working in the folder under this lock."""
        env = dict(os.environ)
        if self.token:
            env[TOKEN_ENV] = self.token
        return env

    def release(self):
        """Undo one acquire; the last one of a held lock empties the file and unlocks it."""
        self.depth -= 1
        if self.depth > 0 or self.fd is None:
            return
        _HELD.pop(os.path.realpath(self.path), None)
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)  # an empty file: nobody holds it (a full record: a gone holder)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def first_process():
    """False for the processes of a distributed job that write nothing: parameter servers and
    the scheduler (DMLC_ROLE), workers other than the first (DMLC_TASK_ID, HOROVOD_RANK, MPI's
    ranks). Only the first process of a job locks its folder."""
    role = os.environ.get('DMLC_ROLE')
    if role in ('server', 'scheduler'):
        return False
    ranks = ['HOROVOD_RANK', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK']
    if role == 'worker':
        ranks.append('DMLC_TASK_ID')
    return all(os.environ.get(name, '0') == '0' for name in ranks)


def acquire(folder, command=None):
    """Lock FOLDER/.lock for this process (creating the folder): an OutputLock, or a UserError
    naming the running holder's PID and host and the lock file. Re-entrant in one process."""
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where the folder would be
        raise UserError('cannot use %s as the output folder: it or a folder above it is a '
                        'file' % folder) from None
    except PermissionError as e:
        raise UserError('cannot create the output folder %s: %s' % (folder, e.strerror)) \
            from None
    path = os.path.join(folder, LOCK_NAME)
    held = _HELD.get(os.path.realpath(path))
    if held is not None:
        held.depth += 1
        return held
    if not first_process():
        return OutputLock(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _read_record(fd, wait=e.errno in _BUSY)
        os.close(fd)
        if e.errno not in _BUSY:
            print('warning: cannot lock %s (%s): running without the lock' % (path, e.strerror),
                  file=sys.stderr, flush=True)
            return OutputLock(path)
        if holder.get('token') and holder.get('token') == os.environ.get(TOKEN_ENV):
            return OutputLock(path, token=holder['token'])  # our parent's lock
        raise UserError(busy_message(path, holder)) from None
    lock = OutputLock(path, fd, uuid.uuid4().hex, _read_record(fd) or None)
    _write_record(fd, {'pid': os.getpid(), 'host': socket.gethostname(),
                       'started': time.strftime('%Y-%m-%d %H:%M:%S'), 'token': lock.token,
                       'command': ' '.join(command if command is not None else sys.argv)})
    _HELD[os.path.realpath(path)] = lock
    return lock


@contextlib.contextmanager
def output_lock(folder, command=None):
    """`acquire` for a `with` block: the lock is released when the block ends. A full disk
    inside the block (an OSError ENOSPC that names no file, MXNet's short write) becomes the
    one-line UserError of util.errors.disk_full_error naming the folder."""
    lock = acquire(folder, command)
    try:
        yield lock
    except Exception as e:
        if isinstance(e, UserError) or not is_disk_full(e):
            raise
        raise disk_full_error(getattr(e, 'filename', None) or folder) from None
    finally:
        lock.release()


def busy_message(path, holder):
    """The one line of a refused run."""
    command = holder.get('command', '')
    if len(command) > 120:
        command = command[:117] + '...'
    return ('%s is in use by PID %s on host %s (lock file %s, since %s: %s); wait for that run '
            'to end or use another --output' % (os.path.dirname(path), holder.get('pid', '?'),
                                                holder.get('host', '?'), path,
                                                holder.get('started', '?'), command or '?'))


def _read_record(fd, wait=False):
    """The holder's record in the lock file ({} when empty or unreadable); with `wait`, for up
    to a second while it is empty (a holder between its flock and its write)."""
    deadline = time.time() + (1.0 if wait else 0.0)
    while True:
        text = os.pread(fd, 65536, 0).decode('utf-8', 'replace')
        if text.strip() or time.time() >= deadline:
            break
        time.sleep(0.05)
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(fd, record):
    data = json.dumps(record).encode('utf-8')
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)  # visible to the other hosts of a shared (NFS) folder


def _close_in_forked_child():
    """A forked worker (a process prefetcher) drops its copies of the held locks' descriptors:
    the lock stays its parent's (flock belongs to the open file, which the parent keeps)."""
    for lock in list(_HELD.values()):
        if lock.fd is not None:
            os.close(lock.fd)
            lock.fd = None
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_forked_child)
