"""Launch a distributed MXNet job (parameter server: scheduler + servers + workers), a
self-contained replacement for MXNet's tools/launch.py: `launch(command, Job(...))`. The command
line is issegm/launch.py (`python -m issegm.launch`); how the processes start, fail and end:
docs/internals.md, section 5.
"""
import dataclasses
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Optional

from util.worker_devices import HOST_WORKER_ENV, read_hostfile

__all__ = ['Job', 'launch', 'build_ssh_commands', 'build_local_tasks', 'run_tasks',
           'dmlc_env', 'find_free_port', 'install_fail_fast', 'Task']

LAUNCHERS = ('local', 'ssh')
SCHEDULER_PLACES = ('local', 'first-host')  # ssh: where the scheduler runs
SSH_BASE = ('ssh', '-o', 'StrictHostKeyChecking=no')
SERVER_GRACE = 10.0   # seconds servers/scheduler may take to exit after the workers
KILL_GRACE = 3.0      # seconds between SIGTERM and SIGKILL


@dataclasses.dataclass(frozen=True)
class Job:
    """A parameter-server job: `num_workers` workers and `num_servers` servers (None: as many as
    workers), started by `launcher` ('local', or 'ssh' on `hosts` or those of `hostfile`); the
    scheduler listens at `port` (None: a free one) and, with ssh, runs on `scheduler_on`'s
    machine at `root_uri` (see build_ssh_commands); `env`: extra variables of every process."""
    num_workers: int
    num_servers: Optional[int] = None
    launcher: str = 'local'
    hostfile: Optional[str] = None
    hosts: Optional[tuple] = None
    port: Optional[int] = None
    root_uri: Optional[str] = None
    scheduler_on: str = 'local'
    env: Optional[dict] = None


class Task:
    """One process of the job: role ('scheduler'|'server'|'worker'), per-role index,
    host (None = local), argv (list, run without a shell) and env (the DMLC/extra
    variables for this process; for local tasks merged over os.environ)."""

    def __init__(self, role, index, argv, env, host=None):
        self.role = role
        self.index = index
        self.argv = argv
        self.env = env
        self.host = host

    @property
    def name(self):
        return self.role if self.role == 'scheduler' else '%s %d' % (self.role, self.index)

    def __repr__(self):
        return 'Task(%r, %r, host=%r, argv=%r)' % (self.role, self.index, self.host, self.argv)


def find_free_port(host='127.0.0.1'):
    """A TCP port that is currently free on ``host``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def local_address_towards(host):
    """This machine's address on the route to ``host`` (UDP connect sends no packet)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host, 9))
        return s.getsockname()[0]
    except OSError:
        return socket.gethostbyname(socket.gethostname())
    finally:
        s.close()


def dmlc_env(role, root_uri, root_port, num_workers, num_servers, index=0, node_host=None):
    """The DMLC_* variables ps-lite (MXNet 1.9) needs for one process."""
    if role not in ('scheduler', 'server', 'worker'):
        raise ValueError('bad role %r' % role)
    env = {
        'DMLC_ROLE': role,
        'DMLC_PS_ROOT_URI': str(root_uri),
        'DMLC_PS_ROOT_PORT': str(root_port),
        'DMLC_NUM_SERVER': str(num_servers),
        'DMLC_NUM_WORKER': str(num_workers),
        'DMLC_TASK_ID': str(index),
    }
    if node_host:
        env['DMLC_NODE_HOST'] = str(node_host)
    return env


def _command_string(command):
    return command if isinstance(command, str) else ' '.join(shlex.quote(str(c)) for c in command)


def _command_argv(command):
    return ['/bin/sh', '-c', command] if isinstance(command, str) else [str(c) for c in command]


def _check_counts(num_workers, num_servers):
    num_servers = num_workers if num_servers is None else num_servers
    if int(num_workers) < 1 or int(num_servers) < 1:
        raise ValueError('need at least one worker and one server (got %s, %s)'
                         % (num_workers, num_servers))
    return int(num_workers), int(num_servers)


