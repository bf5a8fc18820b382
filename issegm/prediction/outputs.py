"""predict.py's output kinds: which are asked for, where each is written (OUTPUT/KIND/NAME.png,
probs/NAME.npz), and one prediction rendered and written as each kind."""
import collections
import functools
import os

import cv2
import numpy as np

from issegm.datasets import write_png
from util.errors import UserError
from util.files import write_atomically

DEFAULT_KINDS = ('labelIds', 'trainIds', 'color', 'overlay')
KINDS = DEFAULT_KINDS + ('confidence', 'entropy', 'probs')
# One image's prediction: the RGB image, argmax train ids, top probability, class probabilities
# (C, H, W) or None when no output needs them.
Prediction = collections.namedtuple('Prediction', 'image train_ids top probs')


def requested_kinds(outputs, confidence=False, save_probs=False):
    """The output kinds of --outputs (comma-separated), --confidence and --save-probs, in the
    order of KINDS."""
    kinds = {k.strip() for k in (outputs or '').split(',') if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UserError('unknown --outputs kind %r (allowed: %s)' % (unknown[0], ','.join(KINDS)))
    kinds |= {'confidence', 'entropy'} if confidence else set()
    kinds |= {'probs'} if save_probs else set()
    return tuple(k for k in KINDS if k in kinds)


def output_path(output, kind, name):
    """OUTPUT/KIND/NAME.png (OUTPUT/probs/NAME.npz)."""
    return os.path.join(output, kind, name + ('.npz' if kind == 'probs' else '.png'))


def is_finished(output, name, kinds):
    return all(os.path.isfile(output_path(output, kind, name)) for kind in kinds)


def confidence_map(top):
    """uint8 (H, W): the top class probability, clipped to [0, 1], x 255, rounded."""
    return np.rint(np.clip(top, 0.0, 1.0) * 255.0).astype(np.uint8)


def entropy_map(probs):
    """uint8 (H, W): the entropy -sum_k p_k log p_k of the (C, H, W) probabilities (clipped to
    [0, 1]; 0 log 0 = 0) divided by log C, clipped to [0, 1], x 255, rounded. float64, class by
    class (one (H, W) plane at a time)."""
    num_classes = probs.shape[0]
    total = np.zeros(probs.shape[1:], np.float64)
    p, log_p = np.empty_like(total), np.empty_like(total)
    for k in range(num_classes):
        np.clip(probs[k], 0.0, 1.0, out=p)
        log_p.fill(0.0)
        np.log(p, out=log_p, where=p > 0)
        p *= log_p
        total -= p
    scaled = total / np.log(num_classes) if num_classes > 1 else total
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def overlay_image(image_rgb, colors_rgb, opacity):
    """uint8 (H, W, 3): (1 - opacity) x image + opacity x colours, rounded (cv2.addWeighted:
    exactly NumPy's rounding at opacities like 0.5 or 0.25, within 1 level otherwise)."""
    return cv2.addWeighted(np.ascontiguousarray(image_rgb), 1.0 - opacity,
                           np.ascontiguousarray(colors_rgb), opacity, 0.0)


def render(info, kinds, opacity, prediction):
    """{kind: array} of one prediction for the requested `kinds` (color: the label ids, shown
    with the dataset's palette when written)."""
    out = {}
    label_ids = info.train_to_label[prediction.train_ids]
    for kind in kinds:
        if kind in ('labelIds', 'color'):
            out[kind] = label_ids
        elif kind == 'trainIds':
            out[kind] = prediction.train_ids
        elif kind == 'overlay':
            out[kind] = overlay_image(prediction.image, info.palette[label_ids], opacity)
        elif kind == 'confidence':
            out[kind] = confidence_map(prediction.top)
        elif kind == 'entropy':
            out[kind] = entropy_map(prediction.probs)
        elif kind == 'probs':
            out[kind] = prediction.probs.astype(np.float16)
    return out


def save_probs(path, probs):
    """np.savez(path, probs=probs), atomically. Not compressed: zlib takes 5-7 s per 2048x1024
    19-class image and saves 20-60%."""
    write_atomically(path, functools.partial(np.savez, probs=probs))


def write_rgb_png(path, rgb):
    """An RGB PNG, atomically, with OpenCV: zlib level 1 with run-length matching, about 2x
    Pillow's speed on photos (0.35 s against 0.8 s per 2048x1024 image) and no larger."""
    ok, encoded = cv2.imencode('.png', np.ascontiguousarray(rgb[:, :, ::-1]),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise RuntimeError('OpenCV could not encode %s' % path)
    write_atomically(path, lambda f: f.write(encoded.tobytes()))


def save_rendered(output, name, rendered, palette):
    """Write every rendered output of image NAME (each file atomically)."""
    for kind, array in rendered.items():
        path = output_path(output, kind, name)
        if kind == 'probs':
            save_probs(path, array)
        elif kind == 'overlay':
            write_rgb_png(path, array)
        else:
            write_png(path, array, palette if kind == 'color' else None)
