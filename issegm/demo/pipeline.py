"""`make demo`: the whole CBST pipeline on generated data, on the CPU, with the narrow model.

    python -m issegm.demo --output runs/demo [--seed 0] [--seeds N] [--smoke]

The same scripts and flags a GPU user runs, only smaller, ending with predict.py on a few target
images; with --seeds N, N training seeds and their comparison (docs/demo.md).
"""
import argparse
import json
import os
import sys
import time

import matplotlib
import numpy as np
from PIL import Image

from issegm.datasets import get_dataset, load_samples, read_sample, sample_name
from issegm.demo.compare import aggregate, write_compare
from issegm.demo.health_report import load_summaries, write_health
from issegm.demo.make_data import generate, generate_source_val
from issegm.demo.properties import add_counts, image_counts, measure_split, split_summary, \
    write_properties
from issegm.demo.steps import evaluate, make_prior, predict_targets, run, run_methods, script, \
    train_source
from util.errors import UserError, cli_entry
from util.files import read_text
from util.metrics import format_table

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

# The CRST rows take CBST's settings plus the released CRST scripts' weights (yzou2/CRST
# mrkld.sh --mr-weight-kld 0.1, which its crst_seg.py applies twice: 0.01 here; lrent.sh
# --lr-weight-ent 0.25).
CBST_FLAGS = ['--kc-policy', 'cb', '--with-prior', 'False']
METHODS = (('st', 'ST', ['--kc-policy', 'global', '--with-prior', 'False']),
           ('cbst', 'CBST', CBST_FLAGS),
           ('cbst_sp', 'CBST-SP', ['--kc-policy', 'cb', '--with-prior', 'True']),
           ('crst_mrkld', 'CRST-MRKLD', CBST_FLAGS + ['--mr-weight-kld', '0.01']),
           ('crst_lrent', 'CRST-LRENT', CBST_FLAGS + ['--lr-weight-ent', '0.25']))
# The demo's design (docs/demo.md, "The class balance"), recorded with the data so that a run
# of another design is never resumed: 2, long-tailed classes with larger rare objects and
# held-out source images; 3, the same data, the source model starting from BatchNorm
# statistics measured on source images (issegm/demo/source_start.py).
DATA_DESIGN = 3
TITLES = dict([('source', 'Source only')] + [(k, t) for k, t, _ in METHODS])
RESULT_FILES = ('results.json', 'results.md', 'miou_per_round.png', 'predictions.png',
                'health.md', 'health_per_round.png', 'properties.md',
                'predict/ (labelIds/, trainIds/, color/, overlay/, confidence/, entropy/)')

# Sizes and schedules (make demo's time on 2 cores: docs/demo.md); the smoke one in seconds.
# How the full one was chosen, with the source model of design 2 (a few tries, the same settings
# for ST, CBST and CBST-SP; kept unchanged since, so as not to tune on the methods): with the
# generator's full shift (shift=1.0) the source model's most confident target predictions of
# road, sidewalk and car were mostly wrong (pseudo-label precision 12-32%) and no self-training
# recovered; at 0.5 the gap was small (source-only 17.5 vs 23.1 on source images); 0.7 leaves a
# clear gap with pseudo-labels that are mostly right. The self-training lr (0.006) is 3x below
# the source training's starting lr (0.02); 0.001-0.003 adapted too slowly in 3-5 rounds.
CONFIGS = {
    'full': dict(num_source=200, num_source_val=50, num_target_train=100, num_target_val=50, source_size=(160, 288),
                 target_size=(128, 256), shift=0.7, src_epochs=24, src_lr=0.02, crop=128,
                 batch=8, rounds=5, epoch_per_round=2, lr=0.006, tgt_port=0.2, step_tgt_port=0.1,
                 src_port=0.3, step_src_port=0.05, max_src_port=0.5, prior_window=9),
    'smoke': dict(num_source=8, num_source_val=4, num_target_train=6, num_target_val=4, source_size=(64, 112),
                  target_size=(64, 128), shift=0.7, src_epochs=1, src_lr=0.01, crop=64, batch=4,
                  rounds=1, epoch_per_round=1, lr=0.005, tgt_port=0.2, step_tgt_port=0.1,
                  src_port=0.5, step_src_port=0.05, max_src_port=0.5, prior_window=5),
}


