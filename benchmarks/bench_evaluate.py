"""Non-network time per full-size (2048x1024) image of evaluate.py's post-processing.

Measured directly on the functions evaluate.py calls for each image at test scale 2048, s8:
reading the image and its label (read_sample), upsampling 19x128x256 network maps to
19x1024x2048 (upsample_probs: Pillow bicubic per class, on the 2 threads evaluate.py's
Predictor uses), argmax (cbst.argmax_max), the confusion
update and writing the four PNGs (save_outputs). The network itself is not run.

    python benchmarks/bench_evaluate.py [--repeat 3] [--scores]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from issegm.cbst import argmax_max  # noqa: E402
from issegm.datasets import get_dataset, read_sample, write_png  # noqa: E402
from issegm.evaluate import save_outputs  # noqa: E402
from issegm.inference import UPSAMPLE_THREADS, upsample_probs  # noqa: E402
from util.metrics import ConfusionMeter  # noqa: E402

HEIGHT, WIDTH, STRIDE, CLASSES = 1024, 2048, 8, 19


def inputs(folder, seed=0):
    """A smooth random softmax map at network resolution and a blocky image/label pair."""
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
    image_path = os.path.join(folder, 'img.png')
    label_path = os.path.join(folder, 'lab.png')
    write_png(image_path, image)
    write_png(label_path, info.train_to_label[train])
    return net.astype(np.float32), image_path, label_path, info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--scores', action='store_true',
                        help='also time --save-predictions (float16 .npy of the scores)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        net, image_path, label_path, info = inputs(tmp)
        meter = ConfusionMeter(CLASSES)
        steps = ['loading', 'upsampling', 'argmax', 'confusion', 'writing']
        times = {s: [] for s in steps}
        for r in range(args.repeat):
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
                         probs if args.scores else None)
            times['writing'].append(time.perf_counter() - t)
        assert probs.shape == (CLASSES, HEIGHT, WIDTH)
        best = {s: min(v) * 1000 for s, v in times.items()}
        print('evaluate post-processing per %dx%d image, %d classes (best of %d):'
              % (WIDTH, HEIGHT, CLASSES, args.repeat))
        for s in steps:
            print('  %-11s %8.1f ms' % (s, best[s]))
        print('  %-11s %8.1f ms%s' % ('total', sum(best.values()),
                                      ' (writing includes the float16 scores)'
                                      if args.scores else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
