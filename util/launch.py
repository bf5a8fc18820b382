"""Launch a distributed MXNet job (parameter server: scheduler + servers + workers).

A self-contained replacement for MXNet's ``tools/launch.py``, which needs the
unpublished ``dmlc_tracker`` package.

Run as ``python -m issegm.launch -n WORKERS ... -- COMMAND`` (see ``--help`` and the
README, "Scaling out").

How MXNet 1.9 starts its servers and scheduler
----------------------------------------------
Every role runs the *same* COMMAND; only ``DMLC_ROLE`` differs.
``mxnet/kvstore/kvstore_server.py`` runs ``_init_kvstore_server_module()`` on
``import mxnet``: when ps-lite says this node is not a worker (``DMLC_ROLE`` is
``server`` or ``scheduler``) it creates a ``'dist'`` kvstore, runs the server
loop (``MXKVStoreRunServer``) and then calls ``sys.exit()``.  So for
non-worker roles nothing after ``import mxnet`` in the user's script ever runs,
and these processes exit 0 on their own once every worker has finalized its
kvstore (the worker's kvstore is finalized when it is freed or at exit).
Anything the script does *before* ``import mxnet`` (argument parsing, ...) is
run by every role.  ps-lite reads: ``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT`` (the scheduler's address), ``DMLC_NUM_SERVER``,
``DMLC_NUM_WORKER``, and optionally ``DMLC_NODE_HOST`` (address this node
advertises; otherwise the first non-loopback interface or ``DMLC_INTERFACE``)
and ``PS_VERBOSE`` (1/2: ps-lite logging).  Server and worker ports are chosen
by ps-lite itself; only the scheduler port is fixed by the launcher.

The kvstore rank (``kv.rank``) is assigned by the scheduler in order of
registration, so it need not equal the launcher's index.  The launcher's index
is shown in the output prefix (``[worker 0] ...``, ``[server 1] ...``,
``[scheduler] ...``) and exported as ``DMLC_TASK_ID`` (per-role index).

Local launcher: all processes on this machine, scheduler on 127.0.0.1 at a free
port (``--port`` to force one), ``DMLC_NODE_HOST=127.0.0.1`` so everything stays
on the loopback interface.  Each process gets its own process group; the
launcher kills the groups on failure, on Ctrl-C, and after the workers are done.

SSH launcher: ``-H HOSTFILE`` lists one host per line (``#`` starts a comment).
Workers and servers are placed round-robin over the hosts (worker i on
``hosts[i % len(hosts)]``, server j on ``hosts[j % len(hosts)]``), each started
with ``ssh -o StrictHostKeyChecking=no HOST 'cd CWD && env DMLC_...=... COMMAND'``
(CWD = the launcher's current directory, which must exist on every host, e.g. a
shared file system).  By default the scheduler, like dmlc_tracker's, runs on the
launching machine and ``DMLC_PS_ROOT_URI`` is this machine's address *as seen by
the hosts* (the local address of the route to the first host; override with
``--root-uri``).  With ``--scheduler-on first-host`` the scheduler is started
over ssh on the first host instead and ``DMLC_PS_ROOT_URI`` is that host.
``DMLC_NODE_HOST`` is set to the host name of each remote process.  Killing the
local ssh client does not always kill the remote process: use MXNet's
``tools/kill-mxnet.py HOSTFILE`` to clean up after an interrupted ssh job.

Exit status: 0 when every worker exits 0 (servers/scheduler still running then
get a short grace period and are then killed).  When any process fails (non-zero
status; a server/scheduler failing after all workers succeeded is only
reported), all others are killed and the failing process's status is returned
(128+N for death by signal N).  Ctrl-C kills everything (exit status 130).
Caveat (verified with MXNet 1.9.1): a worker that dies from an uncaught Python
exception *after* creating a dist kvstore does not exit: the kvstore's
destructor blocks in ps-lite's finalize barrier waiting for the other workers,
so the launcher cannot see the failure.  Call :func:`install_fail_fast` in the
worker script (uncaught exception -> traceback, then ``os._exit(1)``), exit with
``os._exit`` yourself, or bound the job with ``timeout`` / ``--timeout``.

In-process API: :func:`launch` (returns the exit status), :func:`build_ssh_commands`,
:func:`read_hostfile`, :func:`dmlc_env`.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ['launch', 'build_ssh_commands', 'build_local_tasks', 'run_tasks', 'read_hostfile',
           'dmlc_env', 'find_free_port', 'install_fail_fast', 'Task', 'main']

LAUNCHERS = ('local', 'ssh')
SCHEDULER_PLACES = ('local', 'first-host')  # ssh: where the scheduler runs
SSH_BASE = ('ssh', '-o', 'StrictHostKeyChecking=no')
SERVER_GRACE = 10.0   # seconds servers/scheduler may take to exit after the workers
KILL_GRACE = 3.0      # seconds between SIGTERM and SIGKILL


class Task(object):
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


def read_hostfile(path):
    """Hosts from a host file: one per line, '#' starts a comment, blank lines ignored."""
    hosts = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                hosts.append(line)
    if not hosts:
        raise ValueError('no hosts in host file %s' % path)
    return hosts


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
            tasks.append(Task(role, i, list(argv), e))
    return tasks


def build_ssh_commands(command, num_workers, num_servers=None, hosts=(), root_uri=None,
                       port=None, cwd=None, env=None, scheduler_on='local', ssh=SSH_BASE):
    """Tasks for an ssh job; does not contact any host.

    command: list (quoted with shlex) or a shell string (used verbatim).
    hosts: host names/addresses; workers and servers are placed round-robin.
    root_uri: the scheduler address the hosts connect to.  Default: for
    scheduler_on='local', this machine's address towards hosts[0]; for
    'first-host', hosts[0].  port: the scheduler port (default: a port free on this
    machine, which for 'first-host' is only a guess: pass port explicitly there).
    cwd: remote working directory (default os.getcwd()).  env: extra variables
    exported to every remote process.  A local scheduler task has host=None and
    runs the command directly; remote tasks have argv ssh ... HOST 'cd CWD && env ... CMD'.
    """
    num_workers, num_servers = _check_counts(num_workers, num_servers)
    hosts = list(hosts)
    if not hosts:
        raise ValueError('ssh launcher needs at least one host')
    if scheduler_on not in SCHEDULER_PLACES:
        raise ValueError('scheduler_on must be one of %s' % (SCHEDULER_PLACES,))
    if root_uri is None:
        root_uri = local_address_towards(hosts[0]) if scheduler_on == 'local' else hosts[0]
    port = port or find_free_port('')
    cwd = os.getcwd() if cwd is None else cwd
    cmd = _command_string(command)
    extra = {'PYTHONUNBUFFERED': '1'}
    extra.update(env or {})

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


class _Runner(object):
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


def launch(command, num_workers, num_servers=None, launcher='local', hostfile=None, env=None,
           port=None, timeout=None, hosts=None, root_uri=None, scheduler_on='local', out=None):
    """Run ``command`` as a distributed MXNet job and return the exit status.

    command: argv list (run without a shell) or a shell string.  num_servers defaults
    to num_workers.  launcher: 'local' or 'ssh' (needs hostfile or hosts).  env: extra
    environment variables for every process.  port: scheduler port (default: free
    port).  timeout: seconds before everything is killed (status 124).  root_uri /
    scheduler_on: ssh only, see build_ssh_commands.  out: text stream receiving the
    prefixed output (default sys.stdout).  Ctrl-C kills all processes and re-raises.
    """
    if launcher == 'local':
        tasks = build_local_tasks(command, num_workers, num_servers, port=port, env=env)
    elif launcher == 'ssh':
        if hosts is None:
            if hostfile is None:
                raise ValueError('ssh launcher needs a hostfile')
            hosts = read_hostfile(hostfile)
        tasks = build_ssh_commands(command, num_workers, num_servers, hosts=hosts,
                                   root_uri=root_uri, port=port, env=env,
                                   scheduler_on=scheduler_on)
    else:
        raise ValueError('unknown launcher %r' % launcher)
    return run_tasks(tasks, timeout=timeout, out=out)


def _parse_env(items):
    env = {}
    for item in items:
        if '=' in item:
            k, v = item.split('=', 1)
            env[k] = v
        elif item in os.environ:
            env[item] = os.environ[item]
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Launch a distributed MXNet (parameter server) job.',
        usage='%(prog)s -n WORKERS [-s SERVERS] [--launcher local|ssh] [-H HOSTFILE] '
              '[--port PORT] -- COMMAND ...')
    parser.add_argument('-n', '--num-workers', type=int, required=True)
    parser.add_argument('-s', '--num-servers', type=int, default=None,
                        help='default: NUM_WORKERS')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='local')
    parser.add_argument('-H', '--hostfile', default=None,
                        help='ssh: one host per line, # comments')
    parser.add_argument('--port', type=int, default=None, help='scheduler port (default: free)')
    parser.add_argument('--env', action='append', default=[], metavar='KEY[=VAL]',
                        help='extra environment for all processes (KEY alone: pass on '
                             'the current value); repeatable')
    parser.add_argument('--timeout', type=float, default=None,
                        help='kill everything after this many seconds (status 124)')
    parser.add_argument('--root-uri', default=None,
                        help='ssh: scheduler address as seen by the hosts')
    parser.add_argument('--scheduler-on', choices=SCHEDULER_PLACES, default='local',
                        help='ssh: where the scheduler runs')
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == '--':
        command = command[1:]
    if not command:
        parser.error('no COMMAND given (put it after --)')
    if args.launcher == 'ssh' and not args.hostfile:
        parser.error('--launcher ssh needs -H HOSTFILE')

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    # Also when started with SIGINT ignored (e.g. a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return launch(command, args.num_workers, args.num_servers, launcher=args.launcher,
                      hostfile=args.hostfile, env=_parse_env(args.env), port=args.port,
                      timeout=args.timeout, root_uri=args.root_uri,
                      scheduler_on=args.scheduler_on)
    except KeyboardInterrupt:
        sys.stderr.write('[launch] interrupted; all processes killed\n')
        return 130


if __name__ == '__main__':
    sys.exit(main())
