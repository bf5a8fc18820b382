"""Image helpers shared by training crops and the test-time path (OpenCV based).

* Normalisation (SPEC 3): RGB / 255, minus MEAN, divided by STD, float32.
* Resizing rules of the original implementation: bicubic when both sides grow, area
  (antialiasing) when both shrink, bilinear when mixed (one grows and one shrinks, or one side
  keeps its size). Labels are resized with nearest neighbour, pixel-centre aligned (the
  convention of PIL's NEAREST: destination pixel i reads source pixel
  floor((i + 0.5) * src / dst)).
* Padding uses the mean colour (MEAN_UINT8 for uint8 images, 0.0 after normalisation).
"""
import cv2
import numpy as np

__all__ = ['MEAN', 'STD', 'MEAN_UINT8', 'resize_interpolation', 'resize_image', 'resize_label',
           'nearest_indices', 'normalize', 'normalize_chw', 'scale_longer_side',
           'pad_to_multiple']

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# The mean colour as an 8-bit RGB triple, (124, 116, 104): the fill of padded uint8 canvases.
MEAN_UINT8 = tuple(int(round(m * 255)) for m in MEAN)

# x_normalised = x_uint8 * _SCALE - _OFFSET == (x / 255 - MEAN) / STD
_SCALE = (1.0 / (255.0 * np.asarray(STD))).astype(np.float32)
_OFFSET = (np.asarray(MEAN) / np.asarray(STD)).astype(np.float32)

# cv2.resize handles at most 512 channels, and INTER_AREA with a non-integer shrink factor at
# most 4; more channels are resized in chunks.
_MAX_CHANNELS = 512
_MAX_AREA_CHANNELS = 4


def _check_size(size):
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError('target size must be positive, got %s' % (size,))
    return h, w


def resize_interpolation(src_hw, dst_hw):
    """The OpenCV interpolation flag of the resizing rules for a (h, w) -> (h, w) resize."""
    (h, w), (th, tw) = src_hw, dst_hw
    if th > h and tw > w:
        return cv2.INTER_CUBIC
    if th < h and tw < w:
        return cv2.INTER_AREA
    return cv2.INTER_LINEAR


def _cv_resize(img, h, w, interp):
    out = cv2.resize(img, (w, h), interpolation=interp)
    if img.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[:, :, None]
    return out


def resize_image(img, size):
    """Resize an (H, W) or (H, W, C) image to size = (h, w) with the resizing rules.

    Works for uint8 RGB images and float32 maps with any number of channels (e.g. 19 class
    score maps), resized in chunks where OpenCV limits the channel count. A same-size resize
    returns a copy.
    """
    img = np.asarray(img)
    h, w = _check_size(size)
    if img.ndim not in (2, 3):
        raise ValueError('expected an (H, W) or (H, W, C) image, got shape %s' % (img.shape,))
    if img.shape[:2] == (h, w):
        return img.copy()
    interp = resize_interpolation(img.shape[:2], (h, w))
    channels = 1 if img.ndim == 2 else img.shape[2]
    chunk = _MAX_AREA_CHANNELS if interp == cv2.INTER_AREA else _MAX_CHANNELS
    if channels <= chunk:
        return _cv_resize(np.ascontiguousarray(img), h, w, interp)
    out = np.empty((h, w, channels), img.dtype)
    for c in range(0, channels, chunk):
        out[:, :, c:c + chunk] = _cv_resize(np.ascontiguousarray(img[:, :, c:c + chunk]),
                                            h, w, interp)
    return out


def nearest_indices(src_len, dst_len):
    """Source index of each destination index of a pixel-centre nearest resize (int64)."""
    idx = ((np.arange(dst_len, dtype=np.float64) + 0.5) * (src_len / float(dst_len))).astype(
        np.int64)
    return np.minimum(idx, src_len - 1)


def resize_label(label, size):
    """Nearest-neighbour resize of a label map (ids stay exact), pixel-centre aligned."""
    label = np.asarray(label)
    h, w = _check_size(size)
    if label.shape[:2] == (h, w):
        return label.copy()
    rows = nearest_indices(label.shape[0], h)
    cols = nearest_indices(label.shape[1], w)
    return label[rows[:, None], cols[None, :]]


def normalize(img):
    """uint8 RGB (H, W, 3) -> float32 (H, W, 3): (img / 255 - MEAN) / STD."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError('expected an (H, W, 3) RGB image, got shape %s' % (img.shape,))
    out = img.astype(np.float32)
    out *= _SCALE
    out -= _OFFSET
    return out


def normalize_chw(img):
    """uint8 RGB (H, W, 3) -> normalised float32 (3, H, W), the network's input layout."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError('expected an (H, W, 3) RGB image, got shape %s' % (img.shape,))
    out = np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32)
    out *= _SCALE[:, None, None]
    out -= _OFFSET[:, None, None]
    return out


def scale_longer_side(shape, scale):
    """(h, w) of an image of shape (H, W, ...) scaled so that its longer side equals `scale`.

    The shorter side is int(round(short * scale / long)). Note that Python 3's round() breaks
    exact .5 ties to the even integer (Python 2 rounded them away from zero); for the dataset
    sizes (1024x2048, 1052x1914, 760x1280) at the usual test scales no tie occurs.
    A square image gives (scale, scale).
    """
    h, w = int(shape[0]), int(shape[1])
    scale = int(scale)
    if h >= w:
        return scale, max(1, int(round(w * scale / float(h))))
    return max(1, int(round(h * scale / float(w)))), scale


def pad_to_multiple(arr, stride, value=0):
    """Pad (H, W[, C]) at the bottom and right so that H and W are multiples of `stride`.

    `value` is a scalar or one value per channel (e.g. MEAN_UINT8). Returns `arr` itself when
    no padding is needed.
    """
    arr = np.asarray(arr)
    stride = int(stride)
    h, w = arr.shape[:2]
    ph = -(-h // stride) * stride
    pw = -(-w // stride) * stride
    if (ph, pw) == (h, w):
        return arr
    out = np.empty((ph, pw) + arr.shape[2:], arr.dtype)
    out[...] = np.asarray(value, dtype=arr.dtype)
    out[:h, :w] = arr
    return out
