"""util.ps_launcher (run as `python -m issegm.launch`): local parameter-server jobs on 127.0.0.1
and ssh command lines."""
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import TimedLines, procs_mentioning
from issegm import launch as launch_cli
from util import ps_launcher as L
from util.worker_devices import read_hostfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DIST_SCRIPT = textwrap.dedent('''
    import os, sys
    print('before-import role=%s' % os.environ['DMLC_ROLE'], flush=True)
    import util  # first: util/__init__ prepares NumPy for MXNet (util/numpy_compat.py)
    import mxnet as mx
    # Servers and the scheduler never get here: `import mxnet` runs their loop and exits.
    print('after-import role=%s' % os.environ['DMLC_ROLE'], flush=True)
    kv = mx.kv.create('dist_sync')
    assert kv.type == 'dist_sync', kv.type
    assert kv.num_workers == 2, kv.num_workers
    assert kv.rank in (0, 1), kv.rank
    shape = (2, 3)
    kv.init(7, mx.nd.zeros(shape))
    kv.push(7, mx.nd.ones(shape) * (kv.rank + 1))
    out = mx.nd.zeros(shape)
    kv.pull(7, out=out)
    vals = sorted(set(out.asnumpy().ravel().tolist()))
    print('RESULT rank=%d num_workers=%d value=%s' % (kv.rank, kv.num_workers, vals), flush=True)
''')

FAIL_SCRIPT = textwrap.dedent('''
    import os, sys, time
    import util  # first: util/__init__ prepares NumPy for MXNet (util/numpy_compat.py)
    import mxnet as mx
    mode = sys.argv[1]
    first = os.environ['DMLC_TASK_ID'] == '0'
    if mode == 'before_kvstore' and first:
        sys.exit(3)
    if mode == 'uncaught_after_kvstore':
        from util.ps_launcher import install_fail_fast
        install_fail_fast(3)
    kv = mx.kv.create('dist_sync')
    if first:
        raise RuntimeError('worker 0 fails after creating the kvstore')
    kv.init(1, mx.nd.zeros((2,)))
    time.sleep(120)
''')



@pytest.mark.slow
def test_local_dist_sync_two_workers_two_servers(tmp_path):
    script = tmp_path / 'dist_job.py'
    script.write_text(DIST_SCRIPT)
    t0 = time.time()
    res = subprocess.run([sys.executable, '-m', 'issegm.launch', '-n', '2', '-s', '2', '--',
                          sys.executable, str(script)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=120)
    out = res.stdout.decode()
    elapsed = time.time() - t0
    assert res.returncode == 0, out
    lines = out.splitlines()
    results = [l for l in lines if 'RESULT' in l]
    assert len(results) == 2, out
    ranks = set()
    for line in results:
        m = re.match(r'^\[worker ([01])\] RESULT rank=(\d) num_workers=2 value=\[3\.0\]$', line)
        assert m, line
        ranks.add(int(m.group(2)))
    assert ranks == {0, 1}
    # Every role runs the same command; only workers get past `import mxnet`.
    for prefix, role in [('[scheduler]', 'scheduler'), ('[server 0]', 'server'),
                         ('[server 1]', 'server'), ('[worker 0]', 'worker'),
                         ('[worker 1]', 'worker')]:
        assert '%s before-import role=%s' % (prefix, role) in lines, out
    after = [l for l in lines if 'after-import' in l]
    assert sorted(after) == ['[worker 0] after-import role=worker',
                             '[worker 1] after-import role=worker'], out
    assert all(re.match(r'^\[(scheduler|server \d|worker \d|launch)\] ', l) for l in lines), out
    assert not procs_mentioning(str(tmp_path))
    print('dist_sync job took %.1fs' % elapsed)


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['before_kvstore', 'uncaught_after_kvstore'])
def test_failing_worker_kills_everything(tmp_path, mode):
    script = tmp_path / 'fail_job.py'
    script.write_text(FAIL_SCRIPT)
    buf = TimedLines()
    rc = L.launch([sys.executable, str(script), mode], L.Job(2, 2, env={'PYTHONPATH': REPO}),
                  timeout=120, out=buf)
    ended = time.time()
    out = buf.text()
    assert rc == 3, out
    # the others are stopped soon after worker 0 fails (timed from then: starting five
    # processes that import MXNet takes long on a busy machine)
    went_on = ended - buf.first('[launch] worker 0 exited with status 3')
    assert went_on < 30, (went_on, out)
    if mode == 'uncaught_after_kvstore':
        assert '[worker 0] RuntimeError: worker 0 fails after creating the kvstore' in out
    time.sleep(0.2)
    assert not procs_mentioning(str(tmp_path)), out


@pytest.mark.slow
def test_failure_status_of_signal_and_shell_command(tmp_path):
    # No mxnet here: a string command goes through /bin/sh; worker 1 dies by SIGKILL.
    buf = io.StringIO()
    cmd = ('echo "$DMLC_ROLE $DMLC_TASK_ID $DMLC_NUM_WORKER $DMLC_NUM_SERVER"; '
           'if [ "$DMLC_ROLE" = worker ] && [ "$DMLC_TASK_ID" = 1 ]; then kill -9 $$; fi; '
           'sleep 30 # %s' % tmp_path)
    t0 = time.time()
    rc = L.launch(cmd, L.Job(2, 1), timeout=20, out=buf)
    assert rc == 128 + 9, buf.getvalue()
    assert time.time() - t0 < 15
    assert '[worker 1] worker 1 2 1' in buf.getvalue()
    time.sleep(0.2)
    assert not procs_mentioning(str(tmp_path))


