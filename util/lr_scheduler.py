"""Learning-rate schedules for `--lr-type fixed|step|linear|poly` (per update, MXNet style).

The schedules are plain module-level classes that pickle and unpickle without MXNet: with a
dist kvstore MXNet pickles the optimizer, scheduler included, to the parameter servers, which
unpickle it while `import mxnet` is still running (their server loop starts inside it), so a
subclass of mx.lr_scheduler.LRScheduler could not be loaded there. MXNet's optimizer only needs
`base_lr` and `__call__(num_update)`.
"""
from util.errors import UserError

LR_TYPES = ('fixed', 'step', 'linear', 'poly')


class _Schedule(object):
    """lr(t) = base_lr * factor(t), t counted in updates from the start of training (epoch 0)."""

    def __init__(self, base_lr):
        self.base_lr = base_lr

    def factor(self, num_update):
        raise NotImplementedError

    def __call__(self, num_update):
        return self.base_lr * self.factor(num_update)


class StepSchedule(_Schedule):
    """Divide by 10 after each of `steps` (in updates)."""

    def __init__(self, base_lr, steps):
        super().__init__(base_lr)
        self.steps = list(steps)

    def factor(self, num_update):
        return 0.1 ** sum(num_update > s for s in self.steps)


class PolySchedule(_Schedule):
    """(1 - t / total) ** power, 0 from `total` updates on (power 1: linear)."""

    def __init__(self, base_lr, total, power):
        super().__init__(base_lr)
        self.total, self.power = total, power

    def factor(self, num_update):
        return max(0.0, 1.0 - num_update / self.total) ** self.power


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
        return StepSchedule(base_lr, steps)
    if lr_type == 'linear':
        return PolySchedule(base_lr, total, 1.0)
    return PolySchedule(base_lr, total, 0.9)
