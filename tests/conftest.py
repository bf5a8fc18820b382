"""Shared test helpers: published-format weight files made from the reference lists."""
import os

import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')


def reference_params(name):
    """[(kind, name, shape)] from tests/fixtures/params_NAME.tsv (copied from the published files)."""
    rows = []
    with open(os.path.join(FIXTURES, 'params_%s.tsv' % name)) as f:
        for line in f:
            kind, pname, shape = line.rstrip('\n').split('\t')
            rows.append((kind, pname, tuple(int(x) for x in shape.split('x'))))
    return rows


def write_weight_file(path, expected, seed=0):
    """A weight file in the published format (arg:/aux: keys) for the given parameter list."""
    from util.weights import initial_weights, save_weights
    arg_params, aux_params = initial_weights(expected, seed)
    save_weights(str(path), arg_params, aux_params)
    return str(path)


def write_model_weights(path, model, seed=0):
    """A published-format weight file for any model label (e.g. the narrow rna-tiny variant)."""
    from util.symbol.resnet38 import parameter_shapes
    return write_weight_file(path, parameter_shapes(model), seed)


@pytest.fixture(scope='session')
def gta_s8_weights(tmp_path_factory):
    """Full ResNet-38 s8 GTA model weights written from the reference list (session-wide)."""
    path = tmp_path_factory.mktemp('weights') / 'gta_rna-a1_cls19_s8_ep-0000.params'
    return write_weight_file(path, reference_params('gta_rna-a1_cls19_s8'))


def _random_pair(rng, hw, label_ids):
    import numpy as np
    image = (rng.rand(hw[0], hw[1], 3) * 255).astype(np.uint8)
    label = rng.choice(label_ids, hw).astype(np.uint8)
    return image, label


def make_layout(root, layout, count, hw=(32, 64), split='train', seed=0,
                label_ids=(0, 7, 8, 11, 21, 23, 24, 26)):
    """Write `count` random image/label pairs in a dataset layout; returns [(image, label)]
    paths relative to root, in file order (cityscapes, gta or synthia)."""
    import os
    import numpy as np
    from issegm.datasets import write_png
    rng = np.random.RandomState(seed)
    pairs = []
    for i in range(count):
        if layout == 'cityscapes':
            city = 'testcity'
            image = 'leftImg8bit/%s/%s/%s_000000_%06d_leftImg8bit.png' % (split, city, city, i)
            label = 'gtFine/%s/%s/%s_000000_%06d_gtFine_labelIds.png' % (split, city, city, i)
        elif layout == 'gta':
            image, label = 'images/%05d.png' % (i + 1), 'labels/%05d.png' % (i + 1)
        else:
            image, label = 'RGB/%07d.png' % i, 'GT/labels/%07d.png' % i
        rgb, ids = _random_pair(rng, hw, label_ids)
        write_png(os.path.join(root, image), rgb)
        write_png(os.path.join(root, label), ids)
        pairs.append((image, label))
    return pairs


def procs_mentioning(token):
    """PIDs of live (non-zombie) processes whose command line contains token."""
    pids = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % d, 'rb') as f:
                cmd = f.read().decode('utf-8', 'replace')
            with open('/proc/%s/stat' % d) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if token in cmd and state != 'Z':
            pids.append(int(d))
    return pids
