"""Horovod's `horovodrun` (same flags), with the NumPy names MXNet reads restored first.

Plain horovodrun checks that Horovod was built with Gloo by importing horovod.mxnet, hence
MXNet, which fails on NumPy 1.24+ (Python 3.12, 3.13) without util/numpy_compat.py; this one
runs on every supported Python: `python issegm/horovodrun.py -np 2 -H localhost:2 python ...`.
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.errors import UserError, cli_entry  # noqa: E402  (util/__init__: the NumPy names)
from util.flags import HOROVOD_INSTALL_HINT  # noqa: E402


@cli_entry
def main(argv=None):
    """Run horovodrun's command line (`argv`, default sys.argv[1:]) in this process."""
    try:
        from horovod.runner.launch import run_commandline  # Horovod's, only when it runs
    except ImportError:
        raise UserError('horovodrun: Horovod is not installed. ' + HOROVOD_INSTALL_HINT) from None
    if argv is not None:
        sys.argv = ['horovodrun'] + list(argv)
    return run_commandline()


if __name__ == '__main__':
    sys.exit(main())
