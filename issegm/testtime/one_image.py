"""One image at test time, as yzou2/CBST issegm/solve_ST.py and evaluate.py (_val_impl,
interp_preds_as; docs/algorithm.md section 2, steps 1-2): Predictor.network_probs scales,
normalises and runs the network (with flipping and test steps) into maps at the network's
resolution; upsample_probs makes the full-size map from them.
"""
import os

import mxnet as mx
import numpy as np
from PIL import Image
from scipy import special

from util.flags import check_test_steps
from util.image import interp_filter, normalize, pad_to_multiple, resize_image, scale_longer_side
from util.prefetch import Prefetcher
from util.symbol.resnet38 import inference_symbol

__all__ = ['Predictor', 'make_predictors', 'softmax_float64', 'upsample_probs', 'UPSAMPLE_THREADS']

# Threads sharing out the class planes in Predictor.predict (Pillow releases the GIL while it
# resizes): the machines this runs on have at least 2 cores.
UPSAMPLE_THREADS = 2


class Predictor:
    """An inference Module for one model, re-shaped as image sizes change.

    `test_steps` N > 1 predicts at stride // N (steps 2 and 3 above); `upsample_threads`
    threads share the class planes of step 3 in `predict`. With `float64_softmax` the network
    ends at the logits and the softmax is computed in float64 (softmax_float64), as evaluate.py's
    network; otherwise in float32 by MXNet, as phase val's.
    """

    def __init__(self, model, arg_params, aux_params, ctx, stride, test_steps=1,
                 upsample_threads=UPSAMPLE_THREADS, float64_softmax=False):
        self.stride = stride
        self.test_steps = check_test_steps(test_steps, stride)
        self.pred_stride = stride // self.test_steps  # the stride of network_probs' maps
        self.upsample_threads = upsample_threads
        self.float64_softmax = float64_softmax
        self.ctx = ctx if isinstance(ctx, mx.Context) else ctx[0]
        self.symbol = partition_as_on_cpu0(
            inference_symbol(model, softmax=not float64_softmax), self.ctx)
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
        out = self.module.get_outputs()[0].asnumpy()
        return softmax_float64(out) if self.float64_softmax else out

    def _pass_probs(self, data_hwc, flip):
        """One network pass on a normalised (h, w, 3) input: (C, h', w') float32 softmax.

        The input is padded with zeros (after normalisation the mean colour is 0) to a multiple
        of the stride; the mirrored input is the padded one, as upstream. Both go in one batch
        (the images of a batch do not interact at test time).

        Deliberate deviation: upstream sizes its input once, from the first image of the split
        (make_divisible of its scaled size), so a later smaller image would get more zero
        padding and a larger one would not fit; here each image is padded to its own multiple
        of the stride. The same whenever the images share one size (Cityscapes).
        """
        padded = pad_to_multiple(data_hwc, self.stride, 0.0)
        chw = np.ascontiguousarray(padded.transpose(2, 0, 1))[None]
        if not flip:
            return self._forward(chw)[0]
        out = self._forward(np.ascontiguousarray(np.concatenate([chw, chw[:, :, :, ::-1]])))
        return 0.5 * (out[0] + out[1][:, :, ::-1])

    def network_probs(self, image_rgb, scale, flip):
        """Softmax maps (C, N*h, N*w) at stride // N for one scale (N = test_steps).

        Returns (probs, scaled_hw): scaled_hw is the size of the scaled (unpadded) image.
        """
        scaled_hw = scale_longer_side(image_rgb.shape[:2], scale)
        data = normalize(resize_image(image_rgb, scaled_hw))
        steps = self.test_steps
        if steps == 1:
            probs = self._pass_probs(data, flip)
            return np.ascontiguousarray(probs, dtype=np.float32), scaled_hw
        # yzou2/CBST issegm/solve_ST.py, _val_impl: the image sits in a zero canvas at offset
        # stride // 2; pass (ix, iy) reads the image-sized window at (starts[iy], starts[ix]),
        # starts = pred_stride // 2 + k * pred_stride, and its map fills every N-th row from iy
        # and every N-th column from ix (loops: ix outer, iy inner).
        h, w = scaled_hw
        offset = self.stride // 2
        canvas = np.zeros((h + self.stride, w + self.stride, 3), np.float32)
        canvas[offset:offset + h, offset:offset + w] = data
        starts = self.pred_stride // 2 + np.arange(steps) * self.pred_stride
        probs = None
        for ix in range(steps):
            for iy in range(steps):
                y, x = starts[iy], starts[ix]
                one = self._pass_probs(canvas[y:y + h, x:x + w], flip)
                if probs is None:
                    probs = np.zeros((one.shape[0], one.shape[1] * steps, one.shape[2] * steps),
                                     np.float32)
                probs[:, iy::steps, ix::steps] = one
        return probs, scaled_hw

    def predict(self, image_rgb, scales, flip, timed=None):
        """Class probabilities (C, H, W) at the image's size, averaged over the test scales.

        `timed(step, fn, *args, **kwargs)` (e.g. evaluate.Timings.timed) may wrap each step,
        'network' or 'upsampling', to measure it.
        """
        timed = timed or _call
        total = None
        for scale in scales:
            net, scaled_hw = timed('network', self.network_probs, image_rgb, scale, flip)
            probs = timed('upsampling', upsample_probs, net, self.pred_stride, scaled_hw,
                          image_rgb.shape[:2], self.upsample_threads)
            total = probs if total is None else timed('upsampling', np.add, total, probs,
                                                      out=total)
        if len(scales) > 1:
            total /= len(scales)
        return total


