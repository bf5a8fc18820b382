"""Learning-rate schedules for `--lr-type fixed|step|linear|poly` (per update, MXNet style)."""
import mxnet as mx

from util.errors import UserError

LR_TYPES = ('fixed', 'step', 'linear', 'poly')


class _Schedule(mx.lr_scheduler.LRScheduler):
    """lr(t) = base_lr * factor(t), t counted in updates from the start of training (epoch 0)."""

    def __init__(self, base_lr, factor):
        super().__init__(base_lr=base_lr)
        self.factor = factor

    def __call__(self, num_update):
        return self.base_lr * self.factor(num_update)


def make_lr_scheduler(lr_type, base_lr, batches_per_epoch, to_epoch, lr_steps=None):
    """None for `fixed`; otherwise a scheduler over `to_epoch` epochs of updates.

    `step` divides by 10 at each epoch of `lr_steps` (comma list); `linear` decays to 0 at
    to_epoch; `poly` decays with power 0.9.
    """
    if lr_type not in LR_TYPES:
        raise UserError('unknown --lr-type %r (allowed: %s)' % (lr_type, ', '.join(LR_TYPES)))
    if lr_type == 'fixed':
        return None
    total = max(1, batches_per_epoch * to_epoch)
    if lr_type == 'step':
        try:
            steps = [int(s) * batches_per_epoch for s in (lr_steps or '').split(',') if s.strip()]
        except ValueError:
            raise UserError('bad --lr-steps %r: expected a comma list of epochs' % lr_steps)
        return _Schedule(base_lr, lambda t: 0.1 ** sum(t > s for s in steps))
    if lr_type == 'linear':
        return _Schedule(base_lr, lambda t: max(0.0, 1.0 - t / total))
    return _Schedule(base_lr, lambda t: max(0.0, 1.0 - t / total) ** 0.9)
