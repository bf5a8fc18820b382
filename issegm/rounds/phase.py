"""One phase of one CBST round, the command line of issegm/rounds/phase_val.py (`--phase val`)
and issegm/rounds/phase_train.py (`--phase train`): flags and checks
(issegm/rounds/phase_settings.py), the output folder's lock, dispatch. Wrapped by
issegm/self-paced-self-trained-segresnet.py and solve_ST.py (yzou2/CBST's two names).
"""
import logging
import sys

from issegm.rounds.phase_settings import parse_round_args as parse_args
from issegm.rounds.phase_settings import settings_of
from util.errors import cli_entry
from util.flags import set_mxnet_switches
from util.locks import output_lock
from util.logs import setup_logging

__all__ = ['parse_args', 'check_args', 'main']

log = logging.getLogger('cbst')


def check_args(args, argv=()):
    """The checked settings of the parsed flags (issegm.rounds.phase_settings.settings_of)."""
    return settings_of(vars(args), argv)


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = check_args(parse_args(argv), argv)
    # Environment switches before MXNet is imported (it reads them then, or at graph building).
    rnd = settings.round
    set_mxnet_switches(rnd.backward_do_mirror, rnd.no_cudnn, rnd.debug, rnd.deterministic)
    from util.devices import parse_devices  # imports MXNet: after the flags
    # a bad --gpus stops before the output folder and its lock (a Horovod rank of phase train
    # keeps one device of --gpus: --debug is checked on that one)
    horovod_rank = rnd.phase == 'train' and settings.kvstore == 'horovod'
    parse_devices(rnd.gpus, rnd.debug and not horovod_rank)
    # Under the orchestrator its lock covers this process (util/locks.py, TOKEN_ENV); run by
    # hand, a phase locks the folder itself.
    with output_lock(rnd.output) as lock:
        setup_logging(rnd.log_file, debug=rnd.debug)
        if lock.takeover:
            log.warning('%s', lock.takeover)
        if rnd.phase == 'val':
            from issegm.rounds import phase_val  # these import MXNet: after the flags
            phase_val.run(settings)
        else:
            from issegm.rounds import phase_train
            phase_train.run(settings)
    return 0


if __name__ == '__main__':
    sys.exit(main())