def build_local_tasks(command, num_workers, num_servers=None, port=None, env=None,
                      host='127.0.0.1'):
    """Tasks for a job on this machine (scheduler first, then servers, then workers)."""
    num_workers, num_servers = _check_counts(num_workers, num_servers)
    port = port or find_free_port(host)
    argv = _command_argv(command)
    tasks = []
    roles = [('scheduler', 1), ('server', num_servers), ('worker', num_workers)]
    for role, n in roles:
        for i in range(n):
            e = {'PYTHONUNBUFFERED': '1'}
            e.update(env or {})
            e.update(dmlc_env(role, host, port, num_workers, num_servers, i, node_host=host))
            if role == 'worker':
                e[HOST_WORKER_ENV] = '%d/%d' % (i, num_workers)
            tasks.append(Task(role, i, list(argv), e))
    return tasks


def build_ssh_commands(command, job, cwd=None, ssh=SSH_BASE):
    """Tasks for an ssh Job; does not contact any host.

    command: list (quoted with shlex) or a shell string (used verbatim).
    job.hosts: host names/addresses; workers and servers are placed round-robin.
    job.root_uri: the scheduler address the hosts connect to.  Default: for
    scheduler_on='local', this machine's address towards hosts[0]; for
    'first-host', hosts[0].  job.port: the scheduler port (default: a port free on this
    machine, which for 'first-host' is only a guess: pass port explicitly there).
    cwd: remote working directory (default os.getcwd()).  job.env: extra variables
    exported to every remote process.  A local scheduler task has host=None and
    runs the command directly; remote tasks have argv ssh ... HOST 'cd CWD && env ... CMD'.
    """
    num_workers, num_servers = _check_counts(job.num_workers, job.num_servers)
    hosts, root_uri, scheduler_on = list(job.hosts or ()), job.root_uri, job.scheduler_on
    if not hosts:
        raise ValueError('ssh launcher needs at least one host')
    if scheduler_on not in SCHEDULER_PLACES:
        raise ValueError('scheduler_on must be one of %s' % (SCHEDULER_PLACES,))
    if root_uri is None:
        root_uri = local_address_towards(hosts[0]) if scheduler_on == 'local' else hosts[0]
    port = job.port or find_free_port('')
    cwd = os.getcwd() if cwd is None else cwd
    cmd = _command_string(command)
    extra = {'PYTHONUNBUFFERED': '1'}
    extra.update(job.env or {})

    def remote(role, index, host):
        e = dict(extra)
        e.update(dmlc_env(role, root_uri, port, num_workers, num_servers, index, node_host=host))
        assigns = ' '.join('%s=%s' % (k, shlex.quote(str(v))) for k, v in e.items())
        line = 'cd %s && env %s %s' % (shlex.quote(cwd), assigns, cmd)
        return Task(role, index, list(ssh) + [host, line], e, host=host)

    tasks = []
    if scheduler_on == 'local':
        e = dict(extra)
        e.update(dmlc_env('scheduler', root_uri, port, num_workers, num_servers, 0))
        tasks.append(Task('scheduler', 0, _command_argv(command), e))
    else:
        tasks.append(remote('scheduler', 0, hosts[0]))
    for i in range(num_servers):
        tasks.append(remote('server', i, hosts[i % len(hosts)]))
    for i in range(num_workers):
        tasks.append(remote('worker', i, hosts[i % len(hosts)]))
    return tasks


def install_fail_fast(status=1):
    """For worker scripts: on an uncaught exception print the traceback and leave with
    os._exit(status), skipping the kvstore finalize barrier that would otherwise hang."""
    def hook(exc_type, exc, tb):
        sys.__excepthook__(exc_type, exc, tb)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)
    sys.excepthook = hook


def _exit_status(returncode):
    return 128 - returncode if returncode < 0 else returncode


