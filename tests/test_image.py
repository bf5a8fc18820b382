"""util.image against plain restatements of the original's Pillow resizes and normalisation
(yzou2/CBST util/util.py get_interp_method, util/transformer.py Scale/ColorScale/ColorNormalize)."""
import numpy as np
import pytest
from PIL import Image

from util import image as uimg


def original_interp(h, w, th, tw):
    # get_interp_method with cfg['choose_interpolation_method'] = True
    if th < h and tw < w:
        return Image.LANCZOS
    if th > h and tw > w:
        return Image.BICUBIC
    return Image.BILINEAR


def test_filter_rule():
    assert uimg.interp_filter((10, 10), (20, 30)) == Image.BICUBIC
    assert uimg.interp_filter((10, 10), (5, 8)) == Image.LANCZOS
    assert uimg.interp_filter((10, 10), (5, 30)) == Image.BILINEAR
    assert uimg.interp_filter((10, 10), (10, 30)) == Image.BILINEAR
    assert uimg.interp_filter((10, 10), (10, 10)) == Image.BILINEAR


@pytest.mark.parametrize('size', [(80, 90), (29, 21), (20, 90), (40, 60)])
def test_resize_image_is_pillow_with_the_rule(size):
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (40, 60, 3)).astype(np.uint8)
    ours = uimg.resize_image(img, size)
    ref = np.array(Image.fromarray(img).resize(size[::-1], original_interp(40, 60, *size)))
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == np.uint8


def test_resize_plane_float_mode():
    rng = np.random.RandomState(2)
    plane = rng.rand(16, 32).astype(np.float32)
    ours = uimg.resize_plane(plane, (128, 256), Image.BICUBIC)
    ref = np.array(Image.fromarray(plane).resize((256, 128), Image.BICUBIC))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)


def test_resize_label_is_pillow_nearest():
    rng = np.random.RandomState(1)
    label = rng.randint(0, 20, (37, 53)).astype(np.uint8)
    for size in [(74, 106), (12, 17), (37, 200), (5, 5), (100, 3), (504, 504)]:
        ref = np.array(Image.fromarray(label).resize(size[::-1], Image.NEAREST))
        np.testing.assert_array_equal(uimg.resize_label(label, size), ref)


def test_normalize_is_the_original_float_path():
    rng = np.random.RandomState(3)
    img = rng.randint(0, 256, (20, 30, 3)).astype(np.uint8)
    img[0, :3] = [[0, 0, 0], [255, 255, 255], [123, 116, 103]]
    # ColorScale(np.single(1/255)) on float32, then ColorNormalize with float64 mean/std,
    # stored into a float32 array.
    data = img.astype(np.float32)
    data *= np.single(1.0 / 255)
    data = data.astype(np.float64)
    data -= np.array([0.485, 0.456, 0.406]).reshape((1, 1, 3))
    data /= np.array([0.229, 0.224, 0.225]).reshape((1, 1, 3))
    ref = data.astype(np.float32)
    np.testing.assert_array_equal(uimg.normalize(img), ref)
    np.testing.assert_array_equal(uimg.normalize_chw(img), ref.transpose(2, 0, 1))


def test_pad_colour_truncates_like_the_uint8_cast():
    # data.py fills a float32 canvas with mean * 255 and casts the crop with astype(np.uint8)
    canvas = np.zeros((1, 1, 3), np.single) + np.array([0.485, 0.456, 0.406]) * 255
    assert uimg.PAD_UINT8 == tuple(canvas.astype(np.uint8)[0, 0]) == (123, 116, 103)


def test_scale_longer_side_as_transformer_scale():
    def scale(h, w, size):  # ts.Scale(size, shorter_side=False)
        if max(h, w) == size:
            return h, w
        if max(h, w) == w:
            return int(np.round(1. * size * h / w)), size
        return size, int(np.round(1. * size * w / h))
    for h, w, size in [(1024, 2048, 1850), (1052, 1914, 1914), (2048, 1024, 1024), (10, 10, 7),
                       (760, 1280, 1024), (100, 300, 50), (5, 10, 7), (128, 256, 160)]:
        assert uimg.scale_longer_side((h, w), size) == scale(h, w, size)


def test_pad_to_multiple():
    a = np.ones((10, 17, 3), np.uint8)
    p = uimg.pad_to_multiple(a, 8, uimg.PAD_UINT8)
    assert p.shape == (16, 24, 3)
    assert (p[10:, :] == uimg.PAD_UINT8).all() and (p[:10, :17] == 1).all()
    assert uimg.pad_to_multiple(np.zeros((16, 8)), 8).shape == (16, 8)
    assert uimg.pad_to_multiple(np.zeros((3, 5), np.float32), 4, 255).shape == (4, 8)
