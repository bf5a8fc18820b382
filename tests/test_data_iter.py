"""Training data: sample lists, SegTrainIter, prefetch (crops and mining: test_sampling.py)."""
import os
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

from issegm import datasets
from issegm.data_iter import (Domain, LoaderSettings, SegTrainIter, TrainSample, make_train_crop,
                              self_training_samples, source_only_samples)
from issegm.sampling import SELF_TRAINING, SOURCE_ONLY, CropSettings
from util.errors import UserError
from util.prefetch import Prefetcher

GTA = datasets.get_dataset('gta')
INLINE = LoaderSettings(prefetch_threads=0)  # crops made in the calling thread


# ---------------------------------------------------------------- helpers

def _save_rgb(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(path)


def _save_label(path, ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.ascontiguousarray(ids, np.uint8)).save(path)


def make_gta(root, images, labels):
    """GTA-5 layout: images/00001.png, labels/00001.png (Cityscapes label ids) + a list file."""
    lines = []
    for k, (rgb, ids) in enumerate(zip(images, labels), 1):
        name = '%05d.png' % k
        _save_rgb(os.path.join(root, 'images', name), rgb)
        _save_label(os.path.join(root, 'labels', name), ids)
        lines.append(('images/' + name, 'labels/' + name))
    lst = os.path.join(root, 'train.lst')
    datasets.write_list(lst, lines)
    return datasets.load_samples(str(root), lst, 'gta')


def make_cityscapes_pseudo(root, out, images, pseudo):
    """Cityscapes images (leftImg8bit/...) with pseudo-label PNGs (label ids) under `out`."""
    lines = []
    for k, (rgb, ids) in enumerate(zip(images, pseudo)):
        name = 'aachen_%06d_000019' % k
        image = 'leftImg8bit/train/aachen/%s_leftImg8bit.png' % name
        _save_rgb(os.path.join(root, image), rgb)
        label = os.path.join(out, '0', 'self_train', 'pseudo_labelIds', name + '.png')
        _save_label(label, ids)
        lines.append((os.path.join(root, image), label))
    return lines


def random_scene(rng, h, w, ids=(7, 8, 11, 21, 23, 26, 0, 1)):
    rgb = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    small = rng.choice(ids, (h // 8 + 1, w // 8 + 1))
    label = np.kron(small, np.ones((8, 8), np.int64))[:h, :w].astype(np.uint8)
    return rgb, label


def epoch_arrays(it):
    data, label = [], []
    for batch in it:
        data.append(batch.data[0].asnumpy())
        label.append(batch.label[0].asnumpy())
    return np.concatenate(data), np.concatenate(label)


@pytest.fixture
def alarm():
    """Fail instead of hanging forever."""
    def on_alarm(signum, frame):
        raise TimeoutError('test took too long (hang?)')
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- sample lists

def test_source_selection_matches_upstream():
    source = [('src/%02d.png' % i, 'srclab/%02d.png' % i) for i in range(50)]
    target = [('tgt/%d.png' % i, 'pseudo/%d.png' % i) for i in range(7)]
    for seed in (0, 1, 5, 123):
        previous = []
        for port in (0.0, 0.1, 0.3, 0.62, 1.0):
            got = self_training_samples(source, Domain('gta', 1914), target,
                                        Domain('cityscapes', 2048), port, seed)
            num = int(50 * port)
            np.random.seed(seed)
            expect = np.random.choice(50, num, replace=False)
            assert [s.image for s in got[:num]] == [source[i][0] for i in expect]
            assert [s.label for s in got[:num]] == [source[i][1] for i in expect]
            assert [(s.image, s.label) for s in got[num:]] == target
            chosen = [s.image for s in got[:num]]
            assert chosen[:len(previous)] == previous  # cumulative: grows with S
            previous = chosen
            for s in got[:num]:
                assert s.origin_size == 1914 and s.max_shape == (1024, 2048)
                assert s.label_to_train[7] == 0 and s.label_to_train[0] == 255
            for s in got[num:]:
                assert s.origin_size == 2048 and s.max_shape == (1024, 2048)
            assert {s.rule for s in got} == {SELF_TRAINING}
    src = source_only_samples(source, 'gta', 1914)
    assert len(src) == 50 and src[0].max_shape == (1052, 1914)
    assert {s.rule for s in src} == {SOURCE_ONLY}
    syn = source_only_samples(source[:2], 'synthia', 1280)
    assert syn[0].max_shape == (760, 1280) and syn[0].label_to_train[3] == 0


# ---------------------------------------------------------------- crops and batches

def test_batches_shapes_and_values(tmp_path):
    rng = np.random.RandomState(0)
    scenes = [random_scene(rng, 60, 90) for _ in range(7)]
    samples = source_only_samples(make_gta(str(tmp_path / 'gta'), *zip(*scenes)), 'gta', 90)
    allowed = set(GTA.label_to_train[np.unique(np.concatenate(
        [lab.ravel() for _, lab in scenes]))].tolist()) | {255}
    with SegTrainIter(samples, 2, CropSettings(30), seed=4, loading=LoaderSettings(2)) as it:
        assert it.provide_data[0].shape == (2, 3, 32, 32)
        assert it.provide_label[0].name == 'softmax_label'
        assert it.provide_label[0].shape == (2, 4, 4)
        orders = []
        for epoch in range(2):
            batches = list(it)
            assert len(batches) == len(it) == 3
            for b in batches:
                data, label = b.data[0].asnumpy(), b.label[0].asnumpy()
                assert data.shape == (2, 3, 32, 32) and data.dtype == np.float32
                assert label.shape == (2, 4, 4) and label.dtype == np.float32
                assert set(np.unique(label).tolist()) <= allowed
                assert np.abs(data).max() < 3.0
            orders.append(list(it.epoch_indices))
            with pytest.raises(StopIteration):
                it.next()
            it.reset()
        assert orders[0] != orders[1]


@pytest.mark.slow
def test_mining_finds_rare_class(tmp_path):
    h, w = 200, 300
    ids = np.full((h, w), 7, np.uint8)   # road
    ids[100:110, 150:160] = 33           # bicycle, train id 18
    ids[40:50, 60:70] = 24               # person, train id 11
    rgb = np.zeros((h, w, 3), np.uint8)
    paths = make_gta(str(tmp_path / 'gta'), [rgb], [ids])[0]
    sample = TrainSample(paths[0], paths[1], GTA.label_to_train, 2048, (1024, 2048),
                         SELF_TRAINING)

    def share(cls, **mining):
        hits = 0
        for seed in range(60):
            _, label = make_train_crop(sample, seed,
                                       CropSettings(32, scale_rate_range=(1.0, 1.0), **mining))
            hits += (label == cls).any()
        return hits / 60.0

    assert share(18) < 0.3
    assert share(18, mine_port=1.0, mine_id=[11], mine_id_priority=[18]) == 1.0
    # priority classes absent -> the present classes of mine_id
    assert share(11, mine_port=1.0, mine_id=[11, 3], mine_id_priority=[5]) == 1.0
    assert 0.2 < share(18, mine_port=0.5, mine_id_priority=[18]) < 0.85


def test_self_training_iterator_reads_both_domains(tmp_path):
    rng = np.random.RandomState(2)
    src = make_gta(str(tmp_path / 'gta'), *zip(*[random_scene(rng, 50, 80) for _ in range(10)]))
    pseudo = [np.where(rng.rand(40, 80) < 0.5, 26, 0).astype(np.uint8) for _ in range(3)]
    tgt = make_cityscapes_pseudo(str(tmp_path / 'cs'), str(tmp_path / 'out'),
                                 [rng.randint(0, 256, (40, 80, 3)) for _ in range(3)], pseudo)
    samples = self_training_samples(src, Domain('gta', 2048), tgt, Domain('cityscapes', 2048),
                                    0.5, 0)
    assert len(samples) == 8
    crops = CropSettings(16, scale_rate_range=(0.5, 1.0), mine_port=0.5, mine_id=[13])
    with SegTrainIter(samples, 4, crops, seed=0, loading=INLINE) as it:
        _, label = epoch_arrays(it)
    assert label.shape == (8, 2, 2)
    assert set(np.unique(label).tolist()) <= set(GTA.label_to_train.tolist())
    assert (label == 13).any()  # car, from the target pseudo-labels (id 26 -> train id 13)


def test_iterator_refuses_bad_mining_and_oversized_source_images(tmp_path):
    samples = _small_dataset(str(tmp_path / 'gta'), n=2)
    with pytest.raises(UserError, match='self-training samples only'):
        SegTrainIter(samples, 1, CropSettings(16, mine_port=0.5, mine_id=[1]), loading=INLINE)
    st = _small_dataset(str(tmp_path / 'gta2'), n=2, rule=SELF_TRAINING)
    with pytest.raises(UserError, match='below 255'):
        SegTrainIter(st, 1, CropSettings(16, mine_port=0.5, mine_id=[1, 255]), loading=INLINE)
    small = [s._replace(max_shape=(64, 90)) for s in samples]  # the images are 64x96
    with SegTrainIter(small, 1, CropSettings(16), seed=0, loading=INLINE) as it:
        with pytest.raises(UserError, match='larger than the 64x90 max shape'):
            next(it)
    huge = [s._replace(origin_size=10 ** 6) for s in samples]  # a window of 0 pixels
    with SegTrainIter(huge, 1, CropSettings(16), seed=0, loading=INLINE) as it:
        with pytest.raises(UserError, match='cannot crop'):
            next(it)


def _small_dataset(root, n=9, rule=SOURCE_ONLY):
    """n GTA-like 64x96 samples, scale rates referring to their longer side."""
    rng = np.random.RandomState(5)
    pairs = make_gta(root, *zip(*[random_scene(rng, 64, 96) for _ in range(n)]))
    if rule == SOURCE_ONLY:
        return source_only_samples(pairs, 'gta', 96)
    return [TrainSample(image, label, GTA.label_to_train, 96, (64, 96), SELF_TRAINING)
            for image, label in pairs]


@pytest.mark.slow
def test_thread_process_inline_give_same_batches(tmp_path, alarm):
    samples = _small_dataset(str(tmp_path / 'gta'), rule=SELF_TRAINING)
    results = {}
    for kind, workers in [('thread', 2), ('process', 2), ('thread', 0), ('thread', 1)]:
        with SegTrainIter(samples, 2, CropSettings(24, mine_port=0.5, mine_id=[0, 2]), seed=11,
                          loading=LoaderSettings(workers, kind)) as it:
            first = epoch_arrays(it)
            it.reset()
            second = epoch_arrays(it)
        results[kind, workers] = first + second
    ref = results['thread', 0]
    for key, arrays in results.items():
        for a, b in zip(arrays, ref):
            np.testing.assert_array_equal(a, b, err_msg=str(key))
    assert not np.array_equal(ref[0], ref[2])  # a new epoch gives new crops


def test_reset_at_start_or_end_of_epoch_gives_same_epochs(tmp_path):
    samples = _small_dataset(str(tmp_path / 'gta'), n=4)
    with SegTrainIter(samples, 2, CropSettings(16), seed=9, loading=INLINE,
                      begin_epoch=3) as end_reset:
        fit_style = []
        for _ in range(2):  # Module.fit: iterate, then reset
            fit_style.append(epoch_arrays(end_reset))
            end_reset.reset()
    with SegTrainIter(samples, 2, CropSettings(16), seed=9, begin_epoch=3) as start_reset:
        loop_style = []
        for _ in range(2):  # reset, then iterate
            start_reset.reset()
            assert start_reset.epoch == 3 + len(loop_style)
            loop_style.append(epoch_arrays(start_reset))
        assert start_reset.batches_per_epoch == len(start_reset) == 2
    for a, b in zip(fit_style, loop_style):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_sharding_gives_disjoint_shards(tmp_path):
    samples = _small_dataset(str(tmp_path / 'gta'), n=11)
    full = SegTrainIter(samples, 1, CropSettings(16), seed=3, loading=INLINE)
    order, _ = full.epoch_plan(0)
    shards = []
    for part in range(3):
        it = SegTrainIter(samples, 2, CropSettings(16), seed=3, loading=INLINE, num_parts=3,
                          part_index=part)
        assert len(it) == 11 // 3 // 2 == 1
        assert len(list(it)) == 1
        assert list(it.epoch_indices) == list(order[part::3][:2])
        shards.append(set(it.epoch_indices.tolist()))
        it.reset()
        assert len(list(it)) == 1
    assert not (shards[0] & shards[1] or shards[0] & shards[2] or shards[1] & shards[2])
    with pytest.raises(UserError):
        SegTrainIter(samples, 2, CropSettings(16), num_parts=3, part_index=3)
    with pytest.raises(UserError):
        SegTrainIter(samples, 4, CropSettings(16), num_parts=3)  # 3 per shard: no batch of 4


BAD_INPUTS = ['missing image', 'missing label', 'corrupt image', 'corrupt label',
              'size mismatch']


@pytest.mark.parametrize('kind', ['thread', pytest.param('process', marks=pytest.mark.slow)])
@pytest.mark.parametrize('problem', BAD_INPUTS)
def test_bad_input_is_user_error(tmp_path, alarm, kind, problem):
    samples = _small_dataset(str(tmp_path / 'gta'), n=4)
    image, label = samples[2].image, samples[2].label
    bad = {'missing image': image, 'missing label': label, 'corrupt image': image,
           'corrupt label': label, 'size mismatch': label}[problem]
    if problem.startswith('missing'):
        os.remove(bad)
    elif problem.startswith('corrupt'):
        with open(bad, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n' + b'\x00garbage' * 10)
    else:
        _save_label(bad, np.zeros((10, 10), np.uint8))
    with SegTrainIter(samples, 1, CropSettings(16), seed=0,
                      loading=LoaderSettings(2, kind)) as it:
        with pytest.raises(UserError) as info:
            for _ in range(2):  # the bad sample is hit in the first or the second epoch
                list(it)
                it.reset()
    assert os.path.basename(bad) in str(info.value)
    assert type(info.value) is UserError and info.value.__cause__ is None


# ---------------------------------------------------------------- prefetch

def _square(x):
    if x == 'user':
        raise UserError('bad job')
    if x == 'bug':
        raise ValueError('bug')
    return x * x


@pytest.mark.parametrize('kind', ['thread', pytest.param('process', marks=pytest.mark.slow)])
def test_prefetch_order_and_errors(kind, alarm):
    with Prefetcher(_square, 3, kind, ahead=4) as pre:
        assert list(pre.map(range(20))) == [x * x for x in range(20)]
        gen = pre.map([1, 2, 'user', 4])
        assert next(gen) == 1 and next(gen) == 4
        with pytest.raises(UserError, match='bad job') as info:
            next(gen)
        assert info.value.__cause__ is None
        with pytest.raises(ValueError):
            list(pre.map([1, 'bug']))
        assert list(pre.map([5])) == [25]  # still usable after errors
    assert list(Prefetcher(_square, 0).map([2, 3])) == [4, 9]
    with pytest.raises(UserError):
        Prefetcher(_square, 1, 'fork')


def test_prefetch_stays_ahead_but_bounded():
    started = []
    lock = threading.Lock()

    def work(x):
        with lock:
            started.append(x)
        return x

    with Prefetcher(work, 2, 'thread', ahead=4) as pre:
        gen = pre.map(range(100))
        for consumed in range(1, 11):
            assert next(gen) == consumed - 1
            assert len(started) <= consumed + 4
        deadline = time.time() + 5
        while len(started) < 14 and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert len(started) == 14  # runs 4 jobs ahead of the consumer, not more
        gen.close()
