"""Predict segmentation maps of your own images, folders, list files and videos with a checkpoint.

    python issegm/predict.py --weights W [--model M] [--dataset D] INPUT... --output DIR

Commands: the README, "Predicting on your own images"; inputs, outputs and reruns:
docs/internals.md, section 8. The library: issegm/prediction/.
"""
import logging
import os
import sys
import time

if __package__ in (None, ''):  # run by path without installation: the repo root holds `util`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.datasets import sample_name  # noqa: E402
from issegm.evaluate import check_prediction_flags  # noqa: E402
from issegm.prediction.images import Settings, predict_images  # noqa: E402
from issegm.prediction.inputs import check_output_names, collect_inputs  # noqa: E402
from issegm.prediction.outputs import (DEFAULT_KINDS, KINDS, is_finished,  # noqa: E402
                                       requested_kinds)
from issegm.prediction.record import (SUMMARY_NAME, check_recorded, result_settings,  # noqa: E402
                                      write_summary)
from issegm.prediction.video import predict_video, video_finished, video_path  # noqa: E402
from issegm.testtime.image_list import Timings, device_names  # noqa: E402
from issegm.testtime.predictors import check_devices, load_predictors  # noqa: E402
from util.errors import UserError, cli_entry, require_file  # noqa: E402
from util.flags import FlagParser, prediction_flags  # noqa: E402
from util.kernels import log_kernels  # noqa: E402
from util.locks import output_lock  # noqa: E402
from util.logs import setup_logging  # noqa: E402

__all__ = ['parse_args', 'main', 'predict_inputs']

log = logging.getLogger('cbst')


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
    a('--overwrite', action='store_true',
      help='discard the outputs an earlier run left in --output (%s, summary.json, '
           'predict.json, predict.log) first; a rerun with other values of the flags that change '
           'the maps (%s) is refused without it' % (', '.join(k + '/' for k in KINDS), ', '.join(
               ('--weights', '--model', '--dataset', '--test-scales', '--test-flipping',
                '--test-steps', '--opacity'))))
    return parser.parse_args(argv)


def _check_args(args):
    """Output kinds, after the checks of the flags that need no file."""
    if not 0.0 <= args.opacity <= 1.0:
        raise UserError('--opacity must be between 0 and 1, got %g' % args.opacity)
    kinds = requested_kinds(args.outputs, args.confidence, args.save_probs)
    if not kinds:
        raise UserError('--outputs selects no output kind (allowed: %s)' % ','.join(KINDS))
    return kinds


@cli_entry
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # Checks of the flags and inputs first, before MXNet is even imported (a quick error).
    test = check_prediction_flags(args)
    kinds = _check_args(args)
    require_file(args.weights, 'weight file')
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')  # decoding warnings: quiet
    images, videos = collect_inputs(args.inputs, args.data_root, args.output)
    check_output_names(images, videos, args.frames)
    check_devices(test)  # a bad --gpus stops before the output folder, its lock and predict.log
    with output_lock(args.output, [sys.executable] + sys.argv[:1] + argv) as lock:
        discarded = check_recorded(args.output, args.overwrite, argv,
                                   result_settings(test, args.opacity))
        setup_logging(args.log_file or os.path.join(args.output, 'predict.log'), debug=args.debug)
        for line in [lock.takeover, discarded and '--overwrite: discarded %s of the earlier '
                     'run' % ', '.join(discarded)]:
            if line:
                log.info('%s', line)
        settings = Settings(test.info, test.scales, test.flip, kinds, args.opacity, args.output,
                            test.prefetch_threads, test.progress)
        return predict_inputs(test, settings, args.frames, images, videos)


def predict_inputs(test, settings, frames, images, videos):
    """Predict the images and videos whose outputs are not all in OUTPUT yet (the
    TestTimeSettings `test`, what to write: a prediction.images.Settings; `frames`: also each
    video frame's outputs), and write summary.json (kept as it was when nothing is left to
    do)."""
    output, kinds = settings.output, settings.kinds
    frame_kinds = kinds if frames else ()
    todo = [image for image in images if not is_finished(output, sample_name(image), kinds)]
    todo_videos = [v for v in videos if not video_finished(output, v, frame_kinds)]
    done = len(images) - len(todo) + len(videos) - len(todo_videos)
    if not todo and not todo_videos:
        log.info('nothing to do: the outputs of all %d inputs are in %s'
                 % (len(images) + len(videos), output))
        return 0
    predictors, contexts = load_predictors(test)
    log.info('predict %s (%s): %d images and %d videos (%d finished before), dataset %s, '
             'scales %s, flipping %s, outputs %s, devices %s', test.model, test.weights,
             len(todo), len(todo_videos), done, test.info.name, ','.join(map(str, test.scales)),
             'on' if test.flip else 'off', ','.join(kinds), device_names(contexts))
    log_kernels(log)
    timings = Timings()
    t0 = time.time()
    counts = predict_images(predictors, todo, settings, timings) if todo else 0
    for video in todo_videos:
        counts = counts + predict_video(predictors, video, settings, frames, timings)
        log.info('wrote %s (%d frames)', video_path(output, video), video.frames)
    seconds = time.time() - t0
    summary = write_summary(output, test, kinds, contexts, dict(
        images=timings.images, skipped=done, videos=len(todo_videos),
        seconds=seconds, counts=counts))
    log.info('%d images in %.1f s (%.2f images/s); %s', timings.images, seconds,
             summary['images_per_second'], timings.summary())
    log.info('wrote %s', os.path.join(output, SUMMARY_NAME))
    return 0


if __name__ == '__main__':
    sys.exit(main())
