"""OUTPUT/rounds.png, drawn by the orchestrator after every round from summary.json: the
target mIoU of each round's phase val (the network argmax of the weights the round starts
from, when the target split has labels), the share of pseudo-labelled target pixels per class
(stacked), and the pseudo-labels' health: precision, recall and kept share against the target
labels (when known), agreement with the previous round, mean entropy and mean confidence."""
from typing import NamedTuple

import matplotlib
import numpy as np

from issegm.figures import class_colours, save_figure

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

__all__ = ['rounds_figure', 'draw_rounds']



class LinePanel(NamedTuple):
    """A panel of lines: its title, y label, [(summary.json key, legend, scale)] and what it
    says without any value."""
    title: str
    ylabel: str
    lines: list
    missing: str


MIOU_PANEL = LinePanel('target mIoU at phase val (the weights the round starts from)',
                       'target mIoU (%)', [('miou', 'mIoU', 100)],
                       'the target split has no labels')
# The line panels of the pseudo-labels' health.
HEALTH_PANELS = tuple(LinePanel(*panel) for panel in (
    ('pseudo-labels against the target labels', '%', [
        ('pseudo_precision_total', 'precision (kept pixels right)', 100),
        ('pseudo_recall_total', 'recall (pixels kept and right)', 100),
        ('pseudo_kept_share_total', 'kept share (labelled pixels kept)', 100)],
     'not recorded (no target labels, or --no-health)'),
    ('agreement with the previous round', 'same class where both kept (%)',
     [('agreement', 'agreement', 100)], 'not recorded (round 0 only, or --no-health)'),
    ('mean entropy of the target predictions', 'nats', [('mean_entropy_total', 'entropy', 1)],
     'not recorded (--no-health)'),
    ('mean confidence of the kept pixels', 'confidence',
     [('mean_confidence_total', 'confidence', 1)], 'not recorded (--no-health)'),
))


def series(rounds, key, scale=1):
    """[value * scale] of `key` in each entry of `rounds`, NaN where it is absent or null (a gap
    in a line)."""
    return [np.nan if e.get(key) is None else scale * e[key] for e in rounds]


def _line_panel(ax, rounds, panel, xs):
    """The LinePanel `panel` of `rounds` on the axes `ax`."""
    drawn = 0
    for key, label, scale in panel.lines:
        values = series(rounds, key, scale)
        if not np.isnan(values).all():
            ax.plot(xs, values, marker='o', label=label)
            drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, panel.missing, ha='center', transform=ax.transAxes, fontsize=8)
    elif len(panel.lines) > 1:
        ax.legend(fontsize=7)
    ax.set(xlabel='round', ylabel=panel.ylabel, xticks=xs, title=panel.title)
    ax.title.set_fontsize(9)


def _share_panel(ax, rounds, info, xs):
    bottom = np.zeros(len(rounds))
    for k, (name, colour) in enumerate(zip(info.class_names, class_colours(info))):
        shares = np.array([100 * (e.get('selected_share') or {}).get(name, 0.0) for e in rounds])
        ax.bar(xs, shares, bottom=bottom, color=colour, edgecolor='black', linewidth=0.2,
               label=name)
        bottom += shares
    ax.set(xlabel='round', ylabel='pseudo-labelled target pixels (%)', xticks=xs,
           ylim=(0, max(1.0, bottom.max(initial=0) * 1.05)),
           title='share of pseudo-labelled pixels per class')
    ax.title.set_fontsize(9)
    ax.legend(fontsize=6, ncol=2, loc='upper left', bbox_to_anchor=(1.01, 1.0))


def rounds_figure(rounds, info, title):
    """The figure of `rounds` (summary.json entries) for the target DatasetInfo `info` (class
    names, colours): 2 x 3 panels, the mIoU, HEALTH_PANELS and (top right) the stacked
    shares per round; a value absent or null is not drawn. Returns the figure."""
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    xs = np.array([e['round'] for e in rounds])
    _line_panel(axes[0, 0], rounds, MIOU_PANEL, xs)
    _share_panel(axes[0, 2], rounds, info, xs)
    for ax, panel in zip([axes[0, 1]] + list(axes[1]), HEALTH_PANELS):
        _line_panel(ax, rounds, panel, xs)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_rounds(path, rounds, info, title):
    """Write rounds_figure to `path` as a PNG, replacing it atomically."""
    save_figure(rounds_figure(rounds, info, title), path)
