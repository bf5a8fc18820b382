"""Test-time path shared by phase val and evaluate.py (SPEC 5, steps 1-3).

1. scale the image so its longer side equals the test scale, normalise;
2. pad to a multiple of the feature stride, run the network (and on the mirrored image when
   flipping, averaging the two softmax maps after mirroring back);
3. upsample each class map by the stride (Pillow bicubic on float32 'F' planes), crop to the
   scaled size, resize to the original size (filter by util.image.interp_filter), as the
   original's `interp_preds_as` (yzou2/CBST `issegm/solve_ST.py`).

`Predictor.network_probs` stops after step 2, returning the small network-resolution maps;
`upsample_probs` does step 3. Phase val keeps only the former between its two passes.
"""
import mxnet as mx
import numpy as np
from PIL import Image

from util.image import (interp_filter, normalize, pad_to_multiple, resize_image, resize_plane,
                        scale_longer_side)
from util.symbols import inference_symbol


class Predictor:
    """An inference Module for one model, re-shaped as image sizes change."""

    def __init__(self, model, arg_params, aux_params, ctx, stride):
        self.stride = stride
        self.ctx = ctx if isinstance(ctx, mx.Context) else ctx[0]
        self.symbol = inference_symbol(model)
        self.arg_params = arg_params
        self.aux_params = aux_params
        self.module = None
        self.bound_shape = None

    def _forward(self, batch_nchw):
        shape = batch_nchw.shape
        if self.module is None:
            self.module = mx.mod.Module(self.symbol, data_names=('data',), label_names=None,
                                        context=self.ctx)
            self.module.bind(data_shapes=[('data', shape)], for_training=False)
            self.module.set_params(self.arg_params, self.aux_params, allow_missing=False,
                                   allow_extra=True)
        elif shape != self.bound_shape:
            self.module.reshape(data_shapes=[('data', shape)])
        self.bound_shape = shape
        batch = mx.io.DataBatch(data=[mx.nd.array(batch_nchw, ctx=self.ctx)], label=None)
        self.module.forward(batch, is_train=False)
        return self.module.get_outputs()[0].asnumpy()

    def network_probs(self, image_rgb, scale, flip):
        """Softmax maps (C, h, w) at the network's resolution for one scale.

        Returns (probs, scaled_hw): scaled_hw is the size of the scaled (unpadded) image.
        """
        scaled_hw = scale_longer_side(image_rgb.shape[:2], scale)
        scaled = resize_image(image_rgb, scaled_hw)
        # After normalisation the mean colour is 0, so padding with 0 pads with the mean colour.
        data = pad_to_multiple(normalize(scaled), self.stride, 0.0)
        chw = np.ascontiguousarray(data.transpose(2, 0, 1))[None]
        if flip:
            batch = np.concatenate([chw, chw[:, :, :, ::-1]], axis=0)
            out = self._forward(np.ascontiguousarray(batch))
            probs = (out[0] + out[1][:, :, ::-1]) / 2
        else:
            probs = self._forward(chw)[0]
        return np.ascontiguousarray(probs, dtype=np.float32), scaled_hw

    def predict(self, image_rgb, scales, flip, timed=None):
        """Class probabilities (C, H, W) at the image's size, averaged over the test scales.

        `timed(step, fn, *args, **kwargs)` (e.g. evaluate.Timings.timed) may wrap each step,
        'network' or 'upsampling', to measure it.
        """
        timed = timed or _call
        total = None
        for scale in scales:
            net, scaled_hw = timed('network', self.network_probs, image_rgb, scale, flip)
            probs = timed('upsampling', upsample_probs, net, self.stride, scaled_hw,
                          image_rgb.shape[:2])
            total = probs if total is None else timed('upsampling', np.add, total, probs,
                                                      out=total)
        if len(scales) > 1:
            total /= len(scales)
        return total


def _call(step, fn, *args, **kwargs):
    return fn(*args, **kwargs)


def upsample_probs(net_probs, stride, scaled_hw, original_hw):
    """Step 3: bicubic upsampling by the stride, crop to the scaled size, resize to the original.

    Class by class on float32 (h, w) planes with Pillow, writing into the (C, H, W) result.
    """
    c, h, w = net_probs.shape
    up_hw = (h * stride, w * stride)
    oh, ow = original_hw
    out = np.empty((c, oh, ow), np.float32)
    final_filter = interp_filter(tuple(scaled_hw), (oh, ow))
    for k in range(c):
        up = resize_plane(net_probs[k], up_hw, Image.BICUBIC)
        cropped = up[:scaled_hw[0], :scaled_hw[1]]
        if tuple(scaled_hw) == (oh, ow):
            out[k] = cropped
        else:
            out[k] = resize_plane(cropped, (oh, ow), final_filter)
    return out
