"""`python -m issegm.demo --seeds N`: the methods over N seeds, `compare.md`, `compare.json` and
`compare.png` (docs/demo.md, "Seeds and spread"). The aggregation is plain arithmetic on the
seeds' results (mean_sd, method_spread, paired_differences, class_means, health_side_by_side);
the writers only format and draw it.
"""
import json
import os

import matplotlib
import numpy as np

from issegm.figures import save_figure

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

__all__ = ['PAIRS', 'HEALTH_METHODS', 'mean_sd', 'method_spread', 'paired_differences',
           'class_means', 'kept_classes', 'health_side_by_side', 'aggregate', 'compare_markdown',
           'compare_figure', 'write_compare']

# (label, method, baseline): the differences the issue asks about, each over the same seed.
PAIRS = (('CBST - ST', 'cbst', 'st'), ('CBST-SP - CBST', 'cbst_sp', 'cbst'),
         ('CRST-MRKLD - CBST', 'crst_mrkld', 'cbst'), ('CRST-LRENT - CBST', 'crst_lrent', 'cbst'),
         ('ST - source', 'st', 'source'), ('CBST - source', 'cbst', 'source'))
HEALTH_METHODS = ('st', 'cbst')  # side by side in compare.md: the global and the per-class policy


def mean_sd(values):
    """(mean, sample standard deviation (n - 1 in the denominator; 0 for one value)) of the
    values, as floats."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        raise ValueError('no values')
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), sd


def method_spread(per_seed, keys):
    """{key: {'values': mIoU (%) per seed, 'mean', 'sd'}} of `per_seed` [{key: {'miou':
    fraction, ...}} one dict per seed] for each method key."""
    out = {}
    for key in keys:
        values = [100.0 * seed[key]['miou'] for seed in per_seed]
        mean, sd = mean_sd(values)
        out[key] = {'values': values, 'mean': mean, 'sd': sd}
    return out


def paired_differences(per_seed, pairs=PAIRS):
    """{label: {'values': method - baseline mIoU (points) per seed, 'mean', 'sd', 'beyond':
    |mean| > sd and every seed's difference has the mean's sign}} over the pairs whose two
    methods every seed has. With one seed 'beyond' is False: no spread is known."""
    out = {}
    for label, method, baseline in pairs:
        if not all(method in s and baseline in s for s in per_seed):
            continue
        values = [100.0 * (s[method]['miou'] - s[baseline]['miou']) for s in per_seed]
        mean, sd = mean_sd(values)
        beyond = len(values) > 1 and abs(mean) > sd and \
            all(np.sign(v) == np.sign(mean) and v != 0 for v in values)
        out[label] = {'values': values, 'mean': mean, 'sd': sd, 'beyond': bool(beyond)}
    return out


def class_means(per_seed, keys, class_names):
    """{key: {class: mean IoU (%) over the seeds}}."""
    return {key: {c: float(np.mean([100.0 * s[key]['iou'][c] for s in per_seed]))
                  for c in class_names} for key in keys}


def kept_classes(entry, class_names):
    """The classes a summary.json round entry gave pseudo-labels (selected share > 0)."""
    share = entry.get('selected_share') or {}
    return [c for c in class_names if (share.get(c) or 0) > 0]


def _mean_or_none(values):
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def health_side_by_side(summaries, class_names, methods=HEALTH_METHODS):
    """From `summaries` [{method: summary.json entries} one per seed], per method: 'kept' (per
    round, the mean over seeds of the number of classes with pseudo-labels) and, for the last
    round, per class the mean over seeds of the pseudo-labels' 'precision' and 'recall'
    (fractions; None where no seed has a value) and 'kept_share' (fraction of seeds that kept
    the class)."""
    out = {}
    for method in methods:
        runs = [s[method] for s in summaries if method in s]
        if not runs:
            continue
        rounds = min(len(r) for r in runs)
        last = [r[rounds - 1] for r in runs]
        out[method] = {
            'kept': [float(np.mean([len(kept_classes(r[i], class_names)) for r in runs]))
                     for i in range(rounds)],
            'precision': {c: _mean_or_none([(e.get('pseudo_precision') or {}).get(c)
                                            for e in last]) for c in class_names},
            'recall': {c: _mean_or_none([(e.get('pseudo_recall') or {}).get(c) for e in last])
                       for c in class_names},
            'kept_share': {c: float(np.mean([c in kept_classes(e, class_names) for e in last]))
                           for c in class_names},
            'round': rounds - 1, 'seeds': len(runs)}
    return out


def aggregate(per_seed, summaries, seeds, keys, class_names):
    """compare.json's content: the seeds, per method the mIoU spread, the paired differences,
    the per-class mean IoU and the ST / CBST round health."""
    return {'seeds': list(seeds), 'methods': method_spread(per_seed, keys),
            'differences': paired_differences(per_seed),
            'class_iou': class_means(per_seed, keys, class_names),
            'health': health_side_by_side(summaries, class_names)}


def _pct(value, form='%.1f'):
    return '-' if value is None else form % (100.0 * value)


def _spread_table(result, titles):
    lines = ['| method | mIoU mean ± sd | per seed |', '|---|---|---|']
    for key, m in result['methods'].items():
        lines.append('| %s | %.1f ± %.1f | %s |' % (titles[key], m['mean'], m['sd'], ', '.join(
            '%.1f' % v for v in m['values'])))
    lines += ['', '| difference (same seed) | mean ± sd (points) | per seed | beyond its '
              'spread |', '|---|---|---|---|']
    for label, d in result['differences'].items():
        lines.append('| %s | %+.1f ± %.1f | %s | %s |' % (label, d['mean'], d['sd'], ', '.join(
            '%+.1f' % v for v in d['values']), 'yes' if d['beyond'] else 'no'))
    return '\n'.join(lines) + '\n'


def _class_table(result, titles, class_names):
    lines = ['| method | %s |' % ' | '.join(class_names), '|---|' + '---|' * len(class_names)]
    for key, ious in result['class_iou'].items():
        lines.append('| %s | %s |' % (titles[key], ' | '.join('%.1f' % ious[c]
                                                              for c in class_names)))
    return '\n'.join(lines) + '\n'


def _health_table(result, titles, class_names):
    health = result['health']
    methods = list(health)
    if not methods:
        return 'No summary.json of ST or CBST.\n'
    lines = ['Classes with pseudo-labels per round (mean over seeds): ' + '; '.join(
        '%s %s' % (titles[m], ', '.join('%.1f' % k for k in health[m]['kept'])) for m in methods),
        '', 'Last round (%s), per class, mean over seeds: precision and recall (%%) of the '
        'pseudo-labels, and the share of seeds that kept the class.' % ', '.join(
            '%s: round %d' % (titles[m], health[m]['round']) for m in methods), '',
        '| class | %s |' % ' | '.join('%s %s' % (titles[m], col) for m in methods
                                      for col in ('precision', 'recall', 'kept in seeds')),
        '|---|' + '---:|' * (3 * len(methods))]
    for c in class_names:
        lines.append('| %s | %s |' % (c, ' | '.join(
            '%s | %s | %.0f%%' % (_pct(health[m]['precision'][c]), _pct(health[m]['recall'][c]),
                                  100 * health[m]['kept_share'][c]) for m in methods)))
    return '\n'.join(lines) + '\n'


def compare_markdown(result, titles, class_names):
    """compare.md of an aggregate() result; `titles`: {key: row title}."""
    n = len(result['seeds'])
    return '\n'.join([
        '# Demo over %d seeds: target val mIoU (%%)\n' % n,
        'Seeds %s: each seed draws the source model\'s initial weights, its training order and '
        'the rounds\' --seed-int; the generated data are the same for all. sd: the sample '
        'standard deviation over the seeds. A difference is beyond its spread when |mean| > sd '
        'and every seed has its sign.\n' % ', '.join(str(s) for s in result['seeds']),
        _spread_table(result, titles),
        '## Mean IoU per class (%)\n', _class_table(result, titles, class_names),
        '## Round health of ST and CBST (why the numbers differ)\n',
        _health_table(result, titles, class_names)])


def compare_figure(result, titles):
    """Two panels: mIoU per method (mean ± sd, the seeds as dots) and the paired differences
    (mean ± sd). Returns the figure."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, items, ylabel in (
            (axes[0], [(titles[k], m) for k, m in result['methods'].items()],
             'target val mIoU (%)'),
            (axes[1], list(result['differences'].items()), 'difference (mIoU points)')):
        xs = np.arange(len(items))
        ax.bar(xs, [m['mean'] for _, m in items], yerr=[m['sd'] for _, m in items], capsize=5,
               color='#9ab', edgecolor='#345')
        for x, (_, m) in zip(xs, items):
            ax.plot([x] * len(m['values']), m['values'], 'k.', alpha=0.6)
        ax.set_xticks(xs)
        ax.set_xticklabels([label for label, _ in items], rotation=30, ha='right', fontsize=8)
        ax.set_ylabel(ylabel)
        ax.grid(axis='y', alpha=0.3)
    axes[1].axhline(0, color='k', lw=0.8)
    axes[0].set_title('mIoU over %d seeds (bars: mean ± sd; dots: seeds)' % len(result['seeds']))
    axes[1].set_title('Paired differences over the same seeds')
    fig.tight_layout()
    return fig


def write_compare(output, result, titles, class_names):
    """OUTPUT/compare.json, compare.md and compare.png; returns their paths."""
    paths = [os.path.join(output, name) for name in ('compare.json', 'compare.md')]
    with open(paths[0], 'w') as f:
        json.dump(result, f, indent=1)
    with open(paths[1], 'w') as f:
        f.write(compare_markdown(result, titles, class_names))
    return paths + [save_figure(compare_figure(result, titles),
                                os.path.join(output, 'compare.png'))]
