"""Learning-rate schedules for `--lr-type fixed|step|multistep|linear|poly`, as yzou2/CBST
issegm/solve_ST.py and issegm/train_src.py (parse_model_label, _train_impl) build them with their
util/lr_scheduler.py; `step` is a fixed rate there (QUIRK kept), `multistep` the port's own
(docs/algorithm.md section 3, "Learning-rate schedules"). Plain classes that pickle without
MXNet (the parameter servers unpickle them inside `import mxnet`).
"""
import logging

from util.errors import UserError

LR_TYPES = ('fixed', 'step', 'multistep', 'linear', 'poly')
STEP_FACTOR = 0.1
POLY_POWER = 0.9

log = logging.getLogger('cbst')


class FixedSchedule:
    """base_lr at every update (upstream's FixedScheduler)."""

    def __init__(self, base_lr):
        self.base_lr = base_lr

    def __call__(self, num_update):
        return self.base_lr


class MultiFactorSchedule(FixedSchedule):
    """base_lr * factor ** (number of steps s with offset + num_update > s): `--lr-type
    multistep`, its steps counted from the start of the whole schedule (offset = from_iter)."""

    def __init__(self, base_lr, steps, offset=0, factor=STEP_FACTOR):
        super().__init__(base_lr)
        self.steps, self.offset, self.factor = list(steps), offset, factor

    def __call__(self, num_update):
        lr = self.base_lr
        for step in self.steps:
            if self.offset + num_update > step:
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
    MultiFactorScheduler, which _train_impl of yzou2/CBST solve_ST.py would have used, refuses
    anything else)."""
    try:
        steps = [int(s) for s in (text or '').split(',') if s.strip()]
    except ValueError:
        raise UserError('bad --lr-steps %r: expected a comma list of iteration counts, '
                        'e.g. 20000,40000' % (text,))
    if not steps:
        raise UserError('--lr-type step and multistep need --lr-steps (iteration counts, e.g. '
                        '20000,40000)')
    if steps[0] < 1 or any(b <= a for a, b in zip(steps, steps[1:])):
        raise UserError('bad --lr-steps %r: iteration counts must be >= 1 and increasing'
                        % (text,))
    return steps


def make_lr_scheduler(lr_type, base_lr, lr_steps, from_iter, to_iter):
    """The schedule of one training process (see the module docstring); its `base_lr` is the
    learning rate to give the optimizer."""
    if lr_type not in LR_TYPES:
        raise UserError('unknown --lr-type %r (allowed: %s)' % (lr_type, ', '.join(LR_TYPES)))
    if lr_type == 'fixed':
        return FixedSchedule(base_lr)
    if lr_type == 'step':  # QUIRK kept: a fixed rate (solve_ST.py parse_model_label)
        parse_lr_steps(lr_steps)  # solve_ST.py parse_model_label int()s them too
        log.warning('--lr-type step trains at the fixed rate %g, as yzou2/CBST solve_ST.py and '
                    'train_src.py (parse_model_label leaves the type fixed); --lr-type '
                    'multistep applies the steps', base_lr)
        return FixedSchedule(base_lr)
    if lr_type == 'multistep':
        return MultiFactorSchedule(base_lr, parse_lr_steps(lr_steps), offset=from_iter)
    updates = to_iter + 1  # QUIRK kept: to_iter + 1 updates (solve_ST.py _train_impl)
    if lr_type == 'linear':
        return PolySchedule(base_lr, updates, min(base_lr / 100.0, 1e-6), from_iter, 1)
    return PolySchedule(base_lr, updates, min(base_lr / 100.0, 1e-8), from_iter, POLY_POWER)
