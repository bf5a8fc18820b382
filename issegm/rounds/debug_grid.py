"""Phase val's debug grids, OUTPUT/R/debug/NAME.png (docs/internals.md section 11): one row of
captioned panels PANEL_WIDTH pixels wide: the image, the network's argmax, the pseudo-label (not
kept: black), the confidence (grey, 0 black to 1 white) and the ground truth when known; label
panels in the dataset's palette.
"""
import functools
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from util.files import write_atomically

__all__ = ['PANEL_WIDTH', 'CAPTION_HEIGHT', 'label_panel', 'grey_panel', 'image_panel',
           'grid_image', 'write_debug_grid']

PANEL_WIDTH = 512
CAPTION_HEIGHT = 16


def _panel_size(hw, width):
    return width, max(1, int(round(hw[0] * width / float(hw[1]))))


def label_panel(info, train_ids, width=PANEL_WIDTH):
    """An RGB panel of a train-id map (uint8 (H, W), 255 = none): the palette colour of each
    class's label id (DatasetInfo `info`), black for 255; scaled by nearest neighbour."""
    small = Image.fromarray(np.asarray(train_ids, np.uint8)).resize(
        _panel_size(np.shape(train_ids), width), Image.NEAREST)
    ids = np.asarray(small)
    colors = np.asarray(info.palette, np.uint8)[info.train_to_label[ids]]
    colors[ids == 255] = 0
    return Image.fromarray(colors)


def grey_panel(values, width=PANEL_WIDTH):
    """A grey RGB panel of an (H, W) map of values in [0, 1] (0 black, 1 white)."""
    grey = (np.clip(np.asarray(values, np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(grey).resize(_panel_size(grey.shape, width),
                                        Image.BILINEAR).convert('RGB')


def image_panel(rgb, width=PANEL_WIDTH):
    """An RGB uint8 (H, W, 3) image scaled to the panel width."""
    rgb = np.asarray(rgb, np.uint8)
    return Image.fromarray(rgb).resize(_panel_size(rgb.shape[:2], width), Image.BILINEAR)


def grid_image(panels):
    """[(caption, RGB panel)] side by side, each under a CAPTION_HEIGHT band with its caption."""
    width = sum(p.width for _, p in panels)
    height = CAPTION_HEIGHT + max(p.height for _, p in panels)
    grid = Image.new('RGB', (width, height))
    draw, font, x = ImageDraw.Draw(grid), ImageFont.load_default(size=12), 0
    for caption, panel in panels:
        draw.text((x + 4, 2), caption, fill=(255, 255, 255), font=font)
        grid.paste(panel, (x, CAPTION_HEIGHT))
        x += panel.width
    return grid


def write_debug_grid(path, info, image, maps, gt=None):
    """PATH: the grid of one image: `image` RGB uint8 (H, W, 3), `maps` = (argmax, pseudo-label,
    confidence) as (H, W) train ids, train ids (255 = not kept) and floats in [0, 1], `gt`
    train ids or None. Written atomically; returns the file's size in bytes."""
    argmax, pseudo, confidence = maps
    panels = [('image', image_panel(image)), ('argmax', label_panel(info, argmax)),
              ('pseudo-label', label_panel(info, pseudo)), ('confidence', grey_panel(confidence))]
    if gt is not None:
        panels.append(('ground truth', label_panel(info, gt)))
    grid = grid_image(panels)
    write_atomically(path, functools.partial(grid.save, format='PNG'))
    return os.path.getsize(path)
