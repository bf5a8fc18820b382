"""predict.py's inputs: images, folders (searched recursively), list files and videos, each
checked before any is predicted (cheaply, from headers; a video read through once)."""
import collections
import contextlib
import os
import sys

import cv2

from issegm.datacheck.headers import (HeaderError, png_chunk_problem, read_header,
                                      truncation_problems)
from issegm.datacheck.lists import check_unique_names
from issegm.datasets import read_list, sample_name
from util.errors import UserError, file_error, require_dir, require_file

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_FPS = 25.0  # when a video does not say its frame rate

Video = collections.namedtuple('Video', 'path name frames fps size')  # size: (height, width)


def is_image_name(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def frame_name(stem, index):
    """Output NAME of frame `index` (from 0) of the video STEM.EXT."""
    return '%s_%06d' % (stem, index)


def folder_images(folder, skip=None):
    """Image files under `folder`, recursively, sorted; `skip` (a folder) is left out."""
    skip = os.path.realpath(skip) if skip else None
    found = []
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames
                             if os.path.realpath(os.path.join(dirpath, d)) != skip)
        found += [os.path.join(dirpath, n) for n in sorted(names) if is_image_name(n)]
    if not found:
        raise UserError('no images (%s) in folder %s'
                        % (', '.join(e[1:] for e in IMAGE_EXTENSIONS), folder))
    return found


def list_images(path, data_root=None):
    """The images of a `.lst` file: relative to `data_root` when given, else to its folder."""
    base = require_dir(data_root, 'data root') if data_root else \
        os.path.dirname(os.path.abspath(path))
    return [os.path.join(base, image) for image, _ in read_list(path)]


def opencv_max_pixels():
    """The most pixels OpenCV decodes in one image: its CV_IO_MAX_IMAGE_PIXELS (environment
    variable; default 2^30, opencv modules/imgcodecs/src/loadsave.cpp)."""
    try:
        return int(os.environ.get('CV_IO_MAX_IMAGE_PIXELS', 1 << 30))
    except ValueError:
        return 1 << 30


def check_image(path):
    """A UserError unless `path` is an image OpenCV decodes, checked cheaply (no pixel decoded)
    before any image is predicted: a reader for its format, a header, a size OpenCV accepts, the
    end marker of a PNG or JPEG (a truncated file), the chunks' CRCs of a PNG."""
    require_file(path, 'image')
    if not cv2.haveImageReader(path):
        raise UserError('cannot read image %s: not an image OpenCV can decode (corrupt, or '
                        'another format)' % path)
    try:
        header = read_header(path)
    except (OSError, HeaderError) as e:
        raise UserError('cannot read image %s: %s' % (path, e))
    pixels = header.width * header.height
    if not 0 < pixels <= opencv_max_pixels():
        raise UserError('cannot read image %s: its header says %dx%d, %d pixels, and OpenCV '
                        'decodes 1 to %d (CV_IO_MAX_IMAGE_PIXELS)'
                        % (path, header.width, header.height, pixels, opencv_max_pixels()))
    truncated = truncation_problems(path, header, 'image')
    if truncated:
        raise UserError('%s: %s' % (path, truncated[0].message))
    corrupt = png_chunk_problem(path) if header.format == 'PNG' else None
    if corrupt:
        raise UserError('cannot read image %s: %s' % (path, corrupt))


@contextlib.contextmanager
def quiet_stderr():
    """Silence C-level messages on stderr (FFmpeg's and OpenCV's video readers print their
    own) while a video is probed: a bad video is reported as one line."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def probe_video(path):
    """A Video: decodes the first frame (its size) and counts the frames by reading them all
    once (containers' frame counts are estimates); unreadable is a UserError."""
    with quiet_stderr():
        capture = cv2.VideoCapture(path)
        try:
            ok, first = capture.read() if capture.isOpened() else (False, None)
            if not ok:
                raise UserError('cannot read %s: not an image (%s) and not a video OpenCV can '
                                'read' % (path, ', '.join(e[1:] for e in IMAGE_EXTENSIONS)))
            fps = capture.get(cv2.CAP_PROP_FPS)
            frames = 1
            while capture.grab():
                frames += 1
        finally:
            capture.release()
    fps = fps if fps > 0 else DEFAULT_FPS
    return Video(path, sample_name(path), frames, fps, first.shape[:2])


def collect_inputs(paths, data_root=None, output=None):
    """(image paths, [Video]) of the INPUT arguments, in order, each image once; a missing or
    unreadable input is a UserError (checked before any is predicted)."""
    images, videos = [], []
    for path in paths:
        if os.path.isdir(path):
            images += folder_images(path, skip=output)
        elif not os.path.isfile(path):
            raise file_error(path, 'input')
        elif path.lower().endswith('.lst'):
            images += list_images(path, data_root)
        elif is_image_name(path):
            images.append(path)
        else:
            videos.append(probe_video(path))
    seen, unique = set(), []
    for image in images:
        if os.path.realpath(image) not in seen:
            seen.add(os.path.realpath(image))
            unique.append(image)
    for image in unique:
        check_image(image)
    return unique, videos


def check_output_names(images, videos, frames):
    """One UserError when two inputs (or video frames, with --frames) share an output NAME."""
    named = [(sample_name(image), image) for image in images]
    for video in videos:
        named.append((video.name, video.path))
        if frames:
            named += [(frame_name(video.name, i), '%s frame %d' % (video.path, i))
                      for i in range(video.frames)]
    check_unique_names(named)
