"""`make demo`: the whole CBST pipeline on generated data, on the CPU, with the narrow model.

    python -m issegm.demo --output runs/demo [--seed 0] [--smoke]

The same scripts and flags a GPU user runs, only smaller, ending with predict.py on a few target
images (docs/demo.md).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import matplotlib
import numpy as np
from PIL import Image

from issegm.datasets import get_dataset, load_samples, read_sample, sample_name
from issegm.demo.health_report import write_health
from issegm.demo.make_data import generate
from util.errors import UserError, cli_entry
from util.metrics import format_table
from util.model_label import checkpoint_file

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # issegm/
SOURCE_MODEL = 'gta_rna-tiny_cls19_s8'
TARGET_MODEL = 'cityscapes_rna-tiny_cls19_s8'
# The CRST rows take CBST's settings plus the released CRST scripts' weights (yzou2/CRST
# mrkld.sh --mr-weight-kld 0.1, which its crst_seg.py applies twice: 0.01 here; lrent.sh
# --lr-weight-ent 0.25).
CBST_FLAGS = ['--kc-policy', 'cb', '--with-prior', 'False']
METHODS = (('st', 'ST', ['--kc-policy', 'global', '--with-prior', 'False']),
           ('cbst', 'CBST', CBST_FLAGS),
           ('cbst_sp', 'CBST-SP', ['--kc-policy', 'cb', '--with-prior', 'True']),
           ('crst_mrkld', 'CRST-MRKLD', CBST_FLAGS + ['--mr-weight-kld', '0.01']),
           ('crst_lrent', 'CRST-LRENT', CBST_FLAGS + ['--lr-weight-ent', '0.25']))
PREDICT_IMAGES = 3  # target val images predict.py runs on at the end

# Sizes and schedules. The full demo fits in 10 minutes on 2 cores; the smoke one in seconds.
# How the full one was chosen (a few tries, the same settings for ST, CBST and CBST-SP): with the
# generator's full shift (shift=1.0) the source model's most confident target predictions of
# road, sidewalk and car were mostly wrong (pseudo-label precision 12-32%) and no self-training
# recovered; at 0.5 the gap was small (source-only 17.5 vs 23.1 on source images); 0.7 leaves a
# clear gap with pseudo-labels that are mostly right. The self-training lr (0.006) is 3x below
# the source training's starting lr (0.02); 0.001-0.003 adapted too slowly in 3-5 rounds.
CONFIGS = {
    'full': dict(num_source=200, num_target_train=100, num_target_val=50, source_size=(160, 288),
                 target_size=(128, 256), shift=0.7, src_epochs=24, src_lr=0.02, crop=128,
                 batch=8, rounds=5, epoch_per_round=2, lr=0.006, tgt_port=0.2, step_tgt_port=0.1,
                 src_port=0.3, step_src_port=0.05, max_src_port=0.5, prior_window=9),
    'smoke': dict(num_source=8, num_target_train=6, num_target_val=4, source_size=(64, 112),
                  target_size=(64, 128), shift=0.7, src_epochs=1, src_lr=0.01, crop=64, batch=4,
                  rounds=1, epoch_per_round=1, lr=0.005, tgt_port=0.2, step_tgt_port=0.1,
                  src_port=0.5, step_src_port=0.05, max_src_port=0.5, prior_window=5),
}


def script(name):
    """Path of one of the pipeline's scripts in issegm/."""
    return os.path.join(SCRIPTS, name)


def run(step, command):
    """Run one pipeline step as a child process, its output streaming through."""
    print('\n=== %s\n$ %s' % (step, ' '.join(command)), flush=True)
    started = time.time()
    status = subprocess.call(command)
    if status != 0:
        raise UserError('demo step "%s" failed with exit status %d' % (step, status),
                        exit_code=status)
    print('=== %s: %.0f s' % (step, time.time() - started), flush=True)


def generate_domains(output, cfg, seed):
    """Generate the two domains once (a marker records the configuration)."""
    data = os.path.join(output, 'data')
    marker = os.path.join(data, 'generated.json')
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()
              if k.startswith('num_') or k.endswith('_size') or k == 'shift'}
    wanted['seed'] = seed
    if os.path.isfile(marker):
        with open(marker) as f:
            done = json.load(f)
        if done.get('config') == wanted:
            return done['paths']
    print('\n=== generating the synthetic source and target domains', flush=True)
    paths = generate(data, seed=seed, num_source=cfg['num_source'],
                     num_target_train=cfg['num_target_train'],
                     num_target_val=cfg['num_target_val'], source_size=cfg['source_size'],
                     target_size=cfg['target_size'], shift=cfg['shift'])
    with open(marker, 'w') as f:
        json.dump({'config': wanted, 'paths': paths}, f, indent=1)
    return paths


