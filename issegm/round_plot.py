"""OUTPUT/rounds.png, drawn by the orchestrator after every round from summary.json: the
target mIoU of each round's phase val (the network argmax of the weights the round starts
from, when the target split has labels) and the share of pseudo-labelled target pixels per
class, stacked, for ST, CBST and CRST runs alike."""
import os

import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

__all__ = ['draw_rounds']


def draw_rounds(path, rounds, info, title):
    """Write the figure of `rounds` (summary.json entries: round, miou, selected_share) for
    the target DatasetInfo `info` (class names, colours) to `path`, replacing it atomically."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    scored = [(e['round'], 100 * e['miou']) for e in rounds if e.get('miou') is not None]
    if scored:
        left.plot(*zip(*scored), marker='o')
    else:
        left.text(0.5, 0.5, 'the target split has no labels', ha='center',
                  transform=left.transAxes)
    xs = np.array([e['round'] for e in rounds])
    left.set(xlabel='round', ylabel='target mIoU (%)', xticks=xs,
             title='target mIoU at phase val (the weights the round starts from)')
    bottom = np.zeros(len(rounds))
    for k, name in enumerate(info.class_names):
        shares = np.array([100 * (e.get('selected_share') or {}).get(name, 0.0) for e in rounds])
        colour = info.palette[info.train_to_label[k]] / 255.0
        right.bar(xs, shares, bottom=bottom, color=colour, edgecolor='black', linewidth=0.2,
                  label=name)
        bottom += shares
    right.set(xlabel='round', ylabel='pseudo-labelled target pixels (%)', xticks=xs,
              ylim=(0, max(1.0, bottom.max() * 1.05)),
              title='share of pseudo-labelled pixels per class')
    right.legend(fontsize=6, ncol=2, loc='upper left', bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    fig.tight_layout()
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       '.%s.tmp%d' % (os.path.basename(path), os.getpid()))
    fig.savefig(tmp, format='png', dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
