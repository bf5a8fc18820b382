"""`--backward-do-mirror` for MXNet 1.9.1: recompute each residual unit's inner feature maps in
the backward pass instead of keeping them from the forward pass (README, "Training memory").

yzou2/CBST issegm/solve_ST.py and issegm/train_src.py (parse_args) turn the flag into
MXNET_BACKWARD_DO_MIRROR=1 (help in yzou2/CBST solve_ST.py: "True means less gpu memory usage"),
and yzou2/CBST issegm/solve_AO.py passes it to every phase train. In MXNet 1.9.1 that switch
costs memory instead of saving it. Its graph executor (src/executor/graph_executor.cc,
InitFullGraph) then mirrors every operator but Convolution, FullyConnected, Concat,
SoftmaxOutput and Dropout, and the gradient pass (src/nnvm/gradient.cc) gives each mirrored
node a copy that reads the copies of its inputs and feeds its gradient. On ResNet-38 that
saves nothing and adds a copy of every residual sum:
* a convolution is not mirrored, so its gradient reads the convolution's original input: the
  BatchNorm+ReLU output before every convolution is kept from the forward pass anyway;
* the residual sums are mirrored, and each copy reads the copy of the previous one, so all of
  them are recomputed as soon as the backward pass starts and are held until it ends.
(rna-a1 at 504x504, one image: 1,644 MB planned against 1,496 MB without; apache/mxnet
issue 14383.)

What this module does instead: the `__force_mirroring__` attribute, which the same executor
honours on any node, is set on every BatchNorm, Activation and Convolution node, and
MXNET_BACKWARD_DO_MIRROR stays off (util.flags.set_mxnet_switches). The residual sums, Dropout
(which MXNet never mirrors, so its mask is drawn once) and the loss keep their forward
outputs, so each residual unit becomes a segment recomputed from its stored input when the
backward pass reaches it: the checkpointing of Chen et al. 2016 ("Training Deep Nets with
Sublinear Memory Cost"), which MXNet's mirror was built for. It costs about one more forward
pass per step (the last convolution of each segment is recomputed as well: its gradient
node depends on the copy) and gives the same gradients: recomputing is deterministic and the
BatchNorm statistics are frozen (use_global_stats), so a recomputed BatchNorm updates nothing
(tests/test_train_memory.py). benchmarks/bench_train_memory.py measures the memory.
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
