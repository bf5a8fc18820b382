"""Model labels `DATASET_NETTYPE-NETNAME_clsN_sK` (yzou2/CBST solve_ST.py parse_model_label),
e.g. `cityscapes_rna-a1_cls19_s8`."""
import collections
import os
import re

from util.errors import UserError

ModelLabel = collections.namedtuple('ModelLabel', 'dataset net_type net_name num_classes stride')

# The dataset part may hold hyphens (`ilsvrc-cls`); the stride suffix is optional (default 32).
_LABEL_RE = re.compile(
    r'^(?P<dataset>[A-Za-z0-9][A-Za-z0-9-]*?)_(?P<net_type>[a-z]+)-(?P<net_name>[A-Za-z0-9]+)'
    r'_cls(?P<num_classes>\d+)(?:_s(?P<stride>\d+))?$')

# Checkpoints are MODEL_ep-NNNN.params: MXNet's PREFIX-%04d.params with the prefix MODEL_ep
# (yzou2/CBST issegm/train_src.py and solve_ST.py, _train_impl; solve_AO.py's weights of a round).
CHECKPOINT_TAG = '_ep'
_CHECKPOINT_RE = re.compile(r'^(?P<model>.+)%s-(?P<epoch>\d+)\.params$'
                            % re.escape(CHECKPOINT_TAG))

KNOWN_NET_TYPES = ('rna',)
KNOWN_NET_NAMES = ('a1', 'tiny')
KNOWN_STRIDES = (8, 16, 32)
CLASSIFIER_DATASET = 'ilsvrc-cls'


def parse_model_label(label):
    """Split a model label into its parts; a UserError names a label that does not parse."""
    m = _LABEL_RE.match(label or '')
    if m is None:
        raise UserError('unknown model label %r: expected DATASET_NETTYPE-NETNAME_clsN[_sK], '
                        'e.g. cityscapes_rna-a1_cls19_s8' % (label,))
    parsed = ModelLabel(m.group('dataset'), m.group('net_type'), m.group('net_name'),
                        int(m.group('num_classes')), int(m.group('stride') or 32))
    if parsed.net_type not in KNOWN_NET_TYPES:
        raise UserError('unknown network type %r in model label %r (known: %s)'
                        % (parsed.net_type, label, ', '.join(KNOWN_NET_TYPES)))
    if parsed.net_name not in KNOWN_NET_NAMES:
        raise UserError('unknown network name %r in model label %r (known: %s)'
                        % (parsed.net_name, label, ', '.join(KNOWN_NET_NAMES)))
    if parsed.stride not in KNOWN_STRIDES:
        raise UserError('unsupported feature stride %d in model label %r (known: 8, 16, 32)'
                        % (parsed.stride, label))
    if parsed.num_classes < 1:
        raise UserError('model label %r asks for %d classes' % (label, parsed.num_classes))
    return parsed


def is_classifier(parsed):
    """The ImageNet classifier variant is selected by the dataset name `ilsvrc-cls`."""
    return parsed.dataset == CLASSIFIER_DATASET


def split_weights_name(path):
    """`models/gta_rna-a1_cls19_s8_ep-0003.params` -> ('gta_rna-a1_cls19_s8', 3).

    Returns (None, None) when the file name does not follow the `MODEL_ep-NNNN.params` pattern.
    """
    base = os.path.basename(path or '')
    m = _CHECKPOINT_RE.match(base)
    if m is None:
        return None, None
    return m.group('model'), int(m.group('epoch'))


def checkpoint_prefix(folder, model):
    """`FOLDER/MODEL_ep`: the prefix of a model's checkpoints (and of its `-symbol.json`)."""
    return os.path.join(folder, model + CHECKPOINT_TAG)


def checkpoint_path(prefix, epoch):
    """`PREFIX-%04d.params`, e.g. OUTPUT/0/cityscapes_rna-a1_cls19_s8_ep-0002.params."""
    return '%s-%04d.params' % (prefix, epoch)


def checkpoint_file(folder, model, epoch):
    """`FOLDER/MODEL_ep-%04d.params`: a model's checkpoint after `epoch`."""
    return checkpoint_path(checkpoint_prefix(folder, model), epoch)


def check_num_classes(model, info, dataset_text=None):
    """The parsed model label, after checking that it has as many classes as the dataset
    `info` (an issegm.datasets.DatasetInfo); `dataset_text` names the dataset in the error
    (default `dataset NAME`)."""
    parsed = parse_model_label(model)
    if parsed.num_classes != len(info.class_names):
        raise UserError('model %s has %d classes but %s has %d'
                        % (model, parsed.num_classes, dataset_text or 'dataset %s' % info.name,
                           len(info.class_names)))
    return parsed


def model_from_weights(model, weights):
    """`--model` as given, else the weights file name before `_ep-` (solve_ST.py parse_args)."""
    if model:
        return model
    weights_model = split_weights_name(weights)[0]
    if weights_model is None:
        raise UserError('--model is missing and the weights file name %s does not say it '
                        '(expected MODEL_ep-NNNN.params)' % os.path.basename(weights or ''))
    return weights_model


def start_epoch(model, weights, from_epoch=None):
    """(from_epoch, continuing): training continues this model's own checkpoint (and its epoch
    count) only when the weights file's model part equals `model`; otherwise it starts at 0
    (solve_ST.py parse_args). An explicit `from_epoch` wins."""
    weights_model, weights_epoch = split_weights_name(weights)
    continuing = weights_model == model
    if from_epoch is None:
        from_epoch = weights_epoch if continuing else 0
    if from_epoch < 0:
        raise UserError('--from-epoch must be >= 0, got %d' % from_epoch)
    return from_epoch, continuing
