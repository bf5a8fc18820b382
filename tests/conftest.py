"""Shared test helpers: published-format weight files made from the reference lists."""
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from issegm.datasets import get_dataset, write_list, write_png

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
    from util.weights import initial_weights, save_weights  # MXNet: only for tests that need it
    arg_params, aux_params = initial_weights(expected, seed)
    save_weights(str(path), arg_params, aux_params)
    return str(path)


def write_model_weights(path, model, seed=0):
    """A published-format weight file for any model label (e.g. the narrow rna-tiny variant)."""
    from util.symbol.resnet38 import parameter_shapes  # MXNet, as above
    return write_weight_file(path, parameter_shapes(model), seed)


@pytest.fixture(scope='session')
def gta_s8_weights(tmp_path_factory):
    """Full ResNet-38 s8 GTA model weights written from the reference list (session-wide)."""
    path = tmp_path_factory.mktemp('weights') / 'gta_rna-a1_cls19_s8_ep-0000.params'
    return write_weight_file(path, reference_params('gta_rna-a1_cls19_s8'))


def _random_pair(rng, hw, label_ids):
    image = (rng.rand(hw[0], hw[1], 3) * 255).astype(np.uint8)
    label = rng.choice(label_ids, hw).astype(np.uint8)
    return image, label


def make_layout(root, layout, count, hw=(32, 64), split='train', seed=0,
                label_ids=(0, 7, 8, 11, 21, 23, 24, 26)):
    """Write `count` random image/label pairs in a dataset layout; returns [(image, label)]
    paths relative to root, in file order (cityscapes, gta or synthia)."""
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


def on_grid(array):
    """The pixels at rows and columns 4, 12, 20, ... (the centres of the 8x8 cells where the
    round's health samples confidence and agreement), restated without round_health."""
    rows, cols = np.arange(4, array.shape[-2], 8), np.arange(4, array.shape[-1], 8)
    return array[..., rows[:, None], cols[None, :]]


def write_round_data(base, num_source=4, source_hw=(48, 96), target_hw=(48, 96), seeds=(7, 8, 1)):
    """A tiny self-training task under `base`: `num_source` GTA-5 source pairs and 4 Cityscapes
    target pairs with their lists, and rna-tiny weights (`seeds`: source, target, weights);
    returns (gta root, cityscapes root, weight file)."""
    gta, cs = base / 'gta', base / 'cs'
    write_list(str(gta / 'train.lst'), make_layout(str(gta), 'gta', num_source, hw=source_hw,
                                                   seed=seeds[0]))
    write_list(str(cs / 'val.lst'), make_layout(str(cs), 'cityscapes', 4, hw=target_hw,
                                                split='val', seed=seeds[1]))
    weights = write_model_weights(base / 'gta_rna-tiny_cls19_s8_ep-0000.params',
                                  'gta_rna-tiny_cls19_s8', seed=seeds[2])
    return gta, cs, weights


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


class TimedLines:
    """Lines of a command's output with the time each arrived (time.time()), for tests that
    time a stop from the moment of a failure rather than from the start (which, on a busy
    machine, includes a minute of starting processes and importing MXNet)."""

    def __init__(self):
        self.lines = []  # [(arrival time, line without its newline)]
        self._partial = ''

    def write(self, text):  # a file-like target (util.ps_launcher.launch's `out`)
        now = time.time()
        parts = (self._partial + text).split('\n')
        self._partial = parts.pop()
        self.lines += [(now, line) for line in parts]

    def flush(self):
        pass

    def text(self):
        return '\n'.join(line for _, line in self.lines) + self._partial

    def first(self, needle):
        """The arrival time of the first line containing `needle` (AssertionError if none)."""
        for when, line in self.lines:
            if needle in line:
                return when
        raise AssertionError('no line contains %r:\n%s' % (needle, self.text()[-4000:]))


