"""CRST's training loss as an MXNet symbol head on the segmentation logits.

Zou et al., "Confidence Regularized Self-Training" (ICCV 2019); released code yzou2/CRST
`crst_seg.py`, functions `reg_loss_calc` (hard labels) and `reg_loss_calc_expand` (LR-ENT soft
labels). Per device (the executor's slice of the batch), with log p = log_softmax(logits) over
the classes, V = the pixels whose hard label is not 255 and R = the pixels of V that the
`crst_reg_mask` input marks (the pseudo-labelled TARGET pixels; source pixels are not
regularised):

    loss = sum_{V} CE / max(|V|, 1) + W * sum_{R} r / max(|R|, 1)

    CE = -log p_label                 (hard labels: the plain CBST loss)
    CE = -sum_k y_k log p_k           (LR-ENT: soft labels y from `crst_soft_label`)
    r  = sum_k -log p_k / K           (MR-KLD, --mr-weight-kld W)
    r  = sum_k p_k^2                  (MR-L2,  --mr-weight-l2 W)
    r  = sum_k p_k log p_k            (MR-ENT, --mr-weight-ent W)

The cross-entropy term has the normalisation of the plain symbol's
``SoftmaxOutput(multi_output=True, use_ignore=True, ignore_label=255, normalization='valid')``:
each device divides by its own count of valid pixels (1 when there is none), so with one-hot
soft labels the gradient w.r.t. the logits is SoftmaxOutput's (tests/test_crst_loss.py). The
regulariser term is 0 on a device without regularised pixels, as the original's
`if valid_reg_num > 0`. MR-L2 and MR-ENT are the paper's Table 1 regularisers the authors
never released; only one model regulariser at a time, as the original ("currently only one
kind of model regularizer is supported").

Relation to the released code's weights: `crst_seg.py` main sets the dataset's per-sample
`reg_weight` of the target samples to `args.mr_weight_kld` (source samples: `--mr-weight-src`,
default 0, which also leaves them out of the count), and `reg_loss_calc` then adds
`mr_weight_kld * sum(-log_softmax / num_class * reg_weights) / valid_reg_num`: the weight
multiplies the regulariser twice. Its `--mr-weight-kld 0.1` (mrkld.sh) is W = 0.1 * 0.1 = 0.01
here; in general W = w^2 for its w, i.e. its w = sqrt(W).

Outputs of the head, in this order: the class probabilities softmax(logits) behind BlockGrad
(for the training log's NLL, as SoftmaxOutput's output was), and the loss (MakeLoss, one value
per device). Frozen BatchNorm and the rest of the network are those of the plain symbol: only
the SoftmaxOutput on top of the logits is replaced.
"""
import mxnet as mx

from util.crst_settings import (LABEL, REG_MASK, REGULARISERS, SOFT_LABEL, CrstSettings,
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
