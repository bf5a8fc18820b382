"""The demo's steps, each a child process running one of the scripts a GPU user runs; the
self-training methods side by side (`--jobs`), each method's rounds and evaluations one lane."""
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time

from issegm.datasets import load_samples
from util.errors import UserError
from util.model_label import checkpoint_file

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # issegm/
SOURCE_MODEL = 'gta_rna-tiny_cls19_s8'
TARGET_MODEL = 'cityscapes_rna-tiny_cls19_s8'
PREDICT_IMAGES = 3  # target val images predict.py runs on at the end


def script(name):
    """Path of one of the pipeline's scripts in issegm/."""
    return os.path.join(SCRIPTS, name)


def run(step, command, log=None):
    """Run one pipeline step as a child process, its output streaming through (or appended to
    the file object `log`, when steps run side by side)."""
    out = log or sys.stdout
    out.write('\n=== %s\n$ %s\n' % (step, ' '.join(command)))
    out.flush()
    started = time.time()
    status = subprocess.call(command, stdout=log, stderr=log and subprocess.STDOUT)
    if status != 0:
        where = ' (its output: %s)' % log.name if log else ''
        raise UserError('demo step "%s" failed with exit status %d%s' % (step, status, where),
                        exit_code=status)
    out.write('=== %s: %.0f s\n' % (step, time.time() - started))
    out.flush()


def train_source(output, cfg, paths, seed):
    """Source-only model: the narrow network from calibrated random weights (start_weights)."""
    from issegm.demo.source_start import start_weights  # these import mxnet: only when training
    from util.weights import save_weights
    folder = os.path.join(output, 'source')
    final = checkpoint_file(folder, SOURCE_MODEL, cfg['src_epochs'])
    if os.path.isfile(final):
        return final
    start = checkpoint_file(folder, SOURCE_MODEL, 0)
    if not os.path.isfile(start):
        samples = load_samples(paths['gta_root'], paths['gta_train_list'], 'gta')
        save_weights(start, *start_weights(SOURCE_MODEL, [image for image, _ in samples], seed))
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


def self_train(output, cfg, paths, source_weights, prior, method, seed, log=None):
    """One orchestrator run of `method` ((key, title, flags)); returns the final checkpoint of
    every round."""
    key, _, flags = method
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
        str(cfg['epoch_per_round']), '--seed-int', str(seed), '--mine-port', '0.8',
        '--mine-id-number', '3', '--mine-thresh', '0.001', '--base-lr', str(cfg['lr']),
        '--source-sample-policy', 'cumulative', '--prefetch-threads', '2', '--gpus', 'cpu',
        '--prior', prior, '--no-progress'] + flags
    run('self-training: %s' % key, command, log)
    return [checkpoint_file(os.path.join(folder, str(r)), TARGET_MODEL,
                            (r + 1) * cfg['epoch_per_round']) for r in range(cfg['rounds'])]


def evaluate(output, cfg, paths, weights, name, log=None):
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
            '--no-progress'], log)
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


def method_lane(output, cfg, paths, source_weights, prior, method, seed, log=None):
    """One method: its orchestrator run, then evaluate.py after each round. Returns the
    metrics.json of every round and the last round's weights."""
    key = method[0]
    rounds = self_train(output, cfg, paths, source_weights, prior, method, seed, log)
    return [evaluate(output, cfg, paths, weights, '%s/round_%d' % (key, r), log)
            for r, weights in enumerate(rounds)], rounds[-1]


def run_methods(output, cfg, paths, source_weights, prior, methods, seed, jobs=1):
    """Every method's lane, `jobs` at a time. The numbers do not depend on `jobs`: each child
    process computes alone (one OpenMP thread, util/kernels.py; its own seeds). With jobs > 1
    a lane's output goes to OUTPUT/logs/KEY.log. Returns {key: method_lane's result}."""
    if jobs == 1:
        return {m[0]: method_lane(output, cfg, paths, source_weights, prior, m, seed)
                for m in methods}
    os.makedirs(os.path.join(output, 'logs'), exist_ok=True)

    printing = threading.Lock()  # one whole line at a time from the lanes

    def say(line):
        with printing:
            sys.stdout.write(line + '\n')
            sys.stdout.flush()

    def lane(method):
        path = os.path.join(output, 'logs', '%s.log' % method[0])
        say('=== self-training: %s started (its output: %s)' % (method[0], path))
        started = time.time()
        with open(path, 'a') as log:
            result = method_lane(output, cfg, paths, source_weights, prior, method, seed, log)
        say('=== self-training and evaluation: %s: %.0f s' % (method[0], time.time() - started))
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {m[0]: pool.submit(lane, m) for m in methods}
        for done in concurrent.futures.as_completed(futures.values()):
            if done.exception() is not None:  # lanes not started never start; running ones end
                pool.shutdown(wait=True, cancel_futures=True)
                raise done.exception()
        return {key: future.result() for key, future in futures.items()}