def train_source(output, cfg, paths, seed):
    """Source-only model: the narrow network from random weights (no ImageNet model exists)."""
    from util.symbol.resnet38 import parameter_shapes  # these import mxnet: only when training runs
    from util.weights import initial_weights, save_weights
    folder = os.path.join(output, 'source')
    final = checkpoint_file(folder, SOURCE_MODEL, cfg['src_epochs'])
    if os.path.isfile(final):
        return final
    start = checkpoint_file(folder, SOURCE_MODEL, 0)
    if not os.path.isfile(start):
        save_weights(start, *initial_weights(parameter_shapes(SOURCE_MODEL), seed))
    run('source-only training', [
        sys.executable, script('train_src.py'), '--gpus', 'cpu', '--dataset', 'gta',
        '--split', paths['gta_train_list'], '--data-root', paths['gta_root'], '--output', folder,
        '--model', SOURCE_MODEL, '--weights', start, '--batch-images', str(cfg['batch']),
        '--crop-size', str(cfg['crop']), '--origin-size', str(max(cfg['source_size'])),
        '--scale-rate-range', '0.7,1.3', '--lr-type', 'poly', '--base-lr', str(cfg['src_lr']),
        '--to-epoch', str(cfg['src_epochs']),
        '--prefetch-threads', '2', '--seed', str(seed), '--no-progress'])
    return final


def make_prior(output, cfg, paths):
    prior = os.path.join(output, 'spatial_prior', 'gta', 'prior_array.mat')
    if not os.path.isfile(prior):
        h, w = cfg['target_size']
        run('spatial prior', [
            sys.executable, script('make_prior.py'), '--data-root', paths['gta_root'],
            '--dataset', 'gta', '--split', paths['gta_train_list'], '--size', '%dx%d' % (h, w),
            '--window', str(cfg['prior_window']), '--output', prior, '--figures'])
    return prior


def self_train(output, cfg, paths, source_weights, prior, key, flags):
    """One orchestrator run; returns the final checkpoint of every round."""
    folder = os.path.join(output, key)
    test_scale = max(cfg['target_size'])
    command = [
        sys.executable, script('script-self-paced-self-trained-segresnet.py'),
        '--num-round', str(cfg['rounds']), '--test-scales', str(test_scale),
        '--scale-rate-range', '0.7,1.3', '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
        '--split', paths['gta_train_list'], '--split-tgt', paths['cityscapes_train_list'],
        '--data-root', paths['gta_root'], '--data-root-tgt', paths['cityscapes_root'],
        '--output', folder, '--model', TARGET_MODEL, '--weights', source_weights,
        '--batch-images', str(cfg['batch']), '--crop-size', str(cfg['crop']),
        '--init-tgt-port', str(cfg['tgt_port']), '--step-tgt-port', str(cfg['step_tgt_port']),
        '--init-src-port', str(cfg['src_port']), '--step-src-port', str(cfg['step_src_port']),
        '--max-src-port', str(cfg['max_src_port']), '--epoch-per-round',
        str(cfg['epoch_per_round']), '--seed-int', '0', '--mine-port', '0.8',
        '--mine-id-number', '3', '--mine-thresh', '0.001', '--base-lr', str(cfg['lr']),
        '--source-sample-policy', 'cumulative', '--prefetch-threads', '2', '--gpus', 'cpu',
        '--prior', prior, '--no-progress'] + flags
    run('self-training: %s' % key, command)
    return [checkpoint_file(os.path.join(folder, str(r)), TARGET_MODEL,
                            (r + 1) * cfg['epoch_per_round']) for r in range(cfg['rounds'])]


