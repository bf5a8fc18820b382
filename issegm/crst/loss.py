"""CRST's training loss as an MXNet head on the segmentation logits: the (soft) cross-entropy plus
one model regulariser (yzou2/CRST crst_seg.py, reg_loss_calc and reg_loss_calc_expand;
docs/algorithm.md section 3b, "The loss").
"""
import mxnet as mx

from issegm.crst.settings import (LABEL, REG_MASK, REGULARISERS, SOFT_LABEL, CrstSettings,
                                crst_settings, is_active, label_names)
from util.symbol.resnet38 import build_symbol

__all__ = ['LABEL', 'SOFT_LABEL', 'REG_MASK', 'IGNORE', 'REGULARISERS', 'PROB_OUTPUT',
           'CrstSettings', 'crst_settings', 'label_names', 'crst_head', 'training_symbol']

IGNORE = 255
PROB = 'crst_prob'  # the head's probabilities (the training log's NLL reads them)
PROB_OUTPUT = PROB + '_output'


def _per_pixel_regulariser(kind, log_p, prob):
    """(B, h, w) regulariser value of each pixel from (B, C, h, w) log p and p."""
    if kind == 'kld':
        return -mx.sym.mean(log_p, axis=1)  # sum_k -log p_k / K
    if kind == 'l2':
        return mx.sym.sum(mx.sym.square(prob), axis=1)
    if kind == 'ent':
        return mx.sym.sum(prob * log_p, axis=1)
    raise ValueError('unknown model regulariser %r (allowed: %s)'
                     % (kind, ', '.join(REGULARISERS)))


def _mean_over(values, weights):
    """sum(values * weights) / max(sum(weights), 1), the count held out of the gradient."""
    count = mx.sym.BlockGrad(mx.sym.maximum(mx.sym.sum(weights), 1))
    return mx.sym.broadcast_div(mx.sym.sum(values * weights), count)


def crst_head(logits, settings):
    """The CRST loss head on (B, C, h, w) logits: Group([probabilities, loss]) (see the module
    docstring). Label inputs: label_names(settings)."""
    label = mx.sym.Variable(LABEL)
    log_p = mx.sym.log_softmax(logits, axis=1)
    prob = mx.sym.softmax(logits, axis=1)
    valid = label != IGNORE
    if settings.lr_weight_ent > 0:
        soft = mx.sym.Variable(SOFT_LABEL)
        cross_entropy = -mx.sym.sum(soft * log_p, axis=1)
    else:
        # label 255 picks a clipped class; its term is multiplied by valid = 0
        cross_entropy = -mx.sym.pick(log_p, label, axis=1, mode='clip')
    loss = _mean_over(cross_entropy, valid)
    if settings.regulariser is not None:
        target = (mx.sym.Variable(REG_MASK) != 0) * valid
        reg = _per_pixel_regulariser(settings.regulariser, log_p, prob)
        loss = loss + settings.mr_weight * _mean_over(reg, target)
    return mx.sym.Group([mx.sym.BlockGrad(prob, name=PROB),
                         mx.sym.MakeLoss(loss, grad_scale=1.0, normalization='null',
                                         name='crst_loss')])


def training_symbol(model, settings=None):
    """The training symbol of a segmentation model label: the plain one (util.symbol.resnet38
    build_symbol, SoftmaxOutput head) when no CRST weight is on, else its logits with
    crst_head."""
    plain = build_symbol(model)
    if not is_active(settings):
        return plain
    return crst_head(plain.get_children()[0], settings)
