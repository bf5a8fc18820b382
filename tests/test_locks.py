"""util/locks.py (one run per output folder) and the one-line full disk (util/errors.py,
util/files.py), with forked processes as the other runs (a few milliseconds each)."""
import contextlib
import errno
import json
import os
import socket
import time

import pytest

from util import locks
from util.errors import UserError, cli_entry
from util.files import atomic_path, write_atomically, write_json
from util.locks import TOKEN_ENV, output_lock


def in_other_process(fn, env=None):
    """fn() in a forked process with `env` added to its environment: ('ok', its result) or
    ('error', the UserError's message)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.environ.update(env or {})
            try:
                out = ['ok', fn()]
            except UserError as e:
                out = ['error', str(e)]
            os.write(write_end, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return tuple(json.loads(text))


def _try_lock(folder):
    def fn():
        lock = locks.acquire(folder)
        held = lock.fd is not None
        lock.release()
        return held
    return fn


@contextlib.contextmanager
def held_elsewhere(folder):
    """FOLDER locked by a forked process while the block runs; yields its PID."""
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            with output_lock(folder, ['holder', 'command']):
                os.write(ready_w, b'x')
                os.read(stop_r, 1)
        finally:
            os._exit(0)
    os.read(ready_r, 1)
    try:
        yield pid
    finally:
        os.write(stop_w, b'x')
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, stop_r, stop_w):
            os.close(fd)


def test_a_second_run_stops_with_the_holders_pid_host_and_lock_file(tmp_path):
    folder = str(tmp_path / 'out')
    with output_lock(folder, ['python', 'x.py']) as lock:
        assert lock.fd is not None and lock.takeover is None
        record = json.loads(open(os.path.join(folder, '.lock')).read())
        assert record['pid'] == os.getpid() and record['command'] == 'python x.py'
        kind, message = in_other_process(_try_lock(folder))
        assert kind == 'error'
        assert message == ('%s is in use by PID %d on host %s (lock file %s, since %s: python '
                           'x.py); wait for that run to end or use another --output'
                           % (folder, os.getpid(), socket.gethostname(),
                              os.path.join(folder, '.lock'), record['started']))
        with output_lock(folder) as again:  # re-entrant in one process
            assert again is lock
        assert in_other_process(_try_lock(folder))[0] == 'error'  # still held
    assert open(os.path.join(folder, '.lock')).read() == ''  # released: empty
    assert in_other_process(_try_lock(folder)) == ('ok', True)


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    folder = str(tmp_path / 'out')

    def killed():  # locks, then dies without releasing (as kill -9)
        locks.acquire(folder)
        os._exit(0)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        killed()
    os.waitpid(pid, 0)
    with output_lock(folder) as lock:
        assert lock.fd is not None
        assert lock.takeover.startswith('took over the lock %s of PID %d on host %s (started '
                                        % (os.path.join(folder, '.lock'), pid,
                                           socket.gethostname()))
        assert lock.takeover.endswith('that process is gone')


def test_a_forked_worker_does_not_keep_its_parents_lock(tmp_path):
    """A process prefetcher's workers are forked: when their parent is killed, the folder is
    free although they still run (they drop the lock's descriptor when forked)."""
    folder = str(tmp_path / 'out')
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the holder, which forks a long-lived worker and dies
        locks.acquire(folder)
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
    assert in_other_process(_try_lock(folder)) == ('ok', True)


@pytest.mark.parametrize('env,outcome', [
    ({}, 'refused'),
    ({TOKEN_ENV: 'another-run'}, 'refused'),
    ({TOKEN_ENV: 'TOKEN'}, 'under the parent'),  # the orchestrator's children
    ({'DMLC_ROLE': 'server'}, 'unlocked'),  # parameter servers and the scheduler write nothing
    ({'DMLC_ROLE': 'scheduler'}, 'unlocked'),
    ({'DMLC_ROLE': 'worker', 'DMLC_TASK_ID': '1'}, 'unlocked'),  # workers but the first
    ({'DMLC_ROLE': 'worker', 'DMLC_TASK_ID': '0'}, 'refused'),
    ({'HOROVOD_RANK': '1'}, 'unlocked'),
    ({'HOROVOD_RANK': '0'}, 'refused'),
    ({'HOROVOD_RANK': '0', TOKEN_ENV: 'TOKEN'}, 'under the parent'),
])
def test_children_and_ranks_under_a_held_lock(tmp_path, env, outcome):
    folder = str(tmp_path / 'out')

    def child():
        lock = locks.acquire(folder)
        return 'under the parent' if lock.token else 'unlocked'
    with output_lock(folder) as lock:
        env = {k: lock.token if v == 'TOKEN' else v for k, v in env.items()}
        assert lock.child_env()[TOKEN_ENV] == lock.token
        kind, result = in_other_process(child, env)
        assert (result if kind == 'ok' else 'refused') == outcome, result


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    path = tmp_path / 'out' / 'metrics.json'
    path.parent.mkdir()
    path.write_text('earlier')

    def full(f):
        f.write(b'{"half' if 'b' in f.mode else '{"half')
        raise OSError(errno.ENOSPC, 'No space left on device')
    with pytest.raises(UserError, match=r'^disk full: no space left in %s \(\d+\.\d MB free\) '
                       r'writing metrics\.json, which needs about 2\.0 MB; free some space and '
                       r'rerun$' % path.parent):
        with atomic_path(str(path), needed=2e6) as tmp:
            with open(tmp, 'wb') as f:
                full(f)
    with pytest.raises(UserError, match='^disk full: no space left in %s' % path.parent):
        write_atomically(str(path), full)
    real_dump = json.dump
    monkeypatch.setattr(json, 'dump', lambda obj, f, **kw: (real_dump(obj, f), full(f)))
    with pytest.raises(UserError, match='^disk full'):
        write_json(str(path), {'a': 1})
    assert os.listdir(str(path.parent)) == ['metrics.json'] and path.read_text() == 'earlier'

    @cli_entry
    def main(argv=None):
        raise OSError(errno.ENOSPC, 'No space left on device', str(path))
    with pytest.raises(SystemExit) as stop:
        main([])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and len(err.splitlines()) == 1
    assert err.startswith('error: disk full: no space left in %s (' % path.parent)


def test_a_full_disk_inside_a_locked_run_names_the_output_folder(tmp_path):
    folder = str(tmp_path / 'out')
    with pytest.raises(UserError, match=r'^disk full: no space left in %s \(' % folder):
        with output_lock(folder):
            raise OSError(errno.ENOSPC, 'No space left on device')  # np.save names no file
    with pytest.raises(UserError, match=r'^disk full: no space left in %s \(' % folder):
        with output_lock(folder):
            raise RuntimeError('Check failed: std::fwrite(ptr, 1, size, fp_) == size: '
                               'FileStream.Write incomplete')  # MXNet's message
    assert in_other_process(_try_lock(folder)) == ('ok', True)  # released


def test_a_checkpoint_on_a_full_disk(tmp_path):
    """MXNet's own short write ('FileStream.Write incomplete') when the disk is full: the
    temporary file of util.weights.save_weights is made to point at /dev/full, where every
    write fails with ENOSPC."""
    import mxnet as mx
    import threading
    from util.weights import save_weights
    path = tmp_path / 'm_ep-0001.params'
    tmp = tmp_path / ('.%s.%d-%d.tmp' % (path.name, os.getpid(), threading.get_ident()))
    os.symlink('/dev/full', str(tmp))
    arrays = {'w': mx.nd.zeros((250, 1000))}  # 1 MB
    with pytest.raises(UserError, match=r'^disk full: no space left in %s \(.* free\) writing '
                       r'm_ep-0001\.params, which needs about 1\.0 MB' % tmp_path):
        save_weights(str(path), arrays, {})
    assert os.listdir(str(tmp_path)) == []


def test_an_output_folder_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / 'a-file').write_text('x')
    for folder in (tmp_path / 'a-file', tmp_path / 'a-file' / 'out'):
        with pytest.raises(UserError, match='cannot use %s as the output folder: it or a '
                                            'folder above it is a file' % folder):
            with output_lock(str(folder)):
                pass
