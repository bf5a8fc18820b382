"""Predict segmentation maps of your own images, folders, list files and videos with a checkpoint.

    python issegm/predict.py --weights W [--model M] [--dataset D] INPUT... --output DIR

Commands: the README, "Predicting on your own images"; inputs, outputs and reruns:
docs/internals.md, section 8.
"""
import collections
import contextlib
import functools
import logging
import os
import sys
import threading
import time

if __package__ in (None, ''):  # run by path without installation: the repo root holds `util`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from issegm.cbst import argmax_max  # noqa: E402
from issegm.datasets import (get_dataset, read_list, read_sample, sample_name,  # noqa: E402
                             write_png)
from issegm.evaluate import (check_prediction_flags, check_unique_names,  # noqa: E402
                             dataset_of, load_predictors)
from issegm.testtime.image_list import Timings, device_names, predict_samples  # noqa: E402
from util.errors import UserError, cli_entry, require_dir, require_file  # noqa: E402
from util.files import write_atomically, write_json  # noqa: E402
from util.flags import FlagParser, prediction_flags  # noqa: E402
from util.kernels import log_kernels  # noqa: E402
from util.logs import setup_logging  # noqa: E402

__all__ = ['IMAGE_EXTENSIONS', 'KINDS', 'Video', 'Prediction', 'Settings', 'collect_inputs',
           'requested_kinds', 'output_path', 'confidence_map', 'entropy_map', 'overlay_image',
           'render', 'predict_images', 'predict_video', 'main']

log = logging.getLogger('cbst')

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
DEFAULT_KINDS = ('labelIds', 'trainIds', 'color', 'overlay')
KINDS = DEFAULT_KINDS + ('confidence', 'entropy', 'probs')
VIDEO_CODEC, VIDEO_EXTENSION = 'mp4v', '.mp4'
DEFAULT_FPS = 25.0  # when a video does not say its frame rate

Video = collections.namedtuple('Video', 'path name frames fps size')  # size: (height, width)
# One image's prediction: the RGB image, argmax train ids, top probability, class probabilities
# (C, H, W) or None when no output needs them.
Prediction = collections.namedtuple('Prediction', 'image train_ids top probs')
# What to predict and write: dataset facts, test scales, flipping, output kinds, overlay
# opacity, output folder, helper threads, progress bar.
Settings = collections.namedtuple('Settings',
                                  'info scales flip kinds opacity output threads progress')


# Inputs ---------------------------------------------------------------------------------------

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


def check_image(path):
    """A UserError unless `path` is a file OpenCV's image readers recognise (its header)."""
    require_file(path, 'image')
    if not cv2.haveImageReader(path):
        raise UserError('cannot read image %s: not an image OpenCV can decode (corrupt, or '
                        'another format)' % path)


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
            raise UserError('input not found: %s' % path)
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


# Outputs --------------------------------------------------------------------------------------

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


def video_path(output, video):
    return os.path.join(output, 'overlay', video.name + VIDEO_EXTENSION)


def is_finished(output, name, kinds):
    return all(os.path.isfile(output_path(output, kind, name)) for kind in kinds)


def video_finished(output, video, kinds):
    return os.path.isfile(video_path(output, video)) and \
        all(is_finished(output, frame_name(video.name, i), kinds) for i in range(video.frames))


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


# Prediction -----------------------------------------------------------------------------------

def _predict_image(scales, flip, keep_probs, predictor, image, label, timings):
    """One image on a device thread, as evaluate.py's (issegm/evaluate.py, _predict_image)."""
    probs = predictor.predict(image, scales, flip, timed=timings.timed)
    train_ids, top = timings.timed('argmax', argmax_max, probs)
    return Prediction(image, train_ids, top, probs if keep_probs else None)


def _write_outputs(settings, name, prediction):
    rendered = render(settings.info, settings.kinds, settings.opacity, prediction)
    save_rendered(settings.output, name, rendered, settings.info.palette)


def _write_image(settings, sample, prediction):
    _write_outputs(settings, sample_name(sample[0]), prediction)


def _write_frame(settings, stem, sample, prediction):
    _write_outputs(settings, frame_name(stem, sample[1]), prediction)


def class_pixels(train_ids, num_classes):
    """Pixels per train id 0..C-1, int64."""
    return np.bincount(train_ids.ravel(), minlength=num_classes)[:num_classes].astype(np.int64)


