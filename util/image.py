"""Image helpers shared by the training crops and the test-time path: every resize of yzou2/CBST
goes through Pillow with its filter rule (yzou2/CBST util/util.py get_interp_method), and
the normalisation gives the original's float32 values (yzou2/CBST util/transformer.py
ColorScale, ColorNormalize); docs/algorithm.md section 2, step 1.
"""
import numpy as np
from PIL import Image

__all__ = ['MEAN', 'STD', 'PAD_UINT8', 'interp_filter', 'resize_image', 'resize_plane',
           'resize_label', 'normalize', 'normalize_chw', 'scale_longer_side', 'pad_to_multiple']

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Fill of a uint8 training crop outside the image. QUIRK kept: yzou2/CBST `issegm/data.py`
# (FileIter._read) fills a float canvas with the mean colour 255 * MEAN and casts the crop to
# uint8, which truncates: (123, 116, 103), not the rounded (124, 116, 104).
PAD_UINT8 = tuple(int(255 * np.float64(m)) for m in MEAN)


def _normalisation_table():
    """(256, 3) float32: the original's normalised value of each uint8 level per channel.
    QUIRK kept (yzou2/CBST util/transformer.py, ColorScale, ColorNormalize): times float32
    1/255, then minus the mean and over the std in float64, stored float32."""
    scaled = np.arange(256, dtype=np.float32) * np.float32(1.0 / 255)  # float32 product
    table = (scaled.astype(np.float64)[:, None] - np.asarray(MEAN)) / np.asarray(STD)
    return np.ascontiguousarray(table.astype(np.float32).T)  # (3, 256)


_TABLE = _normalisation_table()


def _check_size(size):
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError('target size must be positive, got %s' % (size,))
    return h, w


def interp_filter(src_hw, dst_hw):
    """Pillow filter of the original's `get_interp_method(h_src, w_src, h_dst, w_dst)`."""
    (h, w), (th, tw) = src_hw, dst_hw
    if th < h and tw < w:
        return Image.LANCZOS
    if th > h and tw > w:
        return Image.BICUBIC
    return Image.BILINEAR


def resize_image(img, size, resample=None):
    """Resize a uint8 (H, W, 3) or (H, W) image to size = (h, w) with Pillow.

    `resample` defaults to `interp_filter` of the two sizes. Same size: an unchanged copy.
    """
    img = np.asarray(img)
    h, w = _check_size(size)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError('expected a uint8 (H, W[, 3]) image, got %s %s' % (img.dtype, img.shape))
    if img.shape[:2] == (h, w):
        return img.copy()
    if resample is None:
        resample = interp_filter(img.shape[:2], (h, w))
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((w, h), resample))


def resize_plane(plane, size, resample):
    """Resize one float32 (H, W) map as a Pillow 'F' image (as the original's class maps)."""
    h, w = _check_size(size)
    plane = np.ascontiguousarray(plane, dtype=np.float32)
    if plane.ndim != 2:
        raise ValueError('expected an (H, W) map, got shape %s' % (plane.shape,))
    return np.asarray(Image.fromarray(plane, mode='F').resize((w, h), resample))


def resize_label(label, size):
    """Nearest-neighbour resize of a uint8 label map with Pillow (ids stay exact)."""
    return resize_image(label, size, Image.NEAREST)


def normalize(img):
    """uint8 RGB (H, W, 3) -> float32 (H, W, 3), bit-identical to the original's transform."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError('expected a uint8 (H, W, 3) RGB image, got %s %s'
                         % (img.dtype, img.shape))
    out = np.empty(img.shape, np.float32)
    for c in range(3):
        np.take(_TABLE[c], img[:, :, c], out=out[:, :, c])
    return out


def normalize_chw(img):
    """uint8 RGB (H, W, 3) -> normalised float32 (3, H, W), the network's input layout."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError('expected a uint8 (H, W, 3) RGB image, got %s %s'
                         % (img.dtype, img.shape))
    out = np.empty((3,) + img.shape[:2], np.float32)
    for c in range(3):
        np.take(_TABLE[c], img[:, :, c], out=out[c])
    return out


def scale_longer_side(shape, scale):
    """(h, w) of an image of shape (H, W, ...) scaled so that its longer side equals `scale`.

    As the original's `Scale(size, shorter_side=False)` (yzou2/CBST `util/transformer.py`): the
    other side is int(np.round(scale * short / long)); np.round rounds halves to even in
    Python 2 and 3 alike (QUIRK kept). A square image gives (scale, scale).
    """
    h, w = int(shape[0]), int(shape[1])
    scale = int(scale)
    if max(h, w) == w:
        return max(1, int(np.round(1.0 * scale * h / w))), scale
    return scale, max(1, int(np.round(1.0 * scale * w / h)))


def pad_to_multiple(arr, stride, value=0):
    """Pad (H, W[, C]) at the bottom and right so that H and W are multiples of `stride`.

    `value` is a scalar or one value per channel. Returns `arr` itself when no padding is
    needed.
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