def evaluate(output, cfg, paths, weights, name):
    """evaluate.py on the target val split; returns its metrics.json."""
    folder = os.path.join(output, 'eval', name)
    metrics_path = os.path.join(folder, 'metrics.json')
    stale = os.path.isfile(metrics_path) and \
        os.path.getmtime(metrics_path) < os.path.getmtime(weights)
    if stale or not os.path.isfile(metrics_path):
        run('evaluation: %s' % name, [
            sys.executable, script('evaluate.py'), '--data-root', paths['cityscapes_root'],
            '--output', folder, '--dataset', 'cityscapes', '--phase', 'val',
            '--weights', weights, '--split', paths['cityscapes_val_list'],
            '--test-scales', str(max(cfg['target_size'])), '--test-flipping', '--gpus', 'cpu',
            '--no-progress'])
    with open(metrics_path) as f:
        return json.load(f)


def predict_targets(output, cfg, paths, weights, count=PREDICT_IMAGES):
    """predict.py on the first `count` target val images (their labels unused), as image files;
    returns its output folder."""
    folder = os.path.join(output, 'predict')
    summary = os.path.join(folder, 'summary.json')
    if os.path.isfile(summary) and os.path.getmtime(summary) >= os.path.getmtime(weights):
        return folder
    samples = load_samples(paths['cityscapes_root'], paths['cityscapes_val_list'], 'cityscapes')
    run('prediction: CBST model on %d target images' % count, [
        sys.executable, script('predict.py'), '--weights', weights, '--output', folder,
        '--test-scales', str(max(cfg['target_size'])), '--test-flipping', '--confidence',
        '--gpus', 'cpu', '--no-progress'] + [image for image, _ in samples[:count]])
    return folder


def write_results(output, curves, finals, class_names):
    """results.json, results.md and miou_per_round.png."""
    results = {key: round(100 * m['miou'], 2) for key, m in finals.items()}
    with open(os.path.join(output, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    titles = dict([('source', 'Source only')] + [(k, t) for k, t, _ in METHODS])
    rows = [(titles[key], np.array([m['iou'][c] for c in class_names]), m['miou'])
            for key, m in finals.items()]
    table = format_table(rows, class_names)
    with open(os.path.join(output, 'results.md'), 'w') as f:
        f.write('# Demo: synthetic GTA-5 -> Cityscapes, target val IoU (%)\n\n' + table + '\n')

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, title, _ in METHODS:
        ax.plot(range(len(curves[key])), [100 * v for v in curves[key]], marker='o', label=title)
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


@cli_entry
def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m issegm.demo',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--output', default=os.path.join('runs', 'demo'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--smoke', action='store_true', help='tiny sizes, one round (tests)')
    args = parser.parse_args(argv)
    cfg = CONFIGS['smoke' if args.smoke else 'full']
    started = time.time()
    output = os.path.abspath(args.output)
    os.makedirs(output, exist_ok=True)

    paths = generate_domains(output, cfg, args.seed)
    source_weights = train_source(output, cfg, paths, args.seed)
    prior = make_prior(output, cfg, paths)
    source_metrics = evaluate(output, cfg, paths, source_weights, 'source')
    curves, finals, last_weights = {}, {'source': source_metrics}, {}
    for key, _, flags in METHODS:
        rounds = self_train(output, cfg, paths, source_weights, prior, key, flags)
        last_weights[key] = rounds[-1]
        curve = [source_metrics['miou']]
        for r, weights in enumerate(rounds):
            metrics = evaluate(output, cfg, paths, weights, '%s/round_%d' % (key, r))
            curve.append(metrics['miou'])
        curves[key], finals[key] = curve, metrics
    results, table = write_results(output, curves, finals, get_dataset('cityscapes').class_names)
    write_health(output, METHODS)
    last = cfg['rounds'] - 1
    write_prediction_grid(output, paths, [
        ('source only', os.path.join(output, 'eval', 'source')),
        ('CBST', os.path.join(output, 'eval', 'cbst', 'round_%d' % last))])
    predicted = predict_targets(output, cfg, paths, last_weights['cbst'])
    minutes = (time.time() - started) / 60
    print('\n' + table)
    print('\ntarget val mIoU (%%): %s' % ', '.join(
        '%s %.1f' % (key, 100 * metrics['miou']) for key, metrics in finals.items()))
    print('demo finished in %.1f minutes; results in:' % minutes)
    for name in ('results.json', 'results.md', 'miou_per_round.png', 'predictions.png',
                 'health.md', 'health_per_round.png'):
        print('  ' + os.path.join(output, name))
    print('  %s (predict.py: labelIds/, trainIds/, color/, overlay/, confidence/, entropy/)'
          % predicted)
    return 0


if __name__ == '__main__':
    sys.exit(main())