def _run(predictors, samples, settings, write, timings, read=read_sample, desc='predict',
         on_result=None):
    """predict_samples over `samples`, writing settings.kinds; returns the pixels per class."""
    num_classes = len(settings.info.class_names)
    keep_probs = 'entropy' in settings.kinds or 'probs' in settings.kinds
    predict = functools.partial(_predict_image, settings.scales, settings.flip, keep_probs)
    counts = np.zeros(num_classes, np.int64)
    for sample, prediction in predict_samples(
            predictors, samples, predict, write, read=read, threads=settings.threads,
            timings=timings, progress=desc if settings.progress else None):
        if on_result is not None:
            on_result(sample, prediction)
        counts += timings.timed('counting', class_pixels, prediction.train_ids, num_classes)
        timings.images += 1
    return counts


def predict_images(predictors, images, settings, timings=None):
    """Predict every image path and write its outputs under settings.output; returns the
    pixels per class (train ids) over the images."""
    timings = timings if timings is not None else Timings()
    write = functools.partial(_write_image, settings)
    return _run(predictors, [(image, None) for image in images], settings, write, timings)


class FrameReader:
    """read(video path, frame index) -> (RGB frame, None) for predict_samples: decodes the
    video once, in order, keeping frames asked for out of order (by helper threads) until
    they are taken."""

    def __init__(self, video):
        self.video = video
        self.capture = cv2.VideoCapture(video.path)
        self.next_index = 0
        self.buffered = {}
        self.lock = threading.Lock()

    def __call__(self, path, index):
        with self.lock:
            while index not in self.buffered:
                if index < self.next_index:
                    raise ValueError('frame %d of %s was read already' % (index, path))
                ok, bgr = self.capture.read()
                if not ok:
                    raise UserError('cannot read frame %d of video %s (%d frames counted)'
                                    % (self.next_index, path, self.video.frames))
                self.buffered[self.next_index] = bgr
                self.next_index += 1
            bgr = self.buffered.pop(index)
        return bgr[:, :, ::-1], None

    def close(self):
        self.capture.release()


def _open_video_writer(path, video):
    height, width = video.size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*VIDEO_CODEC), video.fps,
                             (width, height))
    if not writer.isOpened():
        raise UserError('cannot write video %s: this OpenCV has no %s encoder'
                        % (path, VIDEO_CODEC))
    return writer


def predict_video(predictors, video, settings, frames=False, timings=None):
    """Predict every frame of `video` and write OUTPUT/overlay/STEM.mp4 (its frame rate and
    size; written to a temporary name and renamed at the end); with `frames`, each frame's
    outputs as for an image. Returns the pixels per class over the frames."""
    timings = timings if timings is not None else Timings()
    final = video_path(settings.output, video)
    tmp = os.path.join(os.path.dirname(final), '.%s.tmp%s' % (video.name, VIDEO_EXTENSION))
    os.makedirs(os.path.dirname(final), exist_ok=True)
    settings = settings if frames else settings._replace(kinds=())
    write = functools.partial(_write_frame, settings, video.name) if frames else None
    reader, writer = FrameReader(video), _open_video_writer(tmp, video)

    def add_frame(sample, prediction):
        if prediction.image.shape[:2] != video.size:
            raise UserError('frame %d of video %s is %dx%d, its first frame %dx%d' % (
                (sample[1], video.path) + prediction.image.shape[1::-1] + video.size[::-1]))
        colors = settings.info.palette[settings.info.train_to_label[prediction.train_ids]]
        overlay = overlay_image(prediction.image, colors, settings.opacity)
        timings.timed('writing', writer.write, np.ascontiguousarray(overlay[:, :, ::-1]))

    try:
        counts = _run(predictors, [(video.path, i) for i in range(video.frames)], settings,
                      write, timings, read=reader, desc=video.name, on_result=add_frame)
        writer.release()
        os.replace(tmp, final)
    finally:
        reader.close()
        writer.release()
        if os.path.exists(tmp):
            os.remove(tmp)
    return counts


# Command line ---------------------------------------------------------------------------------

