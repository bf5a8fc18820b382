"""evaluate.py per full-size (2048x1024) image: its post-processing, and its whole loop on one
device against two (`--gpus cpu` and `--gpus cpu:2`).

1. Measured directly on the functions evaluate.py calls for each image at test scale 2048, s8:
   reading the image and its label (read_sample), upsampling 19x128x256 network maps to
   19x1024x2048 (upsample_probs: Pillow bicubic per class, on the 2 threads evaluate.py's
   Predictor uses), argmax (cbst.argmax_max), the confusion update and writing the four PNGs
   (save_outputs). The network itself is not run.
2. evaluate.evaluate_samples, network included (the narrow rna-tiny model), on --images
   generated images with one Predictor on cpu(0) and with one on each of cpu(0) and cpu(1):
   seconds per image side by side, and a check that the outputs are byte-identical. MXNet
   already spreads each operator over the cores, so on a 2-core machine the gain is only the
   overlap of one image's upsampling with the other device's network; the split pays with
   several GPUs.

    python benchmarks/bench_evaluate.py [--repeat 3] [--scores] [--images 4]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from conftest import write_model_weights  # noqa: E402
from issegm.cbst import argmax_max  # noqa: E402
from issegm.datasets import get_dataset, read_sample, write_png  # noqa: E402
from issegm.evaluate import EvalOutputs, evaluate_samples, save_outputs  # noqa: E402
from issegm.testtime.image_list import PredictionOptions  # noqa: E402
from issegm.testtime.one_image import (UPSAMPLE_THREADS, make_predictors,  # noqa: E402
                                       upsample_probs)
from util.metrics import ConfusionMeter  # noqa: E402
from util.weights import load_weights  # noqa: E402

MODEL = 'cityscapes_rna-tiny_cls19_s8'

HEIGHT, WIDTH, STRIDE, CLASSES = 1024, 2048, 8, 19
TEST = PredictionOptions([WIDTH])  # one scale, no flipping


def inputs(folder, seed=0, stem='img'):
    """A smooth random softmax map at network resolution and a blocky image/label pair
    (FOLDER/STEM.png, FOLDER/STEM_label.png)."""
    import cv2
    rng = np.random.RandomState(seed)
    logits = rng.randn(CLASSES, HEIGHT // STRIDE // 8, WIDTH // STRIDE // 8).astype(np.float32)
    logits = np.stack([cv2.resize(c, (WIDTH // STRIDE, HEIGHT // STRIDE)) for c in logits]) * 4
    net = np.exp(logits - logits.max(axis=0))
    net /= net.sum(axis=0)
    info = get_dataset('cityscapes')
    train = np.kron(rng.randint(0, 20, (HEIGHT // 32, WIDTH // 32)),
                    np.ones((32, 32), np.int64)).astype(np.uint8)
    train[train == 19] = 255
    image = (rng.rand(HEIGHT, WIDTH, 3) * 255).astype(np.uint8)
    image_path = os.path.join(folder, stem + '.png')
    label_path = os.path.join(folder, stem + '_label.png')
    write_png(image_path, image)
    write_png(label_path, info.train_to_label[train])
    return net.astype(np.float32), image_path, label_path, info


def post_processing(tmp, repeat, with_scores):
    net, image_path, label_path, info = inputs(tmp)
    meter = ConfusionMeter(CLASSES)
    steps = ['loading', 'upsampling', 'argmax', 'confusion', 'writing']
    times = {s: [] for s in steps}
    for r in range(repeat):
        t = time.perf_counter()
        image, label = read_sample(image_path, label_path)
        times['loading'].append(time.perf_counter() - t)
        t = time.perf_counter()
        probs = upsample_probs(net, STRIDE, (HEIGHT, WIDTH), image.shape[:2],
                               threads=UPSAMPLE_THREADS)
        times['upsampling'].append(time.perf_counter() - t)
        t = time.perf_counter()
        pred = argmax_max(probs)[0]
        times['argmax'].append(time.perf_counter() - t)
        t = time.perf_counter()
        gt = info.label_to_train[label]
        meter.update(gt, pred)
        times['confusion'].append(time.perf_counter() - t)
        t = time.perf_counter()
        save_outputs(os.path.join(tmp, 'out'), 'img%d' % r, pred, gt, info,
                     probs if with_scores else None)
        times['writing'].append(time.perf_counter() - t)
    assert probs.shape == (CLASSES, HEIGHT, WIDTH)
    best = {s: min(v) * 1000 for s, v in times.items()}
    print('evaluate post-processing per %dx%d image, %d classes (best of %d):'
          % (WIDTH, HEIGHT, CLASSES, repeat))
    for s in steps:
        print('  %-11s %8.1f ms' % (s, best[s]))
    print('  %-11s %8.1f ms%s' % ('total', sum(best.values()),
                                  ' (writing includes the float16 scores)'
                                  if with_scores else ''))


def folder_bytes(folder):
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(dirpath, name), 'rb') as f:
                files[os.path.relpath(os.path.join(dirpath, name), folder)] = f.read()
    return files


def one_device_against_two(tmp, num_images, repeat):
    """evaluate_samples with the predictors of `cpu` and of `cpu:2`, runs alternating."""
    import mxnet as mx
    info = get_dataset('cityscapes')
    samples = [inputs(os.path.join(tmp, 'images'), seed=i, stem='img%d' % i)[1:3]
               for i in range(num_images)]
    arg, aux = load_weights(write_model_weights(os.path.join(tmp, MODEL + '_ep-0000.params'),
                                                MODEL))
    setups = {'cpu': [mx.cpu(0)], 'cpu:2': [mx.cpu(0), mx.cpu(1)]}
    seconds = {name: [] for name in setups}
    outputs = {}
    for run in range(repeat):
        for name, contexts in setups.items():
            predictors = make_predictors(MODEL, arg, aux, contexts, STRIDE, float64_softmax=True)
            evaluate_samples(predictors, samples[:len(contexts)], info, TEST,
                             EvalOutputs(os.path.join(tmp, 'warm')),
                             progress=False)  # bind the modules
            out = os.path.join(tmp, 'out-%s-%d' % (name, run))
            t = time.perf_counter()
            evaluate_samples(predictors, samples, info, TEST, EvalOutputs(out),
                             prefetch_threads=1, progress=False)
            seconds[name].append((time.perf_counter() - t) / num_images)
            outputs[name] = folder_bytes(out)
    best = {name: min(v) for name, v in seconds.items()}
    print('evaluate loop per %dx%d image, network included (%s, scale %d, no flipping), '
          '%d images, best of %d:' % (WIDTH, HEIGHT, MODEL, WIDTH, num_images, repeat))
    print('  --gpus cpu    %6.3f s' % best['cpu'])
    print('  --gpus cpu:2  %6.3f s   (%.2fx the speed of one device; %d cores)'
          % (best['cpu:2'], best['cpu'] / best['cpu:2'], os.cpu_count()))
    same = outputs['cpu'] == outputs['cpu:2']
    print('  outputs byte-identical: %s (%d files)'
          % ('yes' if same else 'NO', len(outputs['cpu'])))
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--scores', action='store_true',
                        help='also time --save-predictions (float16 .npy of the scores)')
    parser.add_argument('--images', type=int, default=4,
                        help='images of the one-device-against-two loop (0: skip it)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        post_processing(tmp, args.repeat, args.scores)
    if args.images > 0:
        with tempfile.TemporaryDirectory() as tmp:
            if not one_device_against_two(tmp, args.images, min(args.repeat, 2)):
                return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
