"""One listed sample of prepare_data.py, checked from its headers and, for GTA-5 (resized to
--size) and SYNTHIA (GT/LABELS -> GT/labels), converted in place; each file written atomically."""
import collections
import functools
import os

import cv2
import numpy as np
from PIL import Image

from issegm.datacheck.headers import (header_or_problem, image_problems, label_problems,
                                      pair_problems)
from issegm.datacheck.id_space import label_counts
from issegm.datacheck.problems import Problem
from issegm.datasets import read_image, read_label
from util.errors import UserError
from util.files import atomic_path
from util.image import resize_image, resize_label

ASPECT_TOLERANCE = 0.02  # a mismatched GTA-5 pair is resized when its aspect ratios agree so

SYNTHIA_RAW_LABELS = os.path.join('GT', 'LABELS')

# One sample's outcome: paths relative to the root, sizes as found ('WxH' or None), files
# written now, pixels per label value (256,) or None, [Problem].
Prepared = collections.namedtuple('Prepared', 'image label image_size label_size written counts '
                                              'problems')


def _size(header):
    return None if header is None else '%dx%d' % (header.width, header.height)


def write_png_atomic(path, array, palette=None):
    """A uint8 array as PNG (palette image when a palette list is given), written under a
    temporary name beside the target and renamed (util.files.atomic_path, which removes it on
    any error or interrupt), so that an interrupted run never leaves half a file."""
    img = Image.fromarray(np.ascontiguousarray(array))
    if palette is not None:
        img.putpalette(palette)
    with atomic_path(path) as tmp:
        img.save(tmp, format='PNG')


def _same_aspect(a, b):
    return abs(a[0] / a[1] - b[0] / b[1]) <= ASPECT_TOLERANCE * (b[0] / b[1])


def _label_palette(path):
    with Image.open(path) as img:
        return img.getpalette() if img.mode == 'P' else None


def _resize_gta(image, label, ih, lh, size):
    """Resize the files of a checked pair in place to size (w, h); (files written, counts)."""
    written = 0
    if (ih.width, ih.height) != size:
        write_png_atomic(image, resize_image(read_image(image), size[::-1]))
        written += 1
    ids = read_label(label)
    if (lh.width, lh.height) != size:
        ids = resize_label(ids, size[::-1])
        write_png_atomic(label, ids, _label_palette(label))
        written += 1
    return written, np.bincount(ids.ravel(), minlength=256).astype(np.int64)


def prepare_gta_sample(pair, root, size):
    """Check one GTA-5 pair and resize it in place to `size` (w, h); a Prepared."""
    image, label = (os.path.join(root, p) for p in pair)
    ih, problems = header_or_problem(image, 'image')
    lh, label_found = header_or_problem(label, 'label')
    problems += (image_problems(image, ih) if ih else []) + label_found
    problems += label_problems(label, lh) if lh else []
    done = functools.partial(Prepared, pair[0], pair[1], _size(ih), _size(lh))
    if problems:
        return done(0, None, problems)
    if not _same_aspect((ih.width, ih.height), (lh.width, lh.height)):
        return done(0, None, [Problem(label, 'size-mismatch', (
            'label is %dx%d but its image %s is %dx%d: aspect ratios too different to fix by '
            'resizing (is it the right label?)' % (lh.width, lh.height, image, ih.width,
                                                   ih.height)))])
    try:
        written, counts = _resize_gta(image, label, ih, lh, size)
    except UserError as e:
        return done(0, None, [Problem(label, 'decode', str(e))])
    except OSError as e:  # a read-only dataset folder (a full disk is a UserError already)
        return done(0, None, [_write_problem(image, e)])
    return done(written, counts, [])


def _write_problem(path, error):
    return Problem(path, 'write', 'cannot write the prepared file in place (%s): the dataset '
                                  'folder must be writable' % error.strerror)


