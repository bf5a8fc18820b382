"""predict.py's images per second beside evaluate.py's, on the same full-size (2048x1024) images
and predictors, with `--gpus cpu` and `--gpus cpu:2`.

Both loops run in this process on predictors bound beforehand (model loading is left out):
evaluate.evaluate_samples on the images without labels (it writes labelId, trainId and color
PNGs) and prediction.images.predict_images writing the same three kinds, then predict's default four
(with the RGB overlay). Runs alternate; best of --repeat. The three shared kinds must be
byte-identical. The narrow rna-tiny model by default; --full: ResNet-38 (slow on a CPU).

    python benchmarks/bench_predict.py [--images 3] [--repeat 2] [--full]
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
from issegm.datasets import get_dataset, write_png  # noqa: E402
from issegm.evaluate import EvalOutputs, evaluate_samples  # noqa: E402
from issegm.prediction.images import Settings, predict_images  # noqa: E402
from issegm.prediction.outputs import DEFAULT_KINDS  # noqa: E402
from issegm.testtime.image_list import PredictionOptions, Timings  # noqa: E402

HEIGHT, WIDTH, STRIDE = 1024, 2048, 8
SHARED = ('labelIds', 'trainIds', 'color')
EVALUATE_DIRS = {'labelIds': 'labelId', 'trainIds': 'trainId', 'color': 'color'}


def make_images(folder, count):
    """Blocky random images (about as compressible as street scenes, unlike pure noise)."""
    rng = np.random.RandomState(0)
    paths = []
    for i in range(count):
        blocks = rng.randint(0, 256, (HEIGHT // 16, WIDTH // 16, 3)).astype(np.uint8)
        image = np.kron(blocks, np.ones((16, 16, 1), np.uint8))
        noise = rng.randint(-8, 9, image.shape)
        paths.append(os.path.join(folder, 'img%d.png' % i))
        write_png(paths[-1], np.clip(image + noise, 0, 255).astype(np.uint8))
    return paths


def read_tree(folder, kinds, dirs=None):
    files = {}
    for kind in kinds:
        sub = os.path.join(folder, (dirs or {}).get(kind, kind))
        for name in sorted(os.listdir(sub)):
            with open(os.path.join(sub, name), 'rb') as f:
                files[(kind, name)] = f.read()
    return files


def run_evaluate(predictors, images, out, info):
    evaluate_samples(predictors, [(p, None) for p in images], info,
                     PredictionOptions([WIDTH], False), EvalOutputs(out), prefetch_threads=1,
                     progress=False)


def run_predict(kinds):
    def run(predictors, images, out, info):
        settings = Settings(info, [WIDTH], False, kinds, 0.5, out, 1, False)
        predict_images(predictors, images, settings, Timings())
    return run


def measure(model, images, repeat, tmp):
    import mxnet as mx
    from issegm.testtime.one_image import make_predictors
    from util.weights import load_weights
    info = get_dataset('cityscapes')
    arg, aux = load_weights(write_model_weights(os.path.join(tmp, model + '_ep-0000.params'),
                                                model))
    loops = {'evaluate.py': run_evaluate, 'predict.py, same 3 PNGs': run_predict(SHARED),
             'predict.py, default 4 PNGs': run_predict(DEFAULT_KINDS)}
    seconds, same = {}, True
    for devices in ('cpu', 'cpu:2'):
        contexts = [mx.cpu(0)] if devices == 'cpu' else [mx.cpu(0), mx.cpu(1)]
        predictors = make_predictors(model, arg, aux, contexts, STRIDE, float64_softmax=True)
        run_evaluate(predictors, images[:len(contexts)], os.path.join(tmp, 'warm'), info)
        for r in range(repeat):
            for name, loop in loops.items():
                out = os.path.join(tmp, 'out-%s-%d-%d' % (devices, r, len(seconds)))
                t = time.perf_counter()
                loop(predictors, images, out, info)
                seconds.setdefault((devices, name), []).append(time.perf_counter() - t)
                if name == 'evaluate.py':
                    reference = read_tree(out, SHARED, EVALUATE_DIRS)
                else:
                    same = same and read_tree(out, SHARED) == reference
    return {k: len(images) / min(v) for k, v in seconds.items()}, same


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=3)
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--full', action='store_true', help='ResNet-38 (rna-a1) instead of '
                                                            'the narrow rna-tiny model')
    args = parser.parse_args()
    model = 'cityscapes_rna-%s_cls19_s8' % ('a1' if args.full else 'tiny')
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(os.path.join(tmp, 'images'), args.images)
        rates, same = measure(model, images, args.repeat, tmp)
    print('images per second, %d %dx%d images, %s, scale %d, no flipping, best of %d '
          '(%d cores):' % (args.images, WIDTH, HEIGHT, model, WIDTH, args.repeat,
                           os.cpu_count()))
    print('  %-28s %10s %10s' % ('', '--gpus cpu', 'cpu:2'))
    for name in ('evaluate.py', 'predict.py, same 3 PNGs', 'predict.py, default 4 PNGs'):
        print('  %-28s %10.3f %10.3f' % (name, rates[('cpu', name)], rates[('cpu:2', name)]))
    for devices in ('cpu', 'cpu:2'):
        ratio = rates[(devices, 'predict.py, same 3 PNGs')] / rates[(devices, 'evaluate.py')]
        print('  predict / evaluate, --gpus %-6s %.2fx' % (devices, ratio))
    print('  labelIds, trainIds, color byte-identical to evaluate.py\'s: %s'
          % ('yes' if same else 'NO'))
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