def test_local_tasks_env():
    tasks = L.build_local_tasks(['python', 'x.py'], 3, port=12345, env={'FOO': 'bar'})
    assert [t.name for t in tasks] == ['scheduler', 'server 0', 'server 1', 'server 2',
                                       'worker 0', 'worker 1', 'worker 2']
    for t in tasks:
        assert t.argv == ['python', 'x.py'] and t.host is None
        assert t.env['DMLC_PS_ROOT_URI'] == '127.0.0.1'
        assert t.env['DMLC_NODE_HOST'] == '127.0.0.1'
        assert t.env['DMLC_PS_ROOT_PORT'] == '12345'
        assert t.env['DMLC_NUM_WORKER'] == '3' and t.env['DMLC_NUM_SERVER'] == '3'
        assert t.env['DMLC_ROLE'] == t.role and t.env['FOO'] == 'bar'
    port = L.find_free_port()
    assert 0 < port < 65536
    with pytest.raises(ValueError):
        L.build_local_tasks(['x'], 1, 0)


def _parse_remote(argv):
    assert argv[:3] == ['ssh', '-o', 'StrictHostKeyChecking=no']
    words = shlex.split(argv[4])
    assert words[0] == 'cd' and words[2:4] == ['&&', 'env']
    env, i = {}, 4
    while '=' in words[i] and re.match(r'^[A-Z_]+=', words[i]):
        k, v = words[i].split('=', 1)
        env[k] = v
        i += 1
    return argv[3], words[1], env, words[i:]


def test_ssh_commands(tmp_path, monkeypatch):
    def no_popen(*a, **k):
        raise AssertionError('must not start processes')
    monkeypatch.setattr(subprocess, 'Popen', no_popen)

    hostfile = tmp_path / 'hosts'
    hostfile.write_text('# cluster\nnode-a\n\n  node-b   # second\n10.0.0.3\n')
    hosts = read_hostfile(str(hostfile))
    assert hosts == ['node-a', 'node-b', '10.0.0.3']

    command = ['python', 'train.py', '--note', "it's a test", '--lr', '0.1']
    job = L.Job(5, 2, 'ssh', hosts=hosts, root_uri='10.0.0.1', port=9000,
                env={'OMP_NUM_THREADS': '2'})
    tasks = L.build_ssh_commands(command, job, cwd='/shared/my dir')
    assert [t.name for t in tasks] == ['scheduler', 'server 0', 'server 1'] + \
        ['worker %d' % i for i in range(5)]
    sched = tasks[0]
    assert sched.host is None and sched.argv == command
    assert sched.env['DMLC_ROLE'] == 'scheduler' and sched.env['DMLC_PS_ROOT_URI'] == '10.0.0.1'
    expected_hosts = ['node-a', 'node-b', 'node-a', 'node-b', '10.0.0.3', 'node-a', 'node-b']
    for t, want_host in zip(tasks[1:], expected_hosts):
        host, cwd, env, cmd = _parse_remote(t.argv)
        assert host == want_host == t.host
        assert cwd == '/shared/my dir'
        assert cmd == command
        assert env == t.env
        assert env['DMLC_ROLE'] == t.role and env['DMLC_TASK_ID'] == str(t.index)
        assert env['DMLC_PS_ROOT_URI'] == '10.0.0.1' and env['DMLC_PS_ROOT_PORT'] == '9000'
        assert env['DMLC_NUM_WORKER'] == '5' and env['DMLC_NUM_SERVER'] == '2'
        assert env['DMLC_NODE_HOST'] == want_host
        assert env['OMP_NUM_THREADS'] == '2'

    # Scheduler on the first host; shell-string command used verbatim; servers default to workers.
    job = L.Job(2, launcher='ssh', hosts=['h1', 'h2'], port=9001, scheduler_on='first-host')
    tasks = L.build_ssh_commands('python train.py > log.txt', job, cwd='/w')
    assert [(t.name, t.host) for t in tasks] == [
        ('scheduler', 'h1'), ('server 0', 'h1'), ('server 1', 'h2'),
        ('worker 0', 'h1'), ('worker 1', 'h2')]
    for t in tasks:
        assert t.argv[4].startswith('cd /w && env ')
        assert t.argv[4].endswith(' python train.py > log.txt')
        assert t.env['DMLC_PS_ROOT_URI'] == 'h1'
    with pytest.raises(ValueError):
        L.build_ssh_commands(['x'], L.Job(1, launcher='ssh', hosts=[], root_uri='h'))


def test_cli_errors():
    with pytest.raises(SystemExit):
        launch_cli.main(['-n', '2'])
    with pytest.raises(SystemExit):
        launch_cli.main(['-n', '2', '--launcher', 'ssh', '--', 'true'])
