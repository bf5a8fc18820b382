"""Launch a distributed MXNet job (parameter server: scheduler + servers + workers):
`python -m issegm.launch -n WORKERS ... -- COMMAND`. The launcher itself is util/ps_launcher.py;
docs/internals.md, "The parameter-server launcher", says how it starts the processes.
"""
import argparse
import os
import signal
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds util
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.ps_launcher import LAUNCHERS, SCHEDULER_PLACES, Job, launch  # noqa: E402


def _parse_env(items):
    env = {}
    for item in items:
        if '=' in item:
            k, v = item.split('=', 1)
            env[k] = v
        elif item in os.environ:
            env[item] = os.environ[item]
    return env


def parse_args(argv):
    """The launcher's flags; command_of(args) is the COMMAND every process runs."""
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
    if not command_of(args):
        parser.error('no COMMAND given (put it after --)')
    if args.launcher == 'ssh' and not args.hostfile:
        parser.error('--launcher ssh needs -H HOSTFILE')
    return args


def command_of(args):
    """The command after `--`."""
    command = list(args.command)
    return command[1:] if command and command[0] == '--' else command


def main(argv=None):
    args = parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    # Also when started with SIGINT ignored (e.g. a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        job = Job(args.num_workers, args.num_servers, args.launcher, hostfile=args.hostfile,
                  port=args.port, root_uri=args.root_uri, scheduler_on=args.scheduler_on,
                  env=_parse_env(args.env))
        return launch(command_of(args), job, timeout=args.timeout)
    except KeyboardInterrupt:
        sys.stderr.write('[launch] interrupted; all processes killed\n')
        return 130


if __name__ == '__main__':
    sys.exit(main())
