"""What phase val keeps for LR-ENT (OUTPUT/R/self_train/netmaps/ and soft_labels.json) and how
phase train reads it back per crop (docs/algorithm.md section 3b, "What phase val keeps").
"""
import collections
import json
import os

import numpy as np

from issegm.crst.crop_labels import NetMap, soft_label_crop
from issegm.datasets import sample_name
from issegm.prior import load_prior
from util.errors import UserError
from util.files import write_json

__all__ = ['RECORD', 'FOLDER', 'SoftLabelRound', 'SoftSource', 'write_record', 'read_record',
           'soft_sources', 'crop_soft_label']

RECORD = 'soft_labels.json'
FOLDER = 'netmaps'

# One round's LR-ENT settings: alpha, the thresholds (tuple of floats), the prediction stride of
# the maps, the prior's .mat path and (H, W) it was loaded at (None without a prior).
SoftLabelRound = collections.namedtuple('SoftLabelRound',
                                        'alpha cls_thresh pred_stride prior_path prior_hw')
# One target image: its round, its network map file, the scaled (unpadded) network input size
# and the image size.
SoftSource = collections.namedtuple('SoftSource', 'round net_path scaled_hw hw')


def write_record(folder, alpha, cls_thresh, pred_stride, images, prior_path=None,
                 prior_hw=None):
    """FOLDER/soft_labels.json for the TargetImages `images` (issegm/rounds/val_target.py),
    whose maps are FOLDER/netmaps/NAME.npy."""
    write_json(os.path.join(folder, RECORD), {
        'lr_weight_ent': float(alpha), 'cls_thresh': [float(t) for t in cls_thresh],
        'pred_stride': int(pred_stride),
        'prior': None if prior_path is None else {'path': os.path.abspath(prior_path),
                                                   'hw': [int(v) for v in prior_hw]},
        'images': {image.name: {'scaled_hw': [int(v) for v in image.scaled_hw],
                                'hw': [int(v) for v in image.hw]} for image in images}})


def read_record(folder, alpha):
    """(SoftLabelRound, {name: (scaled_hw, hw)}) of FOLDER/soft_labels.json; a UserError when it
    is missing or phase val used another alpha."""
    path = os.path.join(folder, RECORD)
    if not os.path.isfile(path):
        raise UserError('--lr-weight-ent: %s not found: run phase val of this round with '
                        '--lr-weight-ent %g first' % (path, alpha))
    with open(path) as f:
        record = json.load(f)
    if record['lr_weight_ent'] != float(alpha):
        raise UserError('phase val of this round used --lr-weight-ent %g, phase train got %g'
                        % (record['lr_weight_ent'], alpha))
    prior = record['prior'] or {'path': None, 'hw': None}
    rnd = SoftLabelRound(record['lr_weight_ent'], tuple(record['cls_thresh']),
                         record['pred_stride'], prior['path'],
                         tuple(prior['hw']) if prior['hw'] else None)
    geometry = {name: (tuple(g['scaled_hw']), tuple(g['hw']))
                for name, g in record['images'].items()}
    return rnd, geometry


def soft_sources(folder, alpha, target_samples):
    """[SoftSource] for the (image, pseudo-label) target samples, in order."""
    rnd, geometry = read_record(folder, alpha)
    out = []
    for image, _ in target_samples:
        name = sample_name(image)
        net_path = os.path.join(folder, FOLDER, name + '.npy')
        if name not in geometry or not os.path.isfile(net_path):
            raise UserError('no LR-ENT map of target image %s in %s' % (name, folder))
        out.append(SoftSource(rnd, net_path, *geometry[name]))
    return out


# The spatial prior per (path, size), loaded once per process (each prefetch worker).
_PRIORS = {}


def _prior(rnd, num_classes):
    if rnd.prior_path is None:
        return None
    key = (rnd.prior_path, rnd.prior_hw)
    if key not in _PRIORS:
        _PRIORS[key] = load_prior(rnd.prior_path, num_classes, rnd.prior_hw)
    return _PRIORS[key]


def crop_soft_label(source, plan, crop, hard_label, stride=8):
    """The (C, n, n) float32 LR-ENT soft label of one target crop (sampling.CropPlan `plan`,
    side `crop`, its (n, n) hard label), from the image's network map, as phase val labelled
    it (times the prior when phase val used one)."""
    net = np.load(source.net_path)
    rnd = source.round
    return soft_label_crop(NetMap(net, rnd.pred_stride, source.scaled_hw, source.hw),
                           rnd.cls_thresh, rnd.alpha, plan, crop, hard_label, stride,
                           prior=_prior(rnd, net.shape[0]))
