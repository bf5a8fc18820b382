"""Learning-rate schedules for `--lr-type fixed|step|linear|poly`, as yzou2/CBST issegm/solve_ST.py
and issegm/train_src.py (_train_impl) build them with their util/lr_scheduler.py and MXNet's
MultiFactorScheduler (docs/algorithm.md section 3, "Learning-rate schedules"). Plain classes
that pickle without MXNet (the parameter servers unpickle them inside `import mxnet`).
"""
from util.errors import UserError

LR_TYPES = ('fixed', 'step', 'linear', 'poly')
STEP_FACTOR = 0.1
POLY_POWER = 0.9


class FixedSchedule:
    """base_lr at every update (upstream's FixedScheduler)."""

    def __init__(self, base_lr):
        self.base_lr = base_lr

    def __call__(self, num_update):
        return self.base_lr


class MultiFactorSchedule(FixedSchedule):
    """base_lr * factor ** (number of steps s with num_update > s): what MXNet's
    MultiFactorScheduler(step=steps, factor=factor) returns for non-decreasing num_update."""

    def __init__(self, base_lr, steps, factor=STEP_FACTOR):
        super().__init__(base_lr)
        self.steps, self.factor = list(steps), factor

    def __call__(self, num_update):
        lr = self.base_lr
        for step in self.steps:
            if num_update > step:
                lr *= self.factor
        return lr


class PolySchedule(FixedSchedule):
    """base_lr * (1 - min(offset + n, updates) / updates) ** power, at least stop_lr when
    stop_lr > 0 (upstream's LinearScheduler for power 1, PolyScheduler otherwise)."""

    def __init__(self, base_lr, updates, stop_lr, offset, power):
        super().__init__(base_lr)
        self.updates, self.stop_lr, self.offset, self.power = updates, stop_lr, offset, power

    def __call__(self, num_update):
        now = min(self.offset + num_update, self.updates)
        fraction = 1 - float(now) / self.updates
        lr = self.base_lr * (fraction if self.power == 1 else fraction ** self.power)
        if self.stop_lr > 0 and lr < self.stop_lr:
            lr = self.stop_lr
        return lr


def parse_lr_steps(text):
    """`--lr-steps 1000,2000` -> [1000, 2000]: increasing iteration counts >= 1 (MXNet's
    MultiFactorScheduler refuses anything else)."""
    try:
        steps = [int(s) for s in (text or '').split(',') if s.strip()]
    except ValueError:
        raise UserError('bad --lr-steps %r: expected a comma list of iteration counts, '
                        'e.g. 20000,40000' % (text,))
    if not steps:
        raise UserError('--lr-type step needs --lr-steps (iteration counts, e.g. 20000,40000)')
    if steps[0] < 1 or any(b <= a for a, b in zip(steps, steps[1:])):
        raise UserError('bad --lr-steps %r: iteration counts must be >= 1 and increasing'
                        % (text,))
    return steps


def make_lr_scheduler(lr_type, base_lr, lr_steps, from_iter, to_iter):
    """The schedule of one training process (docs/algorithm.md section 3); its `base_lr` is the
    learning rate to give the optimizer (for `step` already reduced for from_iter)."""
    if lr_type not in LR_TYPES:
        raise UserError('unknown --lr-type %r (allowed: %s)' % (lr_type, ', '.join(LR_TYPES)))
    if lr_type == 'fixed':
        return FixedSchedule(base_lr)
    if lr_type == 'step':
        steps = parse_lr_steps(lr_steps)
        start_lr = base_lr
        for step in steps:
            if from_iter > step:
                start_lr *= STEP_FACTOR
        return MultiFactorSchedule(start_lr, steps)
    updates = to_iter + 1
    if lr_type == 'linear':
        return PolySchedule(base_lr, updates, min(base_lr / 100.0, 1e-6), from_iter, 1)
    return PolySchedule(base_lr, updates, min(base_lr / 100.0, 1e-8), from_iter, POLY_POWER)
