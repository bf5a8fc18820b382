"""Label maps, list files and bad-input handling of the dataset layer."""
import os
import subprocess
import sys

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS

from conftest import make_layout
from issegm.datasets import (DATASETS, get_dataset, load_samples, read_list, read_sample,
                             resolve_split, write_list)
from util.errors import UserError


def run_script(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True)


def test_cityscapes_and_gta_use_official_train_ids():
    for name in ('cityscapes', 'gta'):
        info = get_dataset(name)
        for lab in CS_LABELS:
            if lab.id < 0:
                continue
            want = lab.trainId if 0 <= lab.trainId < 255 else 255
            assert info.label_to_train[lab.id] == want, (name, lab.name)
        assert len(info.class_names) == 19 and info.class_names[18] == 'bicycle'
        assert info.train_to_label[13] == 26 and info.train_to_label[255] == 0


def test_cityscapes16_table():
    info = get_dataset('cityscapes16')
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 23: 9, 24: 10,
                25: 11, 26: 12, 28: 13, 32: 14, 33: 15}
    for label_id in range(256):
        assert info.label_to_train[label_id] == expected.get(label_id, 255)
    assert info.class_names == ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                                'traffic light', 'traffic sign', 'vegetation', 'sky', 'person',
                                'rider', 'car', 'bus', 'motorcycle', 'bicycle')
    for label_id, train_id in expected.items():
        assert info.train_to_label[train_id] == label_id


def test_synthia_table():
    info = get_dataset('synthia')
    expected = {0: 255, 1: 9, 2: 2, 3: 0, 4: 1, 5: 4, 6: 8, 7: 5, 8: 12, 9: 7, 10: 10, 11: 15,
                12: 14, 13: 255, 14: 255, 15: 6, 16: 255, 17: 11, 18: 255, 19: 13, 20: 255,
                21: 3, 22: 255}
    for synthia_id, train_id in expected.items():
        assert info.label_to_train[synthia_id] == train_id
    assert info.max_shape == (760, 1280)
    assert len(DATASETS) == 4


def test_palette_is_cityscapes_colours_by_label_id():
    info = get_dataset('cityscapes')
    road = [lab for lab in CS_LABELS if lab.name == 'road'][0]
    assert tuple(info.palette[road.id]) == road.color


def test_split_names_and_paths(tmp_path):
    with pytest.raises(UserError, match='list file not found: .*cityscapes/nosuchsplit.lst'):
        resolve_split('cityscapes16', 'nosuchsplit')
    lst = tmp_path / 'mine.lst'
    write_list(str(lst), [('a.png', 'b.png'), ('c.png', None)])
    assert resolve_split('gta', str(lst)) == str(lst)
    assert read_list(str(lst)) == [('a.png', 'b.png'), ('c.png', None)]


@pytest.mark.slow
@pytest.mark.parametrize('layout', ['cityscapes', 'gta', 'synthia'])
def test_make_lists_matches_generated_layout(tmp_path, layout):
    root = tmp_path / layout
    pairs = make_layout(str(root), layout, 3, split='val' if layout == 'cityscapes' else 'train')
    out = tmp_path / 'out.lst'
    args = ['issegm/make_lists.py', '--layout', layout, '--data-root', str(root), '--output', str(out)]
    if layout == 'cityscapes':
        args += ['--split', 'val']
    res = run_script(*args)
    assert res.returncode == 0, res.stderr
    assert read_list(str(out)) == sorted(pairs)
    samples = load_samples(str(root), str(out), 'gta')
    image, label = read_sample(*samples[0])
    assert image.shape == (32, 64, 3) and label.shape == (32, 64) and label.dtype == np.uint8


