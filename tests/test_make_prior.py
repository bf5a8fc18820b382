"""issegm/make_prior.py (counts, smoothing, normalisation, files) and issegm/prior.py load_prior."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from PIL import Image

from issegm import make_prior
from issegm.datasets import get_dataset
from issegm.prior import load_prior
from util.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INFO = get_dataset('gta')
ROAD, SKY, CAR = 7, 23, 26  # Cityscapes label ids -> train ids 0, 10, 13


def _write_gta(root, labels):
    """A GTA-layout dataset with the given label-id maps (and grey images) plus a list file."""
    lines = []
    for i, lab in enumerate(labels, 1):
        rel = ('images/%05d.png' % i, 'labels/%05d.png' % i)
        os.makedirs(os.path.join(root, 'images'), exist_ok=True)
        os.makedirs(os.path.join(root, 'labels'), exist_ok=True)
        Image.fromarray(np.full(lab.shape + (3,), 128, np.uint8)).save(os.path.join(root, rel[0]))
        Image.fromarray(lab.astype(np.uint8)).save(os.path.join(root, rel[1]))
        lines.append('%s\t%s\n' % rel)
    with open(os.path.join(root, 'train.lst'), 'w') as f:
        f.writelines(lines)
    return os.path.join(root, 'train.lst')


def _scenes():
    """Two 40x80 maps: sky on top, road below; a car in the lower left of the second; an
    unlabeled (ignored) strip on the right of the first."""
    a = np.full((40, 80), ROAD, np.uint8)
    a[:20] = SKY
    a[:, 70:] = 0
    b = np.full((40, 80), ROAD, np.uint8)
    b[:16] = SKY
    b[28:36, 4:20] = CAR
    return [a, b]


def test_counts_resize_with_nearest_and_skip_ignored():
    counter = make_prior.PriorCounter(19, (20, 40))
    a, b = _scenes()
    for lab in (a, b):
        counter.add(INFO.label_to_train[lab])
    counts = counter.counts
    assert counts.shape == (19, 20, 40) and counter.images == 2
    assert counts.sum(axis=0).max() == 2
    # ignored strip (columns 70.. of a -> 35.. at half size) counts only b
    assert (counts[:, :, 35:].sum(axis=0) == 1).all()
    assert counts[10, 0, 0] == 2 and counts[0, 19, 0] == 2
    assert counts[13, 15, 5] == 1 and counts[0, 15, 5] == 1
    assert counts[10, 9, 10] == 1 and counts[0, 9, 10] == 1  # rows 16..19 of b are road


def test_counts_flush_keeps_exact_totals(monkeypatch):
    monkeypatch.setattr(make_prior.PriorCounter, '_FLUSH_EVERY', 2)
    counter = make_prior.PriorCounter(19, (4, 4))
    for _ in range(5):
        counter.add(np.zeros((4, 4), np.uint8))
    assert counter.counts[0].min() == 5 and counter.counts.sum() == 80


def test_smoothing_and_normalisation():
    counts = np.zeros((3, 50, 60), np.int64)
    counts[0, :25] = 4
    counts[1, 25:] = 4
    prior = make_prior.smooth_and_normalise(counts, window=10)
    assert prior.dtype == np.float32 and prior.shape == (3, 50, 60)
    np.testing.assert_allclose(prior.sum(axis=0), 1.0, atol=1e-5)
    assert prior.min() >= 0
    # smoothing blurs the border between the classes, but not far from it
    assert 0.3 < prior[0, 24, 30] < 0.7 and 0.3 < prior[1, 25, 30] < 0.7
    assert prior[0, 0, 30] == pytest.approx(1.0) and prior[1, 49, 30] == pytest.approx(1.0)
    sharp = make_prior.smooth_and_normalise(counts, window=0)
    assert sharp[0, 24, 30] == 1.0 and sharp[1, 25, 30] == 1.0


def test_pixels_without_counts_get_uniform():
    counts = np.zeros((4, 30, 30), np.int64)
    counts[2, :3, :3] = 1
    prior = make_prior.smooth_and_normalise(counts, window=4)
    np.testing.assert_allclose(prior[:, 29, 29], 0.25)
    assert prior[2, 0, 0] == pytest.approx(1.0)


def test_gaussian_params():
    assert make_prior.gaussian_params(70) == (71, pytest.approx(70 / 6.0))
    assert make_prior.gaussian_params(71)[0] == 71
    assert make_prior.gaussian_params(1) is None


@pytest.mark.slow
def test_cli_writes_mat_and_pngs_and_load_prior_reads_it(tmp_path):
    lst = _write_gta(str(tmp_path / 'gta'), _scenes())
    out = tmp_path / 'spatial_prior' / 'gta' / 'prior_array.mat'
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'issegm', 'make_prior.py'),
                           '--data-root', str(tmp_path / 'gta'), '--dataset', 'gta',
                           '--split', lst, '--size', '20x40', '--window', '6',
                           '--output', str(out), '--figures'], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    mat = scipy.io.loadmat(str(out))['prior_array']
    assert mat.dtype == np.float32 and mat.shape == (19, 20, 40)
    np.testing.assert_allclose(mat.sum(axis=0), 1.0, atol=1e-5)
    assert mat[10, 0, 20] > 0.9 and mat[0, 19, 20] > 0.9  # sky on top, road at the bottom
    assert mat[13].max() > 0 and mat[13, 0].max() < 1e-3  # car only low in the image
    prior = load_prior(str(out), 19, (20, 40))
    np.testing.assert_array_equal(prior, mat)
    for name in INFO.class_names:
        png = out.parent / make_prior.prior_png_name(name)
        assert png.is_file(), png
    with Image.open(str(out.parent / 'prior_sky.png')) as img:
        sky = np.asarray(img)
    assert img.mode == 'L' and sky.shape == (20, 40) and sky.max() == 255
    assert os.path.isfile(out.parent / 'prior_traffic_light.png')
    for figure in ('prior.png', 'class_share.png'):  # --figures
        with Image.open(str(out.parent / figure)) as img:
            assert img.format == 'PNG' and img.size[0] > 500
    assert '(+ 21 PNGs)' in proc.stderr + proc.stdout
    assert not [f for f in os.listdir(out.parent) if 'tmp' in f]


def test_class_share_of_the_counts():
    counts = np.zeros((19, 4, 6), np.int64)
    counts[0] = 2  # road: 48 pixel counts
    counts[10, :2] = 1  # sky: 12
    share = make_prior.class_share(counts, INFO.class_names)
    assert list(share) == list(INFO.class_names)
    assert share['road'] == pytest.approx(48 / 60) and share['sky'] == pytest.approx(12 / 60)
    assert share['car'] == 0 and sum(share.values()) == pytest.approx(1)
    empty = make_prior.class_share(np.zeros((19, 4, 6), np.int64), INFO.class_names)
    assert set(empty.values()) == {0.0}  # no labelled pixel: no division by zero


def test_prior_figure_one_panel_per_class_drawing_the_prior():
    import matplotlib.pyplot as plt
    from issegm.figures import class_share_figure, prior_figure
    rng = np.random.RandomState(0)
    prior = rng.rand(19, 8, 16).astype(np.float32)
    prior[13] = 0  # a class never counted
    prior /= prior.sum(axis=0)
    fig = prior_figure(prior, INFO, 'gta train')
    assert len(fig.axes) == 19  # 4 rows of 5, the spare one removed
    for k, ax in enumerate(fig.axes):
        image, = ax.images
        np.testing.assert_array_equal(image.get_array(), prior[k])
        top = prior[k].max()
        assert image.get_clim() == pytest.approx((0, top if top > 0 else 1))
        assert ax.get_title() == '%s (max %.2f)' % (INFO.class_names[k], top)
    # the class share: one bar per class, first class on top, in the class colours
    share = {name: k / 171.0 for k, name in enumerate(INFO.class_names)}
    fig = class_share_figure(INFO, share, 'gta train')
    bars = sorted(fig.axes[0].patches, key=lambda p: -p.get_y())
    assert [b.get_width() for b in bars] == pytest.approx([100 * k / 171.0 for k in range(19)])
    np.testing.assert_allclose([b.get_facecolor()[:3] for b in bars],
                               INFO.palette[INFO.train_to_label[:19]] / 255.0)
    plt.close('all')


def test_default_output_path(tmp_path):
    lst = _write_gta(str(tmp_path / 'gta'), _scenes()[:1])
    cwd = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        assert make_prior.main(['--data-root', 'gta', '--split', lst, '--size', '8x16',
                                '--window', '0']) == 0
    finally:
        os.chdir(cwd)
    assert (tmp_path / 'spatial_prior' / 'gta' / 'prior_array.mat').is_file()
    assert (tmp_path / 'spatial_prior' / 'gta' / 'prior_road.png').is_file()


def test_load_prior_errors(tmp_path):
    path = str(tmp_path / 'prior_array.mat')
    with pytest.raises(UserError, match='not found'):
        load_prior(path, 19, (4, 8))
    scipy.io.savemat(path, {'prior_array': np.ones((19, 4, 8), np.float32)})
    assert load_prior(path, 19, (4, 8)).shape == (19, 4, 8)
    with pytest.raises(UserError, match='shape 19x4x8, expected .* 16x4x8'):
        load_prior(path, 16, (4, 8))
    with pytest.raises(UserError, match='shape'):
        load_prior(path, 19, (8, 4))
    scipy.io.savemat(path, {'prior_array': np.ones((4, 8, 19), np.float32)})
    with pytest.raises(UserError, match='shape'):
        load_prior(path, 19, (4, 8))
    scipy.io.savemat(path, {'other': np.ones((19, 4, 8), np.float32)})
    with pytest.raises(UserError, match="no variable 'prior_array'"):
        load_prior(path, 19, (4, 8))
    with open(path, 'wb') as f:
        f.write(b'not a mat file at all' * 10)
    with pytest.raises(UserError, match='cannot read'):
        load_prior(path, 19, (4, 8))


@pytest.mark.slow
def test_cli_bad_input_is_one_error_line(tmp_path):
    script = os.path.join(REPO, 'issegm', 'make_prior.py')
    for args in (['--data-root', str(tmp_path / 'missing')],
                 ['--data-root', str(tmp_path), '--size', '12by3'],
                 ['--data-root', str(tmp_path), '--dataset', 'mars']):
        proc = subprocess.run([sys.executable, script] + args, capture_output=True, text=True,
                              cwd=str(tmp_path))
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
