"""`--gpus` values: `cpu` (or `cpu:N` for N CPU contexts, to test data parallelism) or `0,1,...`."""
import mxnet as mx

from util.errors import UserError


def parse_devices(spec):
    """Turn a `--gpus` value into a list of MXNet contexts, checking that the GPUs exist."""
    spec = (spec or '').strip()
    if spec.startswith('cpu'):
        count = spec[len('cpu'):]
        if count == '':
            return [mx.cpu()]
        if count.startswith(':') and count[1:].isdigit() and int(count[1:]) > 0:
            return [mx.cpu(i) for i in range(int(count[1:]))]
        raise UserError('bad --gpus value %r: use cpu, cpu:N or a comma list of GPU ids' % spec)
    try:
        ids = [int(x) for x in spec.split(',') if x.strip() != '']
    except ValueError:
        raise UserError('bad --gpus value %r: use cpu, cpu:N or a comma list of GPU ids' % spec)
    if not ids or min(ids) < 0:
        raise UserError('bad --gpus value %r: use cpu, cpu:N or a comma list of GPU ids' % spec)
    try:
        available = mx.context.num_gpus()
    except Exception:  # an MXNet build without CUDA raises here
        available = 0
    if available == 0:
        raise UserError('--gpus %s asks for GPUs, but this MXNet has no CUDA or sees no GPU; '
                        'use --gpus cpu' % spec)
    if max(ids) >= available:
        raise UserError('--gpus %s asks for GPU %d, but MXNet sees only %d GPU(s); use --gpus cpu '
                        'or ids below %d' % (spec, max(ids), available, available))
    return [mx.gpu(i) for i in ids]
