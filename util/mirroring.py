"""`--backward-do-mirror` for MXNet 1.9.1: recompute each residual unit's inner feature maps in
the backward pass instead of keeping them from the forward pass (README, "Training memory").

Why MXNet 1.9.1's own MXNET_BACKWARD_DO_MIRROR costs memory and what this does instead:
docs/internals.md, section 9.
"""
import json
import re

import mxnet as mx

# The operators whose outputs are recomputed in the backward pass.
MIRRORED_OPS = ('BatchNorm', 'Activation', 'Convolution')
MIRROR_ATTR = '__force_mirroring__'


def mirror_symbol(symbol):
    """A copy of `symbol` whose BatchNorm, Activation and Convolution nodes carry
    `__force_mirroring__`; `symbol` itself is left as it is."""
    graph = json.loads(symbol.tojson())
    for node in graph['nodes']:
        if node['op'] in MIRRORED_OPS:
            node.setdefault('attrs', {})[MIRROR_ATTR] = 'True'
    return mx.sym.load_json(json.dumps(graph))


def planned_memory_mb(executor):
    """MXNet's static memory plan of a bound executor in MB: the feature maps, gradients of
    the feature maps and other internal arrays (not the parameters, their gradients or the
    inputs), as its debug_str reports it ("Total N MB allocated")."""
    found = re.findall(r'^Total (\d+) MB allocated$', executor.debug_str(), re.M)
    if len(found) != 1:
        raise ValueError('no "Total N MB allocated" line in the executor\'s debug_str')
    return int(found[0])
