"""The demo source model's start weights: random, with BatchNorm statistics measured on source
images (util/bn_calibration.py says why; docs/demo.md, "The source model", what it changed)."""
import numpy as np

from issegm.datasets import read_image
from util.bn_calibration import calibrate_batchnorm
from util.image import normalize_chw
from util.symbol.resnet38 import build_symbol, parameter_shapes
from util.weights import initial_weights

CALIBRATION_IMAGES = 16  # the first source train images, all of one size in the demo's data


def start_weights(model, source_images, seed):
    """(arg_params, aux_params) of `model`: util.weights.initial_weights of `seed` (no ImageNet
    model exists for the narrow network), then every frozen BatchNorm layer's moving mean and
    variance measured on the first CALIBRATION_IMAGES of `source_images` (paths), as a
    pretrained model's were measured on its training data."""
    arg_params, aux_params = initial_weights(parameter_shapes(model), seed)
    images = np.stack([normalize_chw(read_image(path))
                       for path in source_images[:CALIBRATION_IMAGES]])
    calibrate_batchnorm(build_symbol(model), arg_params, aux_params, images)
    return arg_params, aux_params
