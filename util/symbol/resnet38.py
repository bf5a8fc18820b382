"""ResNet-38 (model A1, `rna-a1`) symbols whose parameter names match the published weight files,
after itijyou/ademxapp util/symbol/resnet_v2.py, which yzou2/CBST uses; `rna-tiny` is a narrow
variant for CPU demos and tests (docs/internals.md, section 4, "The network").
"""
import collections

import mxnet as mx

from util.model_label import is_classifier, parse_model_label

BN_EPS = 1.001e-5

# Per level: unit names and the output widths of the unit's convolutions.
LevelSpec = collections.namedtuple('LevelSpec', 'units widths')


def _levels(width_div, units_per_level):
    def w(*channels):
        return tuple(max(1, c // width_div) for c in channels)

    def names(level, count):
        return ['%da' % level] + ['%db%d' % (level, i) for i in range(1, count)]

    return {
        'conv1a': w(64)[0],
        2: LevelSpec(names(2, units_per_level[2]), w(128, 128)),
        3: LevelSpec(names(3, units_per_level[3]), w(256, 256)),
        4: LevelSpec(names(4, units_per_level[4]), w(512, 512)),
        5: LevelSpec(names(5, units_per_level[5]), w(512, 1024)),
        6: LevelSpec(['6a'], w(512, 1024, 2048)),
        7: LevelSpec(['7a'], w(1024, 2048, 4096)),
        'head': w(512)[0],
    }


NETWORKS = {
    'a1': _levels(1, {2: 3, 3: 3, 4: 6, 5: 3}),
    'tiny': _levels(8, {2: 1, 3: 1, 4: 2, 5: 2}),
}

DROPOUT = {6: 0.3, 7: 0.5}


def _var(name, bias_like=False):
    # Biases and BN betas learn twice as fast and are not decayed (upstream's attributes).
    if bias_like:
        return mx.sym.Variable(name, lr_mult=2.0, wd_mult=0.0)
    return mx.sym.Variable(name, lr_mult=1.0, wd_mult=1.0)


def _bn_relu(data, name):
    gamma = _var(name + '_gamma')
    beta = _var(name + '_beta', bias_like=True)
    bn = mx.sym.BatchNorm(data=data, gamma=gamma, beta=beta, name=name, eps=BN_EPS,
                          fix_gamma=False, use_global_stats=True)
    return mx.sym.Activation(bn, act_type='relu', name=name + '_relu')


def _conv(data, name, channels, kernel, stride=1, dilate=1, bias=False):
    pad = dilate * (kernel - 1) // 2
    args = dict(data=data, name=name, num_filter=channels, kernel=(kernel, kernel),
                stride=(stride, stride), dilate=(dilate, dilate), pad=(pad, pad),
                weight=_var(name + '_weight'), no_bias=not bias, workspace=1024)
    if bias:
        args['bias'] = _var(name + '_bias', bias_like=True)
    return mx.sym.Convolution(**args)


def _basic_unit(data, unit, widths, stride, dilate_first, dilate, project):
    """Two 3x3 convs; a projection unit feeds branch1 and branch2a from one pre-activation."""
    pre = _bn_relu(data, 'bn%s_branch2a' % unit)
    shortcut = data
    if project:
        shortcut = _conv(pre, 'res%s_branch1' % unit, widths[-1], 1, stride=stride)
    x = _conv(pre, 'res%s_branch2a' % unit, widths[0], 3, stride=stride, dilate=dilate_first)
    x = _bn_relu(x, 'bn%s_branch2b1' % unit)
    x = _conv(x, 'res%s_branch2b1' % unit, widths[1], 3, dilate=dilate)
    return shortcut + x


def _bottleneck_unit(data, unit, widths, stride, dilate, dropout):
    """1x1 -> 3x3 -> 1x1 with a projection, dropout before the last conv (levels 6 and 7)."""
    pre = _bn_relu(data, 'bn%s_branch2a' % unit)
    shortcut = _conv(pre, 'res%s_branch1' % unit, widths[2], 1, stride=stride)
    x = _conv(pre, 'res%s_branch2a' % unit, widths[0], 1, stride=stride)
    x = _bn_relu(x, 'bn%s_branch2b1' % unit)
    x = _conv(x, 'res%s_branch2b1' % unit, widths[1], 3, dilate=dilate)
    x = _bn_relu(x, 'bn%s_branch2b2' % unit)
    if dropout > 0:
        x = mx.sym.Dropout(x, p=dropout, name='res%s_branch2b2_dropout' % unit)
    x = _conv(x, 'res%s_branch2b2' % unit, widths[2], 1)
    return shortcut + x


def _level_geometry(stride):
    """Stride of the first unit and dilation of the dilated convs per level 5..7."""
    if stride == 8:
        return {5: (1, 2), 6: (1, 4), 7: (1, 4)}
    if stride == 16:
        return {5: (2, 1), 6: (1, 2), 7: (1, 2)}
    return {5: (2, 1), 6: (2, 1), 7: (1, 1)}


def trunk(data, net_name, stride):
    """ResNet-38 trunk up to `bn7` + ReLU (the 4096-channel features for a1)."""
    spec = NETWORKS[net_name]
    x = _conv(data, 'conv1a', spec['conv1a'], 3)
    geometry = _level_geometry(stride)
    for level in (2, 3, 4, 5):
        units, widths = spec[level]
        first_stride, dilate = (2, 1) if level < 5 else geometry[level]
        for i, unit in enumerate(units):
            first = i == 0
            x = _basic_unit(x, unit, widths, stride=first_stride if first else 1,
                            # the first conv of the level's first unit is never dilated
                            dilate_first=1 if first else dilate, dilate=dilate, project=first)
    for level in (6, 7):
        units, widths = spec[level]
        level_stride, dilate = geometry[level]
        x = _bottleneck_unit(x, units[0], widths, level_stride, dilate, DROPOUT[level])
    return _bn_relu(x, 'bn7')


def segmentation_symbol(net_name, num_classes, stride):
    """Trunk + head (`conv6a`, `linearN`, dilation 12) + per-pixel softmax ignoring 255."""
    data = mx.sym.Variable('data')
    feat = trunk(data, net_name, stride)
    x = _conv(feat, 'conv6a', NETWORKS[net_name]['head'], 3, dilate=12, bias=True)
    x = mx.sym.Activation(x, act_type='relu', name='conv6a_relu')
    x = _conv(x, 'linear%d' % num_classes, num_classes, 3, dilate=12, bias=True)
    return mx.sym.SoftmaxOutput(x, name='softmax', multi_output=True, use_ignore=True,
                                ignore_label=255, normalization='valid')


def classifier_symbol(net_name, num_classes):
    """Trunk at stride 32 + global average pooling + fully connected `linearN`."""
    data = mx.sym.Variable('data')
    feat = trunk(data, net_name, 32)
    pooled = mx.sym.Pooling(feat, global_pool=True, kernel=(1, 1), pool_type='avg', name='pool7')
    name = 'linear%d' % num_classes
    fc = mx.sym.FullyConnected(mx.sym.Flatten(pooled), num_hidden=num_classes, name=name,
                               weight=_var(name + '_weight'), bias=_var(name + '_bias', True))
    return mx.sym.SoftmaxOutput(fc, name='softmax')


def build_symbol(model):
    """The training/testing symbol for a model label (string or parsed)."""
    parsed = parse_model_label(model) if isinstance(model, str) else model
    if is_classifier(parsed):
        return classifier_symbol(parsed.net_name, parsed.num_classes)
    return segmentation_symbol(parsed.net_name, parsed.num_classes, parsed.stride)


def parameter_shapes(model, data_shape=(1, 3, 64, 64)):
    """Ordered [(kind, name, shape)] of a model's parameters, as in the published files."""
    sym = build_symbol(model)
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    inputs = {'data', 'softmax_label'}
    params = [('arg', n, tuple(s)) for n, s in zip(sym.list_arguments(), arg_shapes)
              if n not in inputs]
    params += [('aux', n, tuple(s)) for n, s in zip(sym.list_auxiliary_states(), aux_shapes)]
    return params


def inference_symbol(model, softmax=True):
    """Class probabilities without the loss layer: softmax over the channels of the logits
    (with softmax=False the logits themselves, for a softmax computed outside MXNet).

    Equal to SoftmaxOutput's forward, but needs no label input, so a predictor binds only data.
    """
    logits = build_symbol(model).get_children()[0]
    return mx.sym.softmax(logits, axis=1, name='prob') if softmax else logits