def generate_domains(output, cfg, seed):
    """Generate the two domains once (a marker records the configuration)."""
    data = os.path.join(output, 'data')
    marker = os.path.join(data, 'generated.json')
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()
              if k.startswith('num_') or k.endswith('_size') or k == 'shift'}
    wanted.update(seed=seed, design=DATA_DESIGN)
    if os.path.isfile(marker):
        with open(marker) as f:
            done = json.load(f)
        if done.get('config') == wanted:
            return done['paths']
        # the models and evaluations under OUTPUT belong to the old data: never mix them
        raise UserError('%s holds a demo run on other generated data (%s); remove it or '
                        'choose another --output' % (output, marker))
    print('\n=== generating the synthetic source and target domains', flush=True)
    paths = generate(data, seed=seed, num_source=cfg['num_source'],
                     num_target_train=cfg['num_target_train'],
                     num_target_val=cfg['num_target_val'], source_size=cfg['source_size'],
                     target_size=cfg['target_size'], shift=cfg['shift'])
    paths['gta_val_list'] = generate_source_val(data, seed, cfg['num_source_val'],
                                                cfg['source_size'])
    with open(marker, 'w') as f:
        json.dump({'config': wanted, 'paths': paths}, f, indent=1)
    return paths


def measure_properties(output, cfg, paths, source_weights):
    """properties.md/json (issegm/demo/properties.py): the class shares of both domains' labels
    and the source-only model's IoU and confidence per class on held-out source images and on
    the target val split (predict.py --confidence on each)."""
    if os.path.isfile(os.path.join(output, 'properties.json')) and os.path.getmtime(
            os.path.join(output, 'properties.json')) >= os.path.getmtime(source_weights):
        return
    measured = {}
    for domain, dataset, root, split in (
            ('source', 'gta', paths['gta_root'], paths['gta_val_list']),
            ('target', 'cityscapes', paths['cityscapes_root'], paths['cityscapes_val_list'])):
        folder = os.path.join(output, 'properties', domain)
        run('source model on held-out %s images' % domain, [
            sys.executable, script('predict.py'), '--weights', source_weights, '--output',
            folder, '--dataset', dataset, '--data-root', root, '--outputs', 'trainIds',
            '--confidence', '--test-scales', str(max(cfg['target_size'])), '--test-flipping',
            '--gpus', 'cpu', '--no-progress', split])
        measured[domain] = measure_split(load_samples(root, split, dataset), folder,
                                         get_dataset(dataset))
    shares = {'source': label_shares(paths['gta_root'], [paths['gta_train_list']], 'gta'),
              'target': label_shares(paths['cityscapes_root'], [
                  paths['cityscapes_train_list'], paths['cityscapes_val_list']], 'cityscapes')}
    write_properties(output, shares, measured['source'], measured['target'],
                     get_dataset('cityscapes').class_names)


def label_shares(root, lists, dataset):
    """split_summary (class shares only) of the labels of the list files."""
    info, total = get_dataset(dataset), None
    for split in lists:
        for _, label in load_samples(root, split, dataset):
            with Image.open(label) as img:
                gt = info.label_to_train[np.asarray(img)]
            total = add_counts(total, image_counts(gt, len(info.class_names)))
    return split_summary(total, info.class_names)


