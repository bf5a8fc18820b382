"""The demo's health report, from each self-training run's OUTPUT/summary.json: `health.md`
(one table per method, a row per round; how the label-free signals correlate with the labelled
ones) and `health_per_round.png` (the signals per round and against precision and mIoU)."""
import json
import os

import matplotlib
import numpy as np

from issegm.figures import save_figure
from issegm.rounds.plot import series

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = ['load_summaries', 'health_table', 'pearson', 'tracking_table', 'health_figure',
           'write_health']

# (summary.json key, column title, scale, format) of health.md's table, after the round.
COLUMNS = (('miou', 'target mIoU (%)', 100, '%.1f'),
           ('pseudo_precision_total', 'precision (%)', 100, '%.1f'),
           ('pseudo_recall_total', 'recall (%)', 100, '%.1f'),
           ('selected_total', 'kept share (%)', 100, '%.1f'),
           ('agreement', 'agreement (%)', 100, '%.1f'),
           ('mean_entropy_total', 'mean entropy (nats)', 1, '%.3f'),
           ('mean_confidence_total', 'mean confidence', 1, '%.3f'))
# What a user without target labels has, and what the target labels tell: (key, name, scale).
SIGNALS = (('agreement', 'agreement (%)', 100), ('mean_entropy_total', 'mean entropy (nats)', 1),
           ('mean_confidence_total', 'mean confidence', 1))
LABELLED = (('pseudo_precision_total', 'pseudo-label precision (%)', 100),
            ('miou', 'target mIoU (%)', 100))
MISSING = '-'
EXPLAINED = (
    'Per round, from each run\'s `summary.json` (phase val of that round, on the pseudo-labelled '
    'target train split). Target mIoU: the argmax of the weights the round starts from against '
    'the target labels; precision: kept pseudo-labels that are right; recall: pixels kept and '
    'right; kept share: target pixels given a pseudo-label; agreement: pixels kept in this and '
    'the previous round with the same class; mean entropy: of the softmax over all target '
    'pixels; mean confidence: of the kept pixels. `%s`: not recorded (agreement at round 0, '
    'no target labels, `--no-health`).' % MISSING)


def load_summaries(output, methods):
    """{key: summary.json entries} of the runs OUTPUT/KEY of `methods` ((key, title, ...))
    that wrote one, in the order of `methods`."""
    found = {}
    for key in (m[0] for m in methods):
        path = os.path.join(output, key, 'summary.json')
        if os.path.isfile(path):
            with open(path) as f:
                found[key] = json.load(f)
    return found


def health_table(entries):
    """Markdown table of one run's summary.json entries: a row per round, COLUMNS."""
    lines = ['| round | %s |' % ' | '.join(c[1] for c in COLUMNS),
             '|' + '---|' * (len(COLUMNS) + 1)]
    for e in entries:
        cells = [MISSING if e.get(key) is None else form % (scale * e[key])
                 for key, _, scale, form in COLUMNS]
        lines.append('| %d | %s |' % (e['round'], ' | '.join(cells)))
    return '\n'.join(lines) + '\n'


def pearson(xs, ys):
    """Pearson's r of the pairs where both are known (not NaN), or None with fewer than 3
    pairs or a constant side."""
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    known = ~(np.isnan(xs) | np.isnan(ys))
    x, y = xs[known], ys[known]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def tracking_table(summaries, titles):
    """Markdown table: Pearson's r over the rounds of each run (and of all runs together) of
    every label-free signal with every labelled value."""
    keys = list(summaries)
    lines = ['| label-free signal | labelled value | %s | all runs |'
             % ' | '.join(titles[k] for k in keys), '|' + '---|' * (len(keys) + 3)]
    for signal, signal_name, _ in SIGNALS:
        for value, value_name, _ in LABELLED:
            runs = [(series(summaries[k], signal), series(summaries[k], value)) for k in keys]
            pooled = (sum((x for x, _ in runs), []), sum((y for _, y in runs), []))
            cells = [pearson(x, y) for x, y in runs + [pooled]]
            lines.append('| %s | %s | %s |' % (signal_name, value_name, ' | '.join(
                MISSING if r is None else '%.2f' % r for r in cells)))
    return '\n'.join(lines) + '\n'


def _health_markdown(summaries, titles):
    parts = ['# Demo: the pseudo-labels\' health per round\n', EXPLAINED + '\n']
    for key, entries in summaries.items():
        parts.append('## %s\n\n%s' % (titles[key], health_table(entries)))
    parts.append('## Do the label-free signals track the labelled ones?\n\nPearson\'s r over '
                 'the rounds where both are known (`%s`: fewer than 3 such rounds, or a '
                 'constant series); near 1 (entropy: near -1) means the signal rises and falls '
                 'with the labelled value.\n\n%s' % (MISSING, tracking_table(summaries, titles)))
    return '\n'.join(parts)


def _series_panel(ax, summaries, titles, key, scale):
    for k, entries in summaries.items():
        ax.plot([e['round'] for e in entries], series(entries, key, scale), marker='o',
                label=titles[k])
    ax.set_xlabel('round')
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _scatter_panel(ax, summaries, titles, signal, value):
    """`value` (y) against `signal` (x), one line per run in round order, rounds annotated."""
    for k, entries in summaries.items():
        xs, ys = series(entries, signal[0], signal[2]), series(entries, value[0], value[2])
        ax.plot(xs, ys, marker='o', label=titles[k])
        for e, x, y in zip(entries, xs, ys):
            if not (np.isnan(x) or np.isnan(y)):
                ax.annotate(str(e['round']), (x, y), fontsize=6, xytext=(2, 2),
                            textcoords='offset points')
    ax.set(xlabel=signal[1], ylabel=value[1])


def health_figure(summaries, titles):
    """4 x 3 panels: the labelled values and the kept share per round (top row), then per
    label-free signal a row: the signal per round, precision and mIoU against it. Returns the
    figure."""
    fig, axes = plt.subplots(1 + len(SIGNALS), 1 + len(LABELLED), figsize=(15, 16),
                             squeeze=False)
    for ax, (key, name, scale) in zip(axes[0], LABELLED + (('selected_total',
                                                            'kept share (%)', 100),)):
        _series_panel(ax, summaries, titles, key, scale)
        ax.set(ylabel=name, title='%s per round' % name)
    for row, signal in zip(axes[1:], SIGNALS):
        _series_panel(row[0], summaries, titles, signal[0], signal[2])
        row[0].set(ylabel=signal[1], title='%s per round' % signal[1])
        for ax, value in zip(row[1:], LABELLED):
            _scatter_panel(ax, summaries, titles, signal, value)
            ax.set_title('%s against %s' % (value[1], signal[1]))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='upper center', ncol=max(len(labels), 1),
               bbox_to_anchor=(0.5, 0.975))
    fig.suptitle('Label-free signals (rows 2-4) against the labelled values, per round '
                 '(numbers beside the points: rounds)', y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def write_health(output, methods):
    """OUTPUT/health.md and OUTPUT/health_per_round.png of the runs OUTPUT/KEY of `methods`
    ((key, title, ...)); their paths, or [] when no run wrote a summary.json."""
    summaries = load_summaries(output, methods)
    if not summaries:
        return []
    titles = {m[0]: m[1] for m in methods}
    md = os.path.join(output, 'health.md')
    with open(md, 'w') as f:
        f.write(_health_markdown(summaries, titles))
    return [md, save_figure(health_figure(summaries, titles),
                            os.path.join(output, 'health_per_round.png'))]
