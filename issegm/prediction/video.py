"""A video predicted frame by frame: OUTPUT/overlay/STEM.mp4 at its frame rate and size, and,
with --frames, each frame's outputs as for an image."""
import functools
import os
import threading

import cv2
import numpy as np

from issegm.prediction.images import predict_and_write, write_frame
from issegm.prediction.inputs import frame_name
from issegm.prediction.outputs import is_finished, overlay_image
from issegm.testtime.image_list import Timings
from util.errors import UserError

VIDEO_CODEC, VIDEO_EXTENSION = 'mp4v', '.mp4'


def video_path(output, video):
    """OUTPUT/overlay/STEM.mp4 of a Video."""
    return os.path.join(output, 'overlay', video.name + VIDEO_EXTENSION)


def video_finished(output, video, kinds):
    """The video and the `kinds` of every frame are in OUTPUT."""
    return os.path.isfile(video_path(output, video)) and \
        all(is_finished(output, frame_name(video.name, i), kinds) for i in range(video.frames))


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
    write = functools.partial(write_frame, settings, video.name) if frames else None
    reader, writer = FrameReader(video), _open_video_writer(tmp, video)

    def add_frame(sample, prediction):
        if prediction.image.shape[:2] != video.size:
            raise UserError('frame %d of video %s is %dx%d, its first frame %dx%d' % (
                (sample[1], video.path) + prediction.image.shape[1::-1] + video.size[::-1]))
        colors = settings.info.palette[settings.info.train_to_label[prediction.train_ids]]
        overlay = overlay_image(prediction.image, colors, settings.opacity)
        timings.timed('writing', writer.write, np.ascontiguousarray(overlay[:, :, ::-1]))

    try:
        counts = predict_and_write(predictors, [(video.path, i) for i in range(video.frames)],
                                   settings, write, timings, read=reader, desc=video.name,
                                   on_result=add_frame)
        writer.release()
        os.replace(tmp, final)
    finally:
        reader.close()
        writer.release()
        if os.path.exists(tmp):
            os.remove(tmp)
    return counts