def _prepared_synthia_label(out, image_header):
    """Pixel counts of an existing GT/labels file that verifies (8-bit one-channel PNG,
    complete, the image's size, decodes), else None."""
    if image_header is None or not os.path.isfile(out):
        return None
    header, problems = header_or_problem(out, 'label')
    if problems or label_problems(out, header) or header.colour != 'grayscale' or \
            (header.width, header.height) != (image_header.width, image_header.height):
        return None
    try:
        return label_counts(out)
    except UserError:
        return None


def _convert_synthia_label(raw, out):
    """GT/LABELS (16-bit, 3 or 4 channels, class id in R) -> GT/labels (8-bit ids); returns
    (ids, []) or (None, [Problem])."""
    header, problems = header_or_problem(raw, 'raw label')
    if problems:
        return None, problems
    if header.format != 'PNG' or header.depth != 16 or header.colour not in ('RGB', 'RGBA'):
        return None, [Problem(raw, 'label-mode', 'raw SYNTHIA label is a %d-bit %s %s; '
                              'expected SYNTHIA-RAND-CITYSCAPES\' 16-bit RGB PNG'
                              % (header.depth, header.colour, header.format))]
    bgr = cv2.imread(raw, cv2.IMREAD_UNCHANGED)  # 16 bits kept; channels in B, G, R(, A) order
    if bgr is None or bgr.ndim != 3:
        return None, [Problem(raw, 'decode', 'cannot decode the raw SYNTHIA label')]
    red = bgr[:, :, 2]
    if red.max() > 255:
        return None, [Problem(raw, 'label-ids', 'raw SYNTHIA label has class ids up to %d in '
                              'its R channel; SYNTHIA ids are 0..22' % red.max())]
    ids = red.astype(np.uint8)
    try:
        write_png_atomic(out, ids)
    except OSError as e:  # a read-only dataset folder (a full disk is a UserError already)
        return None, [_write_problem(out, e)]
    return ids, []


def prepare_synthia_sample(pair, root):
    """Check one SYNTHIA image and make its GT/labels file from GT/LABELS unless it exists and
    verifies; a Prepared."""
    image, out = (os.path.join(root, p) for p in pair)
    raw = os.path.join(root, SYNTHIA_RAW_LABELS, os.path.basename(out))
    ih, problems = header_or_problem(image, 'image')
    problems += image_problems(image, ih) if ih else []
    counts = _prepared_synthia_label(out, ih)
    if counts is not None:
        return Prepared(pair[0], pair[1], _size(ih), _size(ih), 0, counts, problems)
    if not os.path.isfile(raw):
        return Prepared(pair[0], pair[1], _size(ih), None, 0, None, problems + [Problem(
            raw, 'missing', 'raw label not found (nor a finished %s)' % pair[1])])
    rh, _ = header_or_problem(raw, 'raw label')
    if ih is not None and rh is not None and (rh.width, rh.height) != (ih.width, ih.height):
        return Prepared(pair[0], pair[1], _size(ih), _size(rh), 0, None, problems + [Problem(
            raw, 'size-mismatch', 'raw label is %s but its image %s is %s'
            % (_size(rh), image, _size(ih)))])
    ids, converted = _convert_synthia_label(raw, out)
    counts = None if ids is None else np.bincount(ids.ravel(), minlength=256).astype(np.int64)
    return Prepared(pair[0], pair[1], _size(ih), _size(rh), int(ids is not None), counts,
                    problems + converted)


def check_sample(pair, root):
    """Headers of one listed pair and its label's pixel counts (Cityscapes); a Prepared."""
    image = os.path.join(root, pair[0])
    label = None if pair[1] is None else os.path.join(root, pair[1])
    problems, label_ok = pair_problems(image, label)
    ih, _ = header_or_problem(image, 'image')
    lh = header_or_problem(label, 'label')[0] if label else None
    counts = None
    if label_ok:
        try:
            counts = label_counts(label)
        except UserError as e:
            problems.append(Problem(label, 'decode', str(e)))
    return Prepared(pair[0], pair[1], _size(ih), _size(lh), 0, counts, problems)
