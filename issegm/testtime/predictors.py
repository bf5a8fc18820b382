"""The checkpoint and devices of evaluate.py and predict.py as settings (their test-time flags,
checked), and the Predictors made from them: one per device. Imports MXNet only inside
check_devices and load_predictors, which the scripts call once their flags are checked.
"""
import dataclasses

from util.errors import require_file
from util.flags import set_mxnet_switches
from util.model_label import ModelLabel

__all__ = ['TestTimeSettings', 'check_devices', 'load_predictors']


@dataclasses.dataclass(frozen=True)
class TestTimeSettings:
    """The checked test-time flags (util.flags.prediction_flags, --weights, --model,
    --dataset): the weight file and its model label (parsed), the dataset's tables, the test
    scales, flipping and steps, the devices (--gpus) and MXNet's switches, the helper threads
    and the progress bar."""
    weights: str
    model: str
    parsed: ModelLabel
    info: object
    scales: tuple
    flip: bool
    test_steps: int
    gpus: str
    no_cudnn: bool = False
    debug: bool = False
    deterministic: bool = False
    prefetch_threads: int = 1
    progress: bool = True


def check_devices(test):
    """The contexts of --gpus, checked before anything is written (a bad value leaves no output
    folder); sets MXNet's switches first, as this imports MXNet."""
    set_mxnet_switches(no_cudnn=test.no_cudnn, debug=test.debug,
                       deterministic=test.deterministic)
    from util.devices import parse_devices  # imports MXNet: after the flags
    return parse_devices(test.gpus, test.debug)


def load_predictors(test):
    """One issegm.testtime.one_image.Predictor per device of --gpus, with the weights checked to
    fit the model (a misfit is a UserError). Imports MXNet: call it once the flags are checked.
    Returns (predictors, contexts)."""
    require_file(test.weights, 'weight file')
    set_mxnet_switches(no_cudnn=test.no_cudnn, debug=test.debug,
                       deterministic=test.deterministic)
    from issegm.testtime.one_image import make_predictors  # these import MXNet: after the flags
    from util.devices import parse_devices
    from util.symbol.resnet38 import parameter_shapes
    from util.weights import load_for_model
    contexts = parse_devices(test.gpus, test.debug)
    arg_params, aux_params = load_for_model(test.weights, parameter_shapes(test.model))
    # float64 softmax, as yzou2/CBST evaluate.py's network (one_image.softmax_float64)
    predictors = make_predictors(test.model, arg_params, aux_params, contexts,
                                 test.parsed.stride, test.test_steps, float64_softmax=True)
    return predictors, contexts