class _Runner:
    """Starts tasks, prefixes their output, supervises and cleans up."""

    def __init__(self, tasks, out=None):
        self.tasks = tasks
        self.out = out if out is not None else sys.stdout
        self.lock = threading.Lock()
        self.procs = []
        self.threads = []

    def emit(self, text):
        with self.lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (ValueError, OSError):
                pass

    def _pump(self, prefix, pipe):
        try:
            for raw in iter(pipe.readline, b''):
                line = raw.decode('utf-8', 'replace').rstrip('\r\n')
                self.emit('%s %s\n' % (prefix, line))
        except (ValueError, OSError):
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    def start(self):
        for t in self.tasks:
            env = dict(os.environ)
            env.update(t.env)
            p = subprocess.Popen(t.argv, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            self.procs.append(p)
            th = threading.Thread(target=self._pump, args=('[%s]' % t.name, p.stdout),
                                  daemon=True)
            th.start()
            self.threads.append(th)

    def kill_all(self):
        alive = [p for p in self.procs if p.poll() is None]
        for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
            for p in alive:
                try:
                    os.killpg(p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.time() + grace
            while alive and time.time() < deadline:
                alive = [p for p in alive if p.poll() is None]
                if alive:
                    time.sleep(0.05)
            if not alive:
                break
        # Process groups may outlive their leader (e.g. a shell's children).
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def join_output(self, timeout=2.0):
        deadline = time.time() + timeout
        for th in self.threads:
            th.join(max(0.0, deadline - time.time()))

    def supervise(self, timeout=None, poll=0.05):
        """Wait for the job; returns the exit status (does not clean up)."""
        workers = [(t, p) for t, p in zip(self.tasks, self.procs) if t.role == 'worker']
        others = [(t, p) for t, p in zip(self.tasks, self.procs) if t.role != 'worker']
        deadline = None if timeout is None else time.time() + timeout
        while True:
            for t, p in workers + others:
                rc = p.poll()
                if rc is not None and rc != 0:
                    self.emit('[launch] %s exited with status %d; stopping all processes\n'
                              % (t.name, _exit_status(rc)))
                    return _exit_status(rc)
            if all(p.poll() == 0 for _, p in workers):
                break
            if deadline is not None and time.time() > deadline:
                self.emit('[launch] timeout after %gs; stopping all processes\n' % timeout)
                return 124
            time.sleep(poll)
        grace_end = time.time() + SERVER_GRACE
        while time.time() < grace_end and any(p.poll() is None for _, p in others):
            time.sleep(poll)
        for t, p in others:
            rc = p.poll()
            if rc is None:
                self.emit('[launch] %s still running after the workers finished; killing it\n'
                          % t.name)
            elif rc != 0:
                self.emit('[launch] warning: %s exited with status %d after the workers '
                          'finished\n' % (t.name, _exit_status(rc)))
        return 0


def run_tasks(tasks, timeout=None, out=None):
    """Run prepared tasks (see build_local_tasks/build_ssh_commands); returns the exit status.
    KeyboardInterrupt (and any other exception) kills all processes and is re-raised."""
    runner = _Runner(tasks, out=out)
    try:
        runner.start()
        return runner.supervise(timeout=timeout)
    finally:
        runner.kill_all()
        runner.join_output()


def launch(command, job, timeout=None, out=None):
    """Run ``command`` as the distributed MXNet Job `job` and return the exit status.

    command: argv list (run without a shell) or a shell string.  job.launcher 'ssh' needs
    job.hostfile or job.hosts.  timeout: seconds before everything is killed (status 124).
    out: text stream receiving the prefixed output (default sys.stdout).  Ctrl-C kills all
    processes and re-raises.
    """
    if job.launcher == 'local':
        tasks = build_local_tasks(command, job.num_workers, job.num_servers, port=job.port,
                                  env=job.env)
    elif job.launcher == 'ssh':
        if job.hosts is None:
            if job.hostfile is None:
                raise ValueError('ssh launcher needs a hostfile')
            job = dataclasses.replace(job, hosts=tuple(read_hostfile(job.hostfile)))
        tasks = build_ssh_commands(command, job)
    else:
        raise ValueError('unknown launcher %r' % job.launcher)
    return run_tasks(tasks, timeout=timeout, out=out)
