"""Placing the workers of a job on hosts and devices: the host file, a worker's index among
those of its host (HOST_WORKER_ENV), the equal share of --gpus each takes, and the
orchestrator's checks of --gpus against --workers. No MXNet (util.devices makes the contexts).
"""
import os

from util.errors import UserError
from util.flags import parse_gpus

__all__ = ['HOST_WORKER_ENV', 'read_hostfile', 'host_worker', 'gpu_share',
           'check_worker_devices', 'devices_per_worker']

# 'INDEX/COUNT' of a worker among the workers of a job on one host (util.ps_launcher.build_local_tasks sets it):
# they split the GPUs of --gpus, each its own share (gpu_share), as Horovod's local ranks do.
HOST_WORKER_ENV = 'CBST_HOST_WORKER'


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


def host_worker(env=None):
    """(index, count) of this process among the workers of a job on this host, from
    HOST_WORKER_ENV; (0, 1) outside such a job."""
    text = (os.environ if env is None else env).get(HOST_WORKER_ENV, '')
    index, _, count = text.partition('/')
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        return 0, 1
    return int(index), int(count)


def gpu_share(spec, ids, index, count):
    """The GPU ids of worker `index` of `count` workers on one host: an equal, disjoint share
    of `ids` (from `--gpus spec`) in order, e.g. 0,1,2,3 over 2 workers: 0,1 and 2,3. A
    UserError when the ids do not split equally (uneven shares would give the workers
    different rescale_grad and batch splits)."""
    if len(ids) % count:
        raise UserError('--gpus %s lists %d GPU(s), which %d workers on one host cannot share '
                        'equally (each takes its own GPUs): give a multiple of %d ids, e.g. '
                        '--gpus %s' % (spec, len(ids), count, count,
                                       ','.join(map(str, range(count)))))
    size = len(ids) // count
    return list(ids[index * size:(index + 1) * size])


def _hosts(hostfile):
    try:
        return read_hostfile(hostfile)
    except ValueError as e:
        raise UserError(str(e))


def check_worker_devices(gpus, workers, launcher, hostfile):
    """--gpus against --workers, before anything runs: a bad value; GPUs that the workers of
    one host cannot share equally (--launcher local: each worker takes its own share, see
    gpu_share); more ssh workers than hosts, which would share a host's GPUs."""
    kind, ids = parse_gpus(gpus)
    if workers < 2 or kind != 'gpu':
        return
    if launcher == 'local':
        gpu_share(gpus, ids, 0, workers)
    elif launcher == 'ssh' and workers > len(_hosts(hostfile)):
        raise UserError('--workers %d with --launcher ssh and --gpus %s: %s lists fewer hosts, '
                        'and workers placed on one host would all train on its GPUs; give one '
                        'host per worker' % (workers, gpus, hostfile))


def devices_per_worker(gpus, workers, launcher):
    """The number of devices each worker of a training job uses: one per Horovod rank, an
    equal share of the GPUs for the local launcher's workers (the CPU contexts are not split),
    else all of --gpus."""
    kind, ids = parse_gpus(gpus)
    if workers > 1 and launcher == 'horovod':
        return 1
    if workers > 1 and launcher == 'local' and kind == 'gpu':
        return len(ids) // workers
    return len(ids)
