"""What phase val's passes share (issegm/rounds/passes.py): the target split (TargetSplit), its
images after the network pass (TargetImage), the network maps kept between the two passes
(MapCache) and what pass 2 adds for the round's health (HealthPlan)."""
import collections
import dataclasses
import os
import shutil
import threading
from typing import Optional

import numpy as np

from issegm.testtime.one_image import upsample_probs

__all__ = ['TargetSplit', 'TargetImage', 'MapCache', 'HealthPlan']


class TargetSplit(collections.namedtuple('TargetSplit',
                                         'info samples has_gt prior stage cache data_root health')):
    """What the passes share: the target dataset's tables, the [(image, label)] samples, whether
    every one has a label file, the float32 (C, H, W) spatial prior (or None), the staging
    folder, the MapCache, the root the samples' paths are relative to and the HealthPlan (None
    with --no-health)."""

    def staged(self, *parts):
        """STAGE/PARTS...: a file or folder of the round in the staging folder."""
        return os.path.join(self.stage, *parts)


class TargetImage(collections.namedtuple('TargetImage',
                                         'name image_path label_path scaled_hw hw')):
    """One target image after the network pass: its output name, its files, the size of the
    scaled (unpadded) network input and its own size."""


@dataclasses.dataclass(frozen=True)
class HealthPlan:
    """What pass 2 adds for the round's health (docs/internals.md section 11): the previous
    round's folder OUTPUT/R-1 (None at round 0) and the names of the images that get a debug
    grid in the stage's debug/ folder."""
    previous_dir: Optional[str]
    debug_names: frozenset


class MapCache:
    """The network-resolution maps, kept on disk between the two passes (under 3 MB an image,
    where upstream kept 160 MB full-size maps), and the full-size maps made from them, alike in
    both passes (issegm.testtime.one_image.upsample_probs)."""

    def __init__(self, folder, pred_stride):
        self.folder = folder
        self.pred_stride = pred_stride
        os.makedirs(folder)
        self._reused = threading.local()  # per thread: its full-size map array

    def path(self, name):
        return os.path.join(self.folder, name + '.npy')

    def save(self, name, net_probs):
        np.save(self.path(name), net_probs)

    def load(self, image):
        """The network-resolution map of a TargetImage, as kept."""
        return np.load(self.path(image.name))

    def cut(self, image, net):
        """A network-resolution map cut to the rows and columns that cover the scaled image
        (the rest is padding)."""
        rows, cols = (-(-int(side) // self.pred_stride) for side in image.scaled_hw)
        return net[:, :rows, :cols]

    def full_probs(self, image, net=None):
        """The (C, H, W) float32 map of a TargetImage (from its network map `net` when loaded
        already), in an array the calling thread reuses (a fresh 150 MB array costs its page
        faults): valid until the thread's next call."""
        net = self.load(image) if net is None else net
        shape = (net.shape[0],) + tuple(image.hw)
        if getattr(self._reused, 'probs', None) is None or self._reused.probs.shape != shape:
            self._reused.probs = np.empty(shape, np.float32)
        return upsample_probs(net, self.pred_stride, image.scaled_hw, image.hw,
                              out=self._reused.probs)

    def remove(self, name, keep_in=None):
        """Drop an image's map, or move it into the folder `keep_in` (LR-ENT's netmaps)."""
        if keep_in is None:
            os.remove(self.path(name))
        else:
            os.makedirs(keep_in, exist_ok=True)
            os.replace(self.path(name), os.path.join(keep_in, name + '.npy'))

    def close(self):
        shutil.rmtree(self.folder)
