"""One phase of one CBST round, the command line of issegm/phase_val.py (`--phase val`) and
issegm/phase_train.py (`--phase train`): flags and checks (issegm/round_settings.py), the
output folder's lock, dispatch. Wrapped by issegm/self-paced-self-trained-segresnet.py and
solve_ST.py (yzou2/CBST's two names).
"""
import logging
import sys

from issegm.round_settings import check_round_args as check_args
from issegm.round_settings import parse_round_args as parse_args
from util.errors import cli_entry
from util.flags import set_mxnet_switches
from util.locks import output_lock
from util.logs import setup_logging

__all__ = ['parse_args', 'check_args', 'main']

log = logging.getLogger('cbst')


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    settings = check_args(args, argv)
    # Environment switches before MXNet is imported (it reads them then, or at graph building).
    set_mxnet_switches(args.backward_do_mirror, args.no_cudnn, args.debug, args.deterministic)
    # Under the orchestrator its lock covers this process (util/locks.py, TOKEN_ENV); run by
    # hand, a phase locks the folder itself.
    with output_lock(args.output) as lock:
        setup_logging(settings.round.log_file, debug=args.debug)
        if lock.takeover:
            log.warning('%s', lock.takeover)
        if args.phase == 'val':
            from issegm import phase_val  # these import MXNet: after the flags
            phase_val.run(settings)
        else:
            from issegm import phase_train
            phase_train.run(settings)
    return 0


if __name__ == '__main__':
    sys.exit(main())