def partition_as_on_cpu0(symbol, ctx):
    """The symbol as MXNet optimises it on cpu(0), for binding on `ctx`.

    MXNet's default CPU graph optimisation (the MKLDNN subgraph backend, MXNET_SUBGRAPH_BACKEND,
    which fuses operators, changing float sums in the last bits) applies only to executors on
    cpu(0), the context the backend is registered for. On cpu(1), cpu(2), ... (`--gpus cpu:N`)
    the same partition is made here, so every CPU context gives cpu(0)'s numbers.
    """
    if ctx.device_type != 'cpu' or ctx.device_id == 0:
        return symbol
    default = 'MKLDNN' if mx.runtime.Features().is_enabled('MKLDNN') else ''
    if os.environ.get('MXNET_SUBGRAPH_BACKEND', default) != 'MKLDNN':
        return symbol
    return symbol.get_backend_symbol('MKLDNN')


def make_predictors(model, arg_params, aux_params, contexts, stride, test_steps=1,
                    float64_softmax=False):
    """One Predictor per device (MXNet context), sharing the host copy of the weights."""
    return [Predictor(model, arg_params, aux_params, ctx, stride, test_steps,
                      float64_softmax=float64_softmax) for ctx in contexts]


def softmax_float64(logits):
    """Softmax over the channels (axis 1) of (N, C, h, w) logits, computed in float64 and
    rounded to float32. QUIRK kept: yzou2/CBST evaluate.py builds its network with
    bootstrapping=True, whose output is util/symbol/layer.py's OhemSoftmax custom op; its forward
    takes exp(x - max) / sum in float64 and stores float32 (phase val, solve_ST.py, uses MXNet's
    float32 SoftmaxOutput). The last bits decide near-ties of the argmax and the saved scores."""
    return special.softmax(logits.astype(np.float64), axis=1).astype(np.float32)


def _call(step, fn, *args, **kwargs):
    return fn(*args, **kwargs)


def _copy_image_into(out, image):
    """Copy a Pillow 'F' image into the float32 (h, w) C-contiguous array `out`.

    Pillow's pixel copy (paste) into an image mapped on `out`'s memory: one copy, where
    np.asarray(image) costs two (tobytes, then into `out`) and takes longer than the bicubic
    resize itself. Image.core.map_buffer is what Image.frombuffer uses for the modes it maps.
    """
    if not (out.dtype == np.float32 and out.flags.c_contiguous and out.flags.writeable
            and out.shape == (image.height, image.width) and image.mode == 'F'):
        raise ValueError('cannot copy a %s %s image into a %s %s array'
                         % (image.mode, image.size, out.dtype, out.shape))
    target = Image.core.map_buffer(out, image.size, 'raw', 0, ('F', 0, 1))
    target.paste(image.im, (0, 0) + image.size)


def upsample_probs(net_probs, pred_stride, scaled_hw, original_hw, threads=1, out=None):
    """Step 3: bicubic upsampling by `pred_stride`, crop to the scaled size, resize to the
    original size (yzou2/CBST issegm/solve_ST.py, _interp_preds_as_impl).

    Class by class on float32 planes with Pillow, `threads` planes at a time (Pillow releases
    the GIL while resizing), written into the (C, H, W) float32 result: `out` when given (a
    reused array saves the page faults of a fresh one, about a third of the time at 2048x1024).

    Deliberate deviation: upstream skips the last resize when only the HEIGHTS agree
    (`if imh0 == imh`), which returns a map of the scaled width for an image whose width
    differs (e.g. 2049x1024 at scale 2048: scaled 2048x1024), a label map that no longer fits
    its image; here the last resize is skipped only when both sides agree.
    """
    net_probs = np.ascontiguousarray(net_probs, dtype=np.float32)
    c, h, w = net_probs.shape
    sh, sw = (int(v) for v in scaled_hw)
    oh, ow = (int(v) for v in original_hw)
    final_filter = interp_filter((sh, sw), (oh, ow)) if (sh, sw) != (oh, ow) else None
    if out is None:
        out = np.empty((c, oh, ow), np.float32)
    elif out.shape != (c, oh, ow) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError('out must be a C-contiguous float32 array of shape %s, got %s %s'
                         % ((c, oh, ow), out.dtype, out.shape))

    def one_class(k):
        up = Image.fromarray(net_probs[k]).resize((w * pred_stride, h * pred_stride),
                                                  Image.BICUBIC)
        if up.size != (sw, sh):
            up = up.crop((0, 0, sw, sh))
        if final_filter is not None:
            up = up.resize((ow, oh), final_filter)
        _copy_image_into(out[k], up)

    workers = threads if threads > 1 else 0  # 0: in this thread
    with Prefetcher(one_class, num_workers=workers, kind='thread', ahead=c) as planes:
        for _ in planes.map(range(c)):
            pass
    return out
