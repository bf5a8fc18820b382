"""CRST training crops: SegTrainIter's soft labels and regulariser mask against a plain
restatement on the full-size maps of phase val (issegm/crst/netmaps.py record, soft labels per
crop), and the hard-label crops unchanged."""
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

from issegm import cbst, datasets
from issegm.crst import lrent, netmaps
from issegm.crst.crop_labels import crop_pixel_index
from issegm.crst.settings import CrstSettings, label_names
from issegm.data_iter import (Domain, LoaderSettings, SegTrainIter, make_train_crop,
                              self_training_samples)
from issegm.rounds.val_target import TargetImage
from issegm.sampling import CropSettings, plan_crop
from issegm.testtime.one_image import upsample_probs

CITYSCAPES = datasets.get_dataset('cityscapes')
ALPHA = 0.3
CROP, STRIDE, ORIGIN = 32, 8, 1600  # windows of 28 to 52 pixels (max shape 1024x2048)
CROPS = CropSettings(CROP, STRIDE, (0.7, 1.3), mine_port=0.5, mine_id=(0, 13),
                     mine_id_priority=(13,))


def _save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array, np.uint8)).save(path)


@pytest.fixture(scope='module')
def round_dir(tmp_path_factory):
    """Two source images, two target images with phase val's LR-ENT outputs: network maps (one
    image scaled as itself, one smaller), the record, pseudo-label PNGs. Returns (source,
    target, folder, {name: soft labels of the full image})."""
    base = tmp_path_factory.mktemp('crst_round')
    rng = np.random.RandomState(5)
    folder = str(base / 'out' / '0' / 'self_train')
    geometry = [((60, 90), (60, 90)), ((60, 90), (48, 72))]
    nets = []
    for hw, scaled in geometry:
        logits = rng.randn(19, -(-scaled[0] // 8), -(-scaled[1] // 8)) * 4
        nets.append((np.exp(logits) / np.exp(logits).sum(0)).astype(np.float32))
    pool = cbst.ConfidencePool(19, 'cb')  # phase val's thresholds at portion 0.5
    for net, (hw, scaled) in zip(nets, geometry):
        pool.add(upsample_probs(net, 8, scaled, hw))
    thresh = pool.thresholds(0.5)[0]
    source, target, images, soft = [], [], [], {}
    for k, (net, (hw, scaled)) in enumerate(zip(nets, geometry)):
        rgb = rng.randint(0, 256, hw + (3,)).astype(np.uint8)
        src_label = rng.choice([7, 8, 26, 0], hw).astype(np.uint8)
        _save(str(base / 'gta' / ('s%d.png' % k)), rgb)
        _save(str(base / 'gta' / ('l%d.png' % k)), src_label)
        source.append((str(base / 'gta' / ('s%d.png' % k)), str(base / 'gta' / ('l%d.png' % k))))
        name = 'city_%06d_000019_leftImg8bit' % k
        os.makedirs(os.path.join(folder, netmaps.FOLDER), exist_ok=True)
        np.save(os.path.join(folder, netmaps.FOLDER, name + '.npy'), net)
        full = upsample_probs(net, 8, scaled, hw)
        pseudo, _, _ = lrent.lrent_label_maps(full, thresh, ALPHA)
        image_path = str(base / 'cs' / (name + '.png'))
        _save(image_path, rgb[::-1])
        _save(os.path.join(folder, 'pseudo_labelIds', name + '.png'),
              CITYSCAPES.train_to_label[pseudo])
        target.append((image_path, os.path.join(folder, 'pseudo_labelIds', name + '.png')))
        images.append(TargetImage(name, image_path, None, scaled, hw))
        soft[name] = lrent.soft_labels(full, thresh, ALPHA)  # the whole image's, restated
    netmaps.write_record(folder, ALPHA, thresh, 8, images)
    return source, target, folder, soft


def _samples(round_dir, alpha):
    source, target, folder, _ = round_dir
    soft = netmaps.soft_sources(folder, alpha, target) if alpha else None
    return self_training_samples(source, Domain('gta', ORIGIN), target,
                                 Domain('cityscapes', ORIGIN), 1.0, 0, soft)


@pytest.mark.slow
def test_crops_carry_the_soft_labels_of_the_pixels_they_show(round_dir):
    samples = _samples(round_dir, ALPHA)
    settings = CrstSettings(ALPHA, 'kld', 0.01)
    crst_crops = dataclasses.replace(CROPS, crst=settings, num_classes=19)
    seen_target = seen_labelled = 0
    for seed in range(12):
        for sample in samples:
            data, hard, soft, mask = make_train_crop(sample, seed, crst_crops)
            # the crop and its hard label are CBST's
            plain = make_train_crop(sample, seed, CROPS)
            np.testing.assert_array_equal(data, plain[0])
            np.testing.assert_array_equal(hard, plain[1])
            labelled = hard != 255
            assert soft.shape == (19,) + hard.shape and mask.shape == hard.shape
            np.testing.assert_array_equal(soft[:, ~labelled], 0)
            np.testing.assert_array_equal(mask, np.full(hard.shape, float(sample.is_target)))
            if not sample.is_target:  # one-hot source labels
                for k in range(19):
                    np.testing.assert_array_equal(soft[k], (hard == k).astype(np.float32))
                continue
            seen_target += 1
            seen_labelled += labelled.sum()
            # restatement: the crop's plan, the pixel each label cell shows, the soft label the
            # whole image has there
            label = datasets.read_label(sample.label)
            plan = plan_crop(np.random.RandomState(seed), label, CROPS, ORIGIN, sample.max_shape,
                             sample.rule, label_to_train=sample.label_to_train)
            index = crop_pixel_index(plan, label.shape, CROP, STRIDE)
            rows, cols = np.divmod(index[labelled], label.shape[1])
            whole = round_dir[3][datasets.sample_name(sample.image)]
            np.testing.assert_allclose(soft[:, labelled], whole[:, rows, cols], rtol=0,
                                       atol=1e-5)
            np.testing.assert_allclose(soft[:, labelled].sum(axis=0), 1, atol=1e-5)
            np.testing.assert_array_equal(soft[:, labelled].argmax(axis=0), hard[labelled])
    assert seen_target == 24 and seen_labelled > 100


@pytest.mark.parametrize('settings', [CrstSettings(ALPHA, None, 0.0),
                                      CrstSettings(0.0, 'l2', 0.5),
                                      CrstSettings(ALPHA, 'ent', 0.1)])
@pytest.mark.slow
def test_iterator_batches_follow_the_label_names(round_dir, settings):
    samples = _samples(round_dir, settings.lr_weight_ent)
    crst_crops = dataclasses.replace(CROPS, crst=settings, num_classes=19)
    kw = dict(seed=3, loading=LoaderSettings(1, 'process'))
    with SegTrainIter(samples, 2, crst_crops, **kw) as it, \
            SegTrainIter(samples, 2, CROPS, **kw) as plain:
        names = [d.name for d in it.provide_label]
        assert tuple(names) == label_names(settings)
        shapes = {'softmax_label': (2, 4, 4), 'crst_soft_label': (2, 19, 4, 4),
                  'crst_reg_mask': (2, 4, 4)}
        assert [d.shape for d in it.provide_label] == [shapes[n] for n in names]
        order, seeds = it.epoch_plan(it.epoch)
        for b, (batch, plain_batch) in enumerate(zip(it, plain)):
            np.testing.assert_array_equal(batch.data[0].asnumpy(), plain_batch.data[0].asnumpy())
            np.testing.assert_array_equal(batch.label[0].asnumpy(),
                                          plain_batch.label[0].asnumpy())
            for k in range(2):  # each image of the batch is its sample's crop
                i = 2 * b + k
                crop = make_train_crop(samples[order[i]], int(seeds[i]), crst_crops)
                for array, expected in zip(batch.label, crop[1:]):
                    np.testing.assert_array_equal(array.asnumpy()[k], expected)
        assert b == 1


def test_soft_sources_need_the_record_and_the_maps(round_dir, tmp_path):
    from util.errors import UserError
    source, target, folder, _ = round_dir
    with pytest.raises(UserError, match='used --lr-weight-ent 0.3, phase train got 0.5'):
        netmaps.soft_sources(folder, 0.5, target)
    with pytest.raises(UserError, match='soft_labels.json not found'):
        netmaps.soft_sources(str(tmp_path), ALPHA, target)
    with pytest.raises(UserError, match='no LR-ENT map of target image other'):
        netmaps.soft_sources(folder, ALPHA, [('x/other.png', 'y.png')])