def run_timed(command, timeout, **kwargs):
    """Run a command, stderr into stdout, reading its lines as they come: (returncode,
    TimedLines, the time it ended)."""
    lines = TimedLines()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)
    deadline = time.time() + timeout
    try:
        for line in proc.stdout:
            lines.write(line)
            if time.time() > deadline:
                raise subprocess.TimeoutExpired(command, timeout)
        returncode = proc.wait(timeout=max(1, deadline - time.time()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return returncode, lines, time.time()


def copy_with_broken_images(root, lst, dst):
    """A copy of the dataset ROOT listed in LST under DST whose images are not decodable
    (labels intact): a worker reading it fails while training."""
    with open(lst) as f:
        rows = [line.split('\t') for line in f.read().splitlines()]
    for image, label in rows:
        for rel, data in ((image, b'not a png'), (label.strip(), None)):
            target = os.path.join(str(dst), rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if data is None:
                with open(os.path.join(root, rel), 'rb') as f:
                    data = f.read()
            with open(target, 'wb') as f:
                f.write(data)


# The two CRST settings the multi-worker round tests run: plain CBST, and LR-ENT + MR-KLD (soft
# labels read by every worker, the regulariser in the loss).
ROUND_CRST = [[], ['--lr-weight-ent', '0.25', '--mr-weight-kld', '0.01']]
ROUND_CRST_IDS = ['cbst', 'lrent+mrkld']
ROUND_MODEL = 'cityscapes_rna-tiny_cls19_s8'


def two_worker_round(tmp_path, script, extra, timeout):
    """One orchestrator round (SCRIPT, one of its two names) on 8 generated GTA-5 and 4
    Cityscapes images with `--workers 2` and the flags `extra`: (completed process with stdout
    and stderr together, output folder)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gta, cs = tmp_path / 'gta', tmp_path / 'cs'
    write_list(str(gta / 'train.lst'), make_layout(str(gta), 'gta', 8, hw=(48, 96), seed=5))
    write_list(str(cs / 'val.lst'), make_layout(str(cs), 'cityscapes', 4, hw=(48, 96),
                                                split='val', seed=6))
    weights = write_model_weights(tmp_path / 'gta_rna-tiny_cls19_s8_ep-0000.params',
                                  'gta_rna-tiny_cls19_s8')
    out = tmp_path / 'run'
    cmd = [sys.executable, os.path.join(repo, 'issegm', script), '--num-round', '1',
           '--epoch-per-round', '1', '--test-scales', '96', '--dataset', 'gta',
           '--dataset-tgt', 'cityscapes', '--split', str(gta / 'train.lst'),
           '--split-tgt', str(cs / 'val.lst'), '--data-root', str(gta),
           '--data-root-tgt', str(cs), '--output', str(out), '--model', ROUND_MODEL,
           '--weights', weights, '--batch-images', '2', '--crop-size', '64',
           '--init-tgt-port', '0.2', '--init-src-port', '0.5', '--mine-port', '0.5',
           '--base-lr', '1e-3', '--gpus', 'cpu', '--no-progress', '--workers', '2'] + extra
    res = subprocess.run(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return res, out


def check_two_worker_round(res, out, crst):
    """What every two-worker round must show: success, the CRST flags reaching phase train, the
    checkpoint, 2 batches per worker (4 source + 4 target samples, 2 images per batch), the
    second worker's log."""
    assert res.returncode == 0, res.stdout[-4000:]
    if crst:
        assert '--lr-weight-ent 0.25 --mr-weight-kld 0.01' in res.stdout
        assert (out / '0' / 'self_train' / 'soft_labels.json').is_file()
        assert 'CRST: lr_weight_ent 0.25, mr_weight_kld 0.01' in res.stdout
    assert (out / '0' / ('%s_ep-0001.params' % ROUND_MODEL)).is_file()
    done = json.loads((out / '0' / 'train.done').read_text())
    assert done['history'][0]['workers'] == 2 and done['history'][0]['batches'] == 2
    assert (out / 'round0-train.rank1.log').is_file()


@pytest.fixture(scope='module')
def gta8(tmp_path_factory):
    """8 generated GTA-5 images (48x96) and gta_rna-tiny_cls19_s8 weights for the multi-worker
    tests: (root, list path, weights path)."""
    base = tmp_path_factory.mktemp('gta8')
    root = base / 'gta'
    lst = str(root / 'train.lst')
    write_list(lst, make_layout(str(root), 'gta', 8, hw=(48, 96), seed=4))
    model = 'gta_rna-tiny_cls19_s8'
    weights = write_model_weights(base / ('%s_ep-0000.params' % model), model, seed=2)
    return str(root), lst, weights


def blocky_ids(rng, hw, ids, block=8):
    """A label map of `ids` in square blocks (like scenes, not noise), uint8 (H, W)."""
    coarse = rng.choice(np.asarray(ids, np.uint8), (-(-hw[0] // block), -(-hw[1] // block)))
    return np.kron(coarse, np.ones((block, block), np.uint8))[:hw[0], :hw[1]]


# Approximate pixel shares (%) of Cityscapes' classes in street scenes, by label id (road,
# sidewalk, building, ..., bicycle; then parking, rail track, guard rail, bridge, tunnel,
# polegroup, caravan, trailer, which map to ignore): what street_scene draws its classes by.
STREET_SHARES = {7: 32.6, 8: 5.4, 11: 20.2, 12: .6, 13: .8, 17: 1.1, 19: .2, 20: .5, 21: 14.1,
                 22: 1.0, 23: 3.6, 24: 1.1, 25: .1, 26: 6.2, 27: .2, 28: .2, 31: .2, 32: .1,
                 33: .4, 9: .6, 10: .1, 14: .1, 15: .1, 16: .05, 18: .05, 29: .05, 30: .05}
VOID_IDS = (0, 1, 2, 3, 4, 5, 6)  # unlabeled, ego vehicle, ..., ground: Cityscapes' void ids


def street_scene(rng, hw, void_share=0.0, shares=None, spread=10.0, block=8):
    """Cityscapes label ids (H, W) uint8 of a generated street scene: blocks of classes drawn
    with shares that vary from scene to scene around `shares` (default STREET_SHARES; a
    Dirichlet draw, `spread` = its concentration: lower, wilder scenes), and a `void_share` of
    the blocks void ids."""
    shares = STREET_SHARES if shares is None else shares
    ids = np.array(sorted(shares), np.uint8)
    base = np.array([shares[i] for i in ids], np.float64)
    probs = rng.dirichlet(spread * base / base.sum() + 1e-3)
    coarse = rng.choice(ids, (-(-hw[0] // block), -(-hw[1] // block)), p=probs)
    void = rng.rand(*coarse.shape) < void_share
    coarse[void] = rng.choice(np.array(VOID_IDS, np.uint8), int(void.sum()))
    return np.kron(coarse, np.ones((block, block), np.uint8))[:hw[0], :hw[1]]


def official_train_ids():
    """(256,) uint8 label id -> trainId, from cityscapesscripts' table itself (255: ignore)."""
    from cityscapesscripts.helpers.labels import id2label
    table = np.full(256, 255, np.uint8)
    for label_id, label in id2label.items():
        if label_id >= 0 and 0 <= label.trainId < 255:
            table[label_id] = label.trainId
    return table


def write_street_labels(root, pairs, void_share=0.0, seed=0, train_ids=False):
    """Overwrite the labels of `pairs` (relative to root) with street scenes (street_scene) of
    their size; with `train_ids`, as cityscapesscripts' id -> trainId table makes them."""
    rng = np.random.RandomState(seed)
    table = official_train_ids()
    for _, label in pairs:
        path = os.path.join(root, label)
        with Image.open(path) as img:
            hw = img.size[::-1]
        ids = street_scene(rng, hw, void_share)
        write_png(path, table[ids] if train_ids else ids)


def write_synthia_raw(root, count, hw=(38, 64), seed=0):
    """SYNTHIA-RAND-CITYSCAPES as downloaded: RGB/NAME.png (8-bit RGB) and GT/LABELS/NAME.png
    (16-bit, 3 channels: class id in R, instance id in G, 0 in B). Returns {name: class ids}."""
    rng = np.random.RandomState(seed)
    ids = {}
    for i in range(count):
        name = '%07d' % i
        write_png(os.path.join(root, 'RGB', name + '.png'),
                  (rng.rand(hw[0], hw[1], 3) * 255).astype(np.uint8))
        ids[name] = blocky_ids(rng, hw, range(23))
        raw = np.zeros(hw + (3,), np.uint16)
        raw[:, :, 2] = ids[name]  # OpenCV writes B, G, R: channel 2 is R
        raw[:, :, 1] = rng.randint(0, 4000, hw)  # instance ids, above 255 too
        os.makedirs(os.path.join(root, 'GT', 'LABELS'), exist_ok=True)
        assert cv2.imwrite(os.path.join(root, 'GT', 'LABELS', name + '.png'), raw)
    return ids


def write_gta_pair(root, name, image_hw, label_hw, seed=0, palette=None):
    """GTA-5 as downloaded: images/NAME.png (8-bit RGB) and labels/NAME.png (palette PNG of
    Cityscapes label ids); returns (image, label ids)."""
    rng = np.random.RandomState(seed)
    image = (rng.rand(image_hw[0], image_hw[1], 3) * 255).astype(np.uint8)
    ids = blocky_ids(rng, label_hw, (0, 7, 8, 11, 17, 21, 23, 24, 26))
    write_png(os.path.join(root, 'images', name + '.png'), image)
    write_png(os.path.join(root, 'labels', name + '.png'), ids,
              palette=get_dataset('gta').palette if palette is None else palette)
    return image, ids


def as_train_ids(root, pairs, dataset='cityscapes'):
    """Overwrite the labels of `pairs` (relative to root) with their trainIds, as a user who
    lists *_gtFine_labelTrainIds.png files in place of the labelIds does."""
    table = get_dataset(dataset).label_to_train
    for _, label in pairs:
        path = os.path.join(root, label)
        write_png(path, table[np.asarray(Image.open(path))])


# Capabilities that let root write where permission bits say no (we run the tests as root).
DAC_CAPABILITIES = 'cap_dac_override,cap_dac_read_search,cap_fowner'


def without_write_override(command):
    """`command` (a list) run with the capabilities that let root ignore permission bits
    dropped (capsh), so that a read-only folder stops it as it stops a user; the command as it
    is when not root; pytest.skip with the reason when neither works here."""
    if os.geteuid() != 0:
        return list(command)
    capsh = shutil.which('capsh')
    if capsh is None:
        pytest.skip('running as root without capsh: a read-only folder cannot stop root here')
    probe = subprocess.run([capsh, '--drop=' + DAC_CAPABILITIES, '--', '-c', 'exit 0'],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip('capsh cannot drop %s here: %s' % (DAC_CAPABILITIES, probe.stderr))
    return [capsh, '--drop=' + DAC_CAPABILITIES, '--', '-c', 'exec "$0" "$@"'] + list(command)