@pytest.mark.slow
def test_make_lists_reports_missing_label(tmp_path):
    root = tmp_path / 'gta'
    make_layout(str(root), 'gta', 2)
    os.remove(root / 'labels' / '00002.png')
    res = run_script('issegm/make_lists.py', '--layout', 'gta', '--data-root', str(root),
                     '--output', str(tmp_path / 'x.lst'))
    assert res.returncode == 1 and 'labels/00002.png' in res.stderr and 'Traceback' not in res.stderr
    assert not (tmp_path / 'x.lst').exists()


def test_bad_inputs_are_one_clear_error(tmp_path):
    root = tmp_path / 'gta'
    pairs = make_layout(str(root), 'gta', 3)
    lst = tmp_path / 'train.lst'
    write_list(str(lst), pairs)
    with pytest.raises(UserError, match='data root not found'):
        load_samples(str(tmp_path / 'nope'), str(lst), 'gta')
    with pytest.raises(UserError, match='list file not found'):
        load_samples(str(root), str(tmp_path / 'nope.lst'), 'gta')
    with pytest.raises(UserError, match='unknown dataset'):
        get_dataset('kitti')
    samples = load_samples(str(root), str(lst), 'gta')
    os.remove(samples[0][0])
    with pytest.raises(UserError, match='image not found: .*00001.png'):
        read_sample(*samples[0])
    os.remove(samples[1][1])
    with pytest.raises(UserError, match='label not found: .*labels/00002.png'):
        read_sample(*samples[1])
    with open(samples[2][1], 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n corrupt')
    with pytest.raises(UserError, match='cannot decode label .*00003.png'):
        read_sample(*samples[2])
    with open(samples[2][0], 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n corrupt')
    with pytest.raises(UserError, match='cannot decode image .*00003.png'):
        read_sample(*samples[2])


def test_image_and_label_of_different_sizes(tmp_path):
    from issegm.datasets import write_png
    write_png(str(tmp_path / 'i.png'), np.zeros((10, 20, 3), np.uint8))
    write_png(str(tmp_path / 'l.png'), np.zeros((10, 21), np.uint8))
    with pytest.raises(UserError, match='is 10x20 but its label .* is 10x21'):
        read_sample(str(tmp_path / 'i.png'), str(tmp_path / 'l.png'))


def test_read_label_gives_pillows_pixels_for_every_kind_of_png(tmp_path):
    """8-bit grayscale PNGs (phase val's and Cityscapes' label ids) are decoded by OpenCV, any
    other kind by Pillow: the same label ids either way, and the same errors."""
    from PIL import Image

    from issegm.datasets import _read_gray8_png, read_label
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 34, (37, 53)).astype(np.uint8)
    cases = {'gray8.png': Image.fromarray(ids), 'palette.png': Image.fromarray(ids).convert('P'),
             'gray16.png': Image.fromarray(ids.astype(np.int32)).convert('I;16')}
    cases['palette.png'].putpalette(list(range(256)) * 3)
    Image.fromarray(ids).save(tmp_path / 'gray8-level1.png', compress_level=1)  # as phase val
    for name, img in cases.items():
        img.save(tmp_path / name)
    for name in list(cases) + ['gray8-level1.png']:
        assert np.array_equal(read_label(str(tmp_path / name)), ids), name
    assert _read_gray8_png(str(tmp_path / 'gray8.png')) is not None
    assert _read_gray8_png(str(tmp_path / 'gray8-level1.png')) is not None
    assert _read_gray8_png(str(tmp_path / 'palette.png')) is None
    assert _read_gray8_png(str(tmp_path / 'gray16.png')) is None
    Image.fromarray(np.stack([ids, ids], -1), 'LA').save(tmp_path / 'la.png')
    (tmp_path / 'broken.png').write_bytes((tmp_path / 'gray8.png').read_bytes()[:60])
    with pytest.raises(UserError, match='is a LA image; expected one channel'):
        read_label(str(tmp_path / 'la.png'))
    with pytest.raises(UserError, match='cannot decode label'):
        read_label(str(tmp_path / 'broken.png'))