def write_results(output, curves, finals, class_names):
    """results.json, results.md and miou_per_round.png."""
    results = {key: round(100 * m['miou'], 2) for key, m in finals.items()}
    with open(os.path.join(output, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    rows = [(TITLES[key], np.array([m['iou'][c] for c in class_names]), m['miou'])
            for key, m in finals.items()]
    table = format_table(rows, class_names)
    with open(os.path.join(output, 'results.md'), 'w') as f:
        f.write('# Demo: synthetic GTA-5 -> Cityscapes, target val IoU (%)\n\n' + table + '\n')

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, curve in curves.items():
        ax.plot(range(len(curve)), [100 * v for v in curve], marker='o', label=TITLES[key])
    ax.set_xlabel('round (0 = source-only model)')
    ax.set_ylabel('target val mIoU (%)')
    ax.set_title('Self-training on the demo target domain')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(output, 'miou_per_round.png'), dpi=100)
    plt.close(fig)
    return results, table


def write_prediction_grid(output, paths, columns, rows=4):
    """predictions.png: target image, ground truth, then the colour predictions of `columns`."""
    info = get_dataset('cityscapes')
    samples = load_samples(paths['cityscapes_root'], paths['cityscapes_val_list'], 'cityscapes')
    samples = samples[:rows]
    titles = ['target image', 'ground truth'] + [title for title, _ in columns]
    fig, axes = plt.subplots(len(samples), len(titles), squeeze=False,
                             figsize=(2.6 * len(titles), 1.5 * len(samples)))
    for i, (image_path, label_path) in enumerate(samples):
        image, label = read_sample(image_path, label_path)
        name = sample_name(image_path)
        panels = [image, info.palette[label]]
        for _, folder in columns:
            with Image.open(os.path.join(folder, 'color', name + '.png')) as img:
                panels.append(np.asarray(img.convert('RGB')))
        for j, panel in enumerate(panels):
            axes[i][j].imshow(panel)
            axes[i][j].axis('off')
            if i == 0:
                axes[i][j].set_title(titles[j], fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(output, 'predictions.png'), dpi=100)
    plt.close(fig)


def run_seed(output, cfg, paths, prior, seed, methods=METHODS, jobs=1):
    """One seed of the demo under `output`: the source model, its properties, the `methods`
    ((key, title, flags)), the tables, plots, health report and predict.py's outputs. Returns
    {key: final metrics.json} (key 'source' and each method's). `jobs` methods run side by
    side (steps.run_methods)."""
    source_weights = train_source(output, cfg, paths, seed)
    source_metrics = evaluate(output, cfg, paths, source_weights, 'source')
    measure_properties(output, cfg, paths, source_weights)
    lanes = run_methods(output, cfg, paths, source_weights, prior, methods, seed, jobs)
    curves = {key: [source_metrics['miou']] + [m['miou'] for m in per_round]
              for key, (per_round, _) in lanes.items()}
    finals = dict([('source', source_metrics)] +
                  [(key, per_round[-1]) for key, (per_round, _) in lanes.items()])
    write_results(output, curves, finals, get_dataset('cityscapes').class_names)
    write_health(output, methods)
    last = cfg['rounds'] - 1
    write_prediction_grid(output, paths, [
        ('source only', os.path.join(output, 'eval', 'source')),
        ('CBST', os.path.join(output, 'eval', 'cbst', 'round_%d' % last))])
    predict_targets(output, cfg, paths, lanes['cbst'][1])
    return finals


def compare_seeds(output, seeds, finals, methods=METHODS):
    """compare.md/json/png of the seeds' finals ({seed: run_seed's result}); their paths."""
    seed_outputs = [os.path.join(output, 'seed_%d' % s) for s in seeds]
    summaries = [load_summaries(folder, methods) for folder in seed_outputs]
    keys = ['source'] + [key for key, _, _ in methods]
    class_names = get_dataset('cityscapes').class_names
    result = aggregate([finals[s] for s in seeds], summaries, seeds, keys, class_names)
    return write_compare(output, result, TITLES, class_names)


def default_jobs(cpus=None):
    """Lanes side by side: one more than the CPUs (at most one per method), so that no CPU
    idles while the last methods finish: on 2 CPUs, 3 lanes and then 2 ran make demo's five
    methods in 13.2 minutes where 2, 2 and 1 took 14.5 (docs/demo.md)."""
    return min(len(METHODS), (cpus or os.cpu_count() or 1) + 1)


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m issegm.demo',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--output', default=os.path.join('runs', 'demo'))
    parser.add_argument('--seed', type=int, default=0,
                        help='the data\'s seed and the first training seed (default 0)')
    parser.add_argument('--seeds', type=int, default=1,
                        help='training seeds SEED .. SEED+N-1, each in OUTPUT/seed_K with '
                             'compare.md/json/png over them (default 1: the one-seed demo in '
                             'OUTPUT)')
    parser.add_argument('--only-seed', type=int,
                        help='with --seeds: run only this seed of them, no comparison (spread '
                             'the seeds over processes or machines sharing OUTPUT, then rerun '
                             'without it to compare)')
    parser.add_argument('--methods', default=','.join(key for key, _, _ in METHODS),
                        help='comma-separated, of %s (default: all; cbst is needed for '
                             'predict.py)' % ', '.join(key for key, _, _ in METHODS))
    parser.add_argument('--jobs', type=int, default=default_jobs(),
                        help='self-training methods run side by side, each a process of one '
                             'thread; the numbers do not depend on it (default: one more than '
                             'the CPUs, at most 5: 3 on 2 CPUs)')
    parser.add_argument('--smoke', action='store_true', help='tiny sizes, one round (tests)')
    args = parser.parse_args(argv)
    if args.seed < 0 or args.seeds < 1:
        raise UserError('--seed must be >= 0 and --seeds >= 1, got %d and %d'
                        % (args.seed, args.seeds))
    if args.jobs < 1:
        raise UserError('--jobs must be >= 1, got %d' % args.jobs)
    if args.only_seed is not None and not args.seed <= args.only_seed < args.seed + args.seeds:
        raise UserError('--only-seed %d is not one of the seeds %d..%d'
                        % (args.only_seed, args.seed, args.seed + args.seeds - 1))
    wanted = args.methods.split(',')
    known = [key for key, _, _ in METHODS]
    if 'cbst' not in wanted or not set(wanted) <= set(known):
        raise UserError('--methods must name cbst and only %s, got %r'
                        % (', '.join(known), args.methods))
    return args, [m for m in METHODS if m[0] in wanted]


