"""Figures shared by the scripts (matplotlib, file-only backend): class colours, writing a
figure atomically, the bar chart of the pixel share per class (prepare_data.py's
LIST.classes.png, make_prior.py --figures) and the spatial prior drawn one panel per class."""
import math

import matplotlib
import numpy as np

from util.files import atomic_path

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

__all__ = ['class_colours', 'save_figure', 'class_share_figure', 'draw_class_chart',
           'prior_figure']

PRIOR_COLUMNS = 5  # panels per row of prior_figure


def class_colours(info):
    """(C, 3) RGB colours in [0, 1] of the train ids of DatasetInfo `info`, from its palette."""
    return info.palette[info.train_to_label[:len(info.class_names)]] / 255.0


def save_figure(fig, path, dpi=100):
    """Write `fig` as a PNG to `path` (util.files.atomic_path: never half a file), close it and
    return `path`."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format='png', dpi=dpi)
    finally:
        plt.close(fig)
    return path


def class_share_figure(info, share, title, xlabel='share of the labelled pixels (%)'):
    """Horizontal bars, first class on top, in the class colours: `share` {class name: fraction}
    drawn in percent, each bar labelled with its value. Returns the figure."""
    names = list(info.class_names)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.5))
    values = [100 * share[name] for name in names]
    ys = range(len(names))[::-1]
    ax.barh(ys, values, color=class_colours(info), edgecolor='black', linewidth=0.5)
    ax.set_yticks(ys, names)
    for y, v in zip(ys, values):
        ax.text(v, y, ' %.2f%%' % v, va='center', fontsize=8)
    ax.set(xlabel=xlabel, title=title)
    ax.set_xlim(0, max(values + [1]) * 1.2)
    fig.tight_layout()
    return fig


def draw_class_chart(path, info, share, title):
    """class_share_figure written to `path` as a PNG."""
    save_figure(class_share_figure(info, share, title), path)


def prior_figure(prior, info, title, columns=PRIOR_COLUMNS):
    """The spatial prior (C, H, W) of DatasetInfo `info`'s classes: one panel per class in a
    grid `columns` wide (no spare axes), each scaled from 0 to its class's maximum (in its
    title), framed in the class colour. Returns the figure."""
    prior = np.asarray(prior)
    count = prior.shape[0]
    rows = int(math.ceil(count / float(columns)))
    aspect = prior.shape[1] / float(max(prior.shape[2], 1))
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(2.6 * columns, (2.6 * aspect + 0.6) * rows + 0.6))
    colours = class_colours(info)
    for k, ax in enumerate(axes.ravel()):
        if k >= count:
            fig.delaxes(ax)
            continue
        top = float(prior[k].max())
        ax.imshow(prior[k], cmap='viridis', vmin=0, vmax=top if top > 0 else 1,
                  interpolation='antialiased')
        ax.set_title('%s (max %.2f)' % (info.class_names[k], top), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set(color=colours[k], linewidth=3)
    fig.suptitle('%s\n(each panel from 0, dark, to its class\'s maximum, yellow)' % title,
                 fontsize=10)
    fig.tight_layout()
    return fig