def parse_args(argv):
    parser = FlagParser(description=__doc__.splitlines()[0], parents=[prediction_flags()])
    a = parser.add_argument
    a('inputs', nargs='+', metavar='INPUT',
      help='image files, folders (searched recursively), .lst files and video files')
    a('--weights', required=True, help='weight file, e.g. models/cityscapes_rna-a1_cls19_s8_'
                                       'ep-0000.params')
    a('--model', help='model label (default: the weights file name before _ep-)')
    a('--dataset', help='label tables and palette: cityscapes, cityscapes16, gta or synthia '
                        '(default: the dataset part of the model label, as evaluate.py)')
    a('--output', required=True, help='output folder')
    a('--data-root', help='folder the images of .lst inputs are relative to (default: the list '
                          'file\'s folder)')
    a('--outputs', default=','.join(DEFAULT_KINDS),
      help='output kinds, comma-separated, of: %s (default: %s)'
           % (', '.join(KINDS), ','.join(DEFAULT_KINDS)))
    a('--opacity', type=float, default=0.5,
      help='weight of the colours in overlay/ (0: the image, 1: the colours; default 0.5)')
    a('--confidence', action='store_true',
      help='also write confidence/ (top probability) and entropy/ (entropy / log C) as 8-bit '
           'PNGs')
    a('--save-probs', action='store_true',
      help='also write probs/NAME.npz: float16 class probabilities (C, H, W), 2 bytes per '
           'class and pixel (79.7 MB per 2048x1024 image, 19 classes)')
    a('--frames', action='store_true',
      help='videos: also write the outputs of every frame as for images (NAME STEM_%%06d)')
    a('--log-file', help='log file (default OUTPUT/predict.log)')
    return parser.parse_args(argv)


def _check_args(args):
    """Output kinds, after the checks of the flags that need no file."""
    if not 0.0 <= args.opacity <= 1.0:
        raise UserError('--opacity must be between 0 and 1, got %g' % args.opacity)
    kinds = requested_kinds(args.outputs, args.confidence, args.save_probs)
    if not kinds:
        raise UserError('--outputs selects no output kind (allowed: %s)' % ','.join(KINDS))
    return kinds


def write_summary(output, args, model, scales, kinds, contexts, run):
    """OUTPUT/summary.json of this run; `run`: dict of images, skipped, videos, seconds and
    counts (pixels per class)."""
    dataset = dataset_of(args)
    info = get_dataset(dataset)
    counts = run.pop('counts')
    shares = counts / counts.sum() if counts.sum() else np.zeros(len(counts))
    summary = dict(run, images_per_second=round(run['images'] / max(run['seconds'], 1e-9), 3),
                   seconds=round(run['seconds'], 3), model=model, weights=args.weights,
                   dataset=dataset, test_scales=scales, test_flipping=args.test_flipping,
                   test_steps=args.test_steps, devices=device_names(contexts),
                   outputs=list(kinds),
                   class_shares={name: round(float(s), 6)
                                 for name, s in zip(info.class_names, shares)})
    write_json(os.path.join(output, 'summary.json'), summary)
    return summary


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    # Checks of the flags and inputs first, before MXNet is even imported (a quick error).
    info, model, parsed, scales = check_prediction_flags(args)
    dataset = info.name
    kinds = _check_args(args)
    require_file(args.weights, 'weight file')
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # decoding warnings: quiet
    images, videos = collect_inputs(args.inputs, args.data_root, args.output)
    check_output_names(images, videos, args.frames)
    frame_kinds = kinds if args.frames else ()
    todo = [image for image in images if not is_finished(args.output, sample_name(image), kinds)]
    todo_videos = [v for v in videos if not video_finished(args.output, v, frame_kinds)]
    os.makedirs(args.output, exist_ok=True)
    setup_logging(args.log_file or os.path.join(args.output, 'predict.log'), debug=args.debug)
    done = len(images) - len(todo) + len(videos) - len(todo_videos)
    if not todo and not todo_videos:
        log.info('nothing to do: the outputs of all %d inputs are in %s'
                 % (len(images) + len(videos), args.output))
        return 0
    predictors, contexts = load_predictors(args, model, parsed)
    log.info('predict %s (%s): %d images and %d videos (%d finished before), dataset %s, '
             'scales %s, flipping %s, outputs %s, devices %s', model, args.weights, len(todo),
             len(todo_videos), done, dataset, ','.join(map(str, scales)),
             'on' if args.test_flipping else 'off', ','.join(kinds), device_names(contexts))
    log_kernels(log)
    settings = Settings(info, scales, args.test_flipping, kinds, args.opacity, args.output,
                        args.prefetch_threads, not args.no_progress)
    timings = Timings()
    t0 = time.time()
    counts = predict_images(predictors, todo, settings, timings) if todo else 0
    for video in todo_videos:
        counts = counts + predict_video(predictors, video, settings, args.frames, timings)
        log.info('wrote %s (%d frames)', video_path(args.output, video), video.frames)
    seconds = time.time() - t0
    summary = write_summary(args.output, args, model, scales, kinds, contexts, dict(
        images=timings.images, skipped=done, videos=len(todo_videos),
        seconds=seconds, counts=counts))
    log.info('%d images in %.1f s (%.2f images/s); %s', timings.images, seconds,
             summary['images_per_second'], timings.summary())
    log.info('wrote %s', os.path.join(args.output, 'summary.json'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