@cli_entry
def main(argv=None):
    args, methods = _parse_args(argv)
    cfg = CONFIGS['smoke' if args.smoke else 'full']
    started = time.time()
    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)
    paths = generate_domains(output, cfg, args.seed)
    prior = make_prior(output, cfg, paths)
    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.only_seed is not None and len(seeds) > 1:
        run_seed(os.path.join(output, 'seed_%d' % args.only_seed), cfg, paths, prior,
                 args.only_seed, methods, args.jobs)
        print('seed %d finished in %.1f minutes' % (args.only_seed, (time.time() - started) / 60))
        return 0
    if len(seeds) == 1:
        finals = run_seed(output, cfg, paths, prior, seeds[0], methods, args.jobs)
        written = RESULT_FILES
    else:
        finals = {s: run_seed(os.path.join(output, 'seed_%d' % s), cfg, paths, prior, s, methods,
                              args.jobs) for s in seeds}
        written = [os.path.relpath(p, output)
                   for p in compare_seeds(output, seeds, finals, methods)]
        print('\n' + read_text(os.path.join(output, 'compare.md')).split('\n## ')[0])
        finals = finals[seeds[0]]
    print('\n' + read_text(os.path.join(output if len(seeds) == 1 else os.path.join(
        output, 'seed_%d' % seeds[0]), 'results.md')))
    print('target val mIoU (%%): %s' % ', '.join(
        '%s %.1f' % (key, 100 * metrics['miou']) for key, metrics in finals.items()))
    print('demo finished in %.1f minutes; results in:' % ((time.time() - started) / 60))
    for name in written:
        print('  ' + os.path.join(output, name))
    return 0


if __name__ == '__main__':
    sys.exit(main())
