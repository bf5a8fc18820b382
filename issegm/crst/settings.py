"""The four CRST weights of the scripts (0 = off) and what they switch on. No MXNet, so that
the scripts check their flags before importing it.

Zou et al., "Confidence Regularized Self-Training" (ICCV 2019); released code yzou2/CRST
`crst_seg.py` (`get_arguments`: --lr-weight-ent, --mr-weight-kld). The loss they weigh is
issegm/crst/loss.py; LR-ENT's soft pseudo-labels are issegm/crst/lrent.py.
"""
import collections
import math

from util.errors import UserError

__all__ = ['LABEL', 'SOFT_LABEL', 'REG_MASK', 'REGULARISERS', 'CrstSettings', 'crst_settings',
           'is_active', 'label_names', 'weights_on']

LABEL = 'softmax_label'          # (B, h, w) hard train ids, 255 = ignore (the plain symbol's)
SOFT_LABEL = 'crst_soft_label'   # (B, C, h, w) soft labels (LR-ENT only)
REG_MASK = 'crst_reg_mask'       # (B, h, w) non-zero on target pixels (model regulariser only)
REGULARISERS = ('kld', 'l2', 'ent')

# lr_weight_ent: alpha of LR-ENT (0: hard labels); regulariser: one of REGULARISERS or None;
# mr_weight: its W (0 when None).
CrstSettings = collections.namedtuple('CrstSettings', 'lr_weight_ent regulariser mr_weight')


def crst_settings(lr_weight_ent=0.0, mr_weight_kld=0.0, mr_weight_l2=0.0, mr_weight_ent=0.0):
    """Check the four CRST weights (0 = off) and return CrstSettings.

    UserError for a negative or non-finite weight and for more than one model regulariser
    (yzou2/CRST crst_seg.py, main: "currently only one kind of model regularizer is
    supported"). A label and a model regulariser go together, as the original's
    reg_loss_calc_expand adds MR-KLD to the soft cross-entropy.
    """
    weights = (('--lr-weight-ent', lr_weight_ent), ('--mr-weight-kld', mr_weight_kld),
               ('--mr-weight-l2', mr_weight_l2), ('--mr-weight-ent', mr_weight_ent))
    values = []
    for flag, value in weights:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError('%s must be a number, got %r' % (flag, value)) from None
        if not (value >= 0 and math.isfinite(value)):
            raise UserError('%s must be >= 0 (0 = off), got %r' % (flag, value))
        values.append(value)
    on = [(name, w) for name, w in zip(REGULARISERS, values[1:]) if w > 0]
    if len(on) > 1:
        raise UserError('only one model regulariser at a time: got %s'
                        % ' and '.join('--mr-weight-%s %g' % (name, w) for name, w in on))
    regulariser, weight = on[0] if on else (None, 0.0)
    return CrstSettings(values[0], regulariser, weight)


def is_active(settings):
    """True when any CRST weight is on (None: plain CBST)."""
    return settings is not None and (settings.lr_weight_ent > 0
                                     or settings.regulariser is not None)


def label_names(settings):
    """The Module's label inputs, in order: softmax_label, then crst_soft_label with LR-ENT,
    then crst_reg_mask with a model regulariser."""
    names = [LABEL]
    if settings is not None and settings.lr_weight_ent > 0:
        names.append(SOFT_LABEL)
    if settings is not None and settings.regulariser is not None:
        names.append(REG_MASK)
    return tuple(names)


def weights_on(settings):
    """The run's CRST weights for summary.json and the logs: {'lr_weight_ent': alpha,
    'mr_weight_kld': W, ...} of the weights that are on; {} for plain CBST."""
    out = {}
    if settings is not None and settings.lr_weight_ent > 0:
        out['lr_weight_ent'] = settings.lr_weight_ent
    if settings is not None and settings.regulariser is not None:
        out['mr_weight_' + settings.regulariser] = settings.mr_weight
    return out
