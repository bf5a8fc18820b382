"""issegm/predict.py and issegm/prediction/: inputs, outputs equal to evaluate.py's, confidence and
entropy maps, videos, reruns and bad input."""
import json
import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.special import entr

from conftest import make_layout, write_model_weights
from issegm import evaluate, predict
from issegm.datasets import get_dataset, write_list, write_png
from issegm.prediction import inputs, outputs
from util.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'issegm', 'predict.py')
INFO = get_dataset('cityscapes')
TINY = 'cityscapes_rna-tiny_cls19_s8'
PNG_KINDS = ('labelIds', 'trainIds', 'color', 'overlay')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """(root, list relative to root, image paths): 3 Cityscapes-layout images, 64x128."""
    root = tmp_path_factory.mktemp('predict_data')
    pairs = make_layout(str(root), 'cityscapes', 3, hw=(64, 128), split='val', seed=1)
    lst = str(root / 'val.lst')
    write_list(lst, pairs)
    return str(root), lst, [os.path.join(str(root), image) for image, _ in pairs]


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp('predict_weights') / ('%s_ep-0002.params' % TINY)
    return write_model_weights(path, TINY, seed=3)


def _predict(weights, output, *inputs_and_flags):
    argv = ['--weights', str(weights), '--output', str(output), '--gpus', 'cpu',
            '--no-progress', '--test-scales', '128'] + [str(a) for a in inputs_and_flags]
    assert predict.main(argv) == 0
    return str(output)


def _names(images):
    return [os.path.splitext(os.path.basename(p))[0] for p in images]


def _tree(folder, skip=('predict.log', 'summary.json', 'evaluate.log', 'predict.json', '.lock')):
    """{relative path: bytes} of every file under `folder`."""
    files = {}
    for dirpath, _, names in os.walk(str(folder)):
        for name in names:
            if name not in skip:
                path = os.path.join(dirpath, name)
                with open(path, 'rb') as f:
                    files[os.path.relpath(path, str(folder))] = f.read()
    return files


def _read(path):
    with Image.open(path) as img:
        return np.asarray(img)


def _probs(weights, image_path, scales=(128,), flip=False):
    """The class probabilities of one image from a Predictor of its own (float32; the softmax
    in float64, as evaluate.py's)."""
    import mxnet as mx
    from issegm.datasets import read_image
    from issegm.testtime.one_image import Predictor
    from util.weights import load_weights
    arg, aux = load_weights(weights)
    predictor = Predictor(TINY, arg, aux, mx.cpu(), 8, float64_softmax=True)
    return predictor.predict(read_image(image_path), list(scales), flip)


# Pure parts (no MXNet) ------------------------------------------------------------------------

def test_maps_equal_numpy_restatements():
    rng = np.random.RandomState(0)
    logits = rng.randn(19, 6, 7).astype(np.float32) * 3
    probs = np.exp(logits) / np.exp(logits).sum(0)
    probs[:, 0, 0] = 0.0
    probs[3, 0, 0] = 1.0  # one-hot: entropy 0, confidence 255
    probs[:, 0, 1] = 1.0 / 19  # uniform: entropy 255
    probs[:, 1, :] += rng.uniform(-0.01, 0.01, (19, 7)).astype(np.float32)  # bicubic overshoot
    clipped = np.clip(probs.astype(np.float64), 0, 1)
    want_entropy = np.rint(np.clip(entr(clipped).sum(0) / np.log(19), 0, 1) * 255)
    np.testing.assert_array_equal(outputs.entropy_map(probs), want_entropy.astype(np.uint8))
    top = probs.max(0)
    want_conf = np.rint(np.clip(top, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(outputs.confidence_map(top), want_conf)
    assert outputs.entropy_map(probs)[0, 0] == 0 and outputs.entropy_map(probs)[0, 1] == 255
    assert outputs.confidence_map(top)[0, 0] == 255
    assert len(np.unique(outputs.entropy_map(probs))) > 10


def test_overlay_blends_at_the_opacity():
    rng = np.random.RandomState(1)
    image = rng.randint(0, 256, (32, 48, 3)).astype(np.uint8)
    colors = rng.randint(0, 256, (32, 48, 3)).astype(np.uint8)
    for opacity in (0.5, 0.25, 0.0, 1.0):  # binary fractions: exactly NumPy's rounding
        want = np.rint((1 - opacity) * image.astype(np.float64) + opacity * colors)
        np.testing.assert_array_equal(outputs.overlay_image(image, colors, opacity), want)
    want = (1 - 0.3) * image.astype(np.float64) + 0.3 * colors
    got = outputs.overlay_image(image, colors, 0.3).astype(np.float64)
    assert np.abs(got - want).max() <= 1.0  # cv2.addWeighted's float32: within 1 level
    view = image[:, ::-1]  # not contiguous, as an RGB view of a BGR frame
    np.testing.assert_array_equal(outputs.overlay_image(view, colors, 0.5),
                                  outputs.overlay_image(view.copy(), colors, 0.5))


def test_requested_kinds():
    assert outputs.requested_kinds('labelIds,trainIds,color,overlay') == outputs.DEFAULT_KINDS
    assert outputs.requested_kinds('overlay, trainIds') == ('trainIds', 'overlay')
    assert outputs.requested_kinds('color', confidence=True, save_probs=True) == \
        ('color', 'confidence', 'entropy', 'probs')
    assert outputs.requested_kinds('', save_probs=True) == ('probs',)
    with pytest.raises(UserError, match="unknown --outputs kind 'labelId'"):
        outputs.requested_kinds('labelId,color')


def test_collect_inputs_folders_lists_and_files(tmp_path):
    img = np.zeros((4, 6, 3), np.uint8)
    for rel in ('a/x1.png', 'a/b/x2.JPG', 'a/b/c/x3.webp', 'a/x4.tif', 'a/out/old.png'):
        os.makedirs(os.path.dirname(str(tmp_path / rel)), exist_ok=True)
        assert cv2.imwrite(str(tmp_path / rel), img)
    (tmp_path / 'a' / 'notes.txt').write_text('not an image')
    images, videos = inputs.collect_inputs([str(tmp_path / 'a')],
                                            output=str(tmp_path / 'a' / 'out'))
    rel = [os.path.relpath(p, str(tmp_path)) for p in images]
    assert rel == ['a/x1.png', 'a/x4.tif', 'a/b/x2.JPG', 'a/b/c/x3.webp'] and videos == []
    # a list: relative to its folder, or to --data-root; a file given twice counts once
    (tmp_path / 'a' / 'l.lst').write_text('x1.png\tlabel_ignored.png\nb/x2.JPG\n')
    (tmp_path / 'l2.lst').write_text('a/x1.png\n')
    images, _ = inputs.collect_inputs([str(tmp_path / 'a' / 'l.lst'), str(tmp_path / 'l2.lst'),
                                        str(tmp_path / 'a' / 'x1.png')])
    assert [os.path.relpath(p, str(tmp_path)) for p in images] == ['a/x1.png', 'a/b/x2.JPG']
    root = tmp_path / 'root'
    for rel in ('x1.png', 'b/x2.JPG'):
        os.makedirs(os.path.dirname(str(root / rel)), exist_ok=True)
        cv2.imwrite(str(root / rel), img)
    images, _ = inputs.collect_inputs([str(tmp_path / 'a' / 'l.lst')], data_root=str(root))
    assert images == [str(root / 'x1.png'), str(root / 'b' / 'x2.JPG')]
    with pytest.raises(UserError, match='image not found: .*b/x1.png'):
        inputs.collect_inputs([str(tmp_path / 'a' / 'l.lst')], data_root=str(tmp_path / 'a' / 'b'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match='no images .* in folder'):
        inputs.collect_inputs([str(tmp_path / 'empty')])


def test_two_inputs_with_one_name_are_one_error(tmp_path):
    img = np.zeros((4, 6, 3), np.uint8)
    for rel in ('day/0001.png', 'night/0001.jpg'):
        os.makedirs(os.path.dirname(str(tmp_path / rel)), exist_ok=True)
        cv2.imwrite(str(tmp_path / rel), img)
    images, _ = inputs.collect_inputs([str(tmp_path)])
    with pytest.raises(UserError, match='two images share the output name 0001: .*day/0001.png '
                                        'and .*night/0001.jpg'):
        inputs.check_output_names(images, [], False)
    video = inputs.Video(str(tmp_path / 'clip.avi'), 'clip', 3, 25.0, (4, 6))
    clash = str(tmp_path / 'clip_000002.png')
    cv2.imwrite(clash, img)
    inputs.check_output_names([clash], [video], frames=False)  # no frame outputs: no clash
    with pytest.raises(UserError, match='clip_000002: .*clip.avi frame 2'):
        inputs.check_output_names([clash], [video], frames=True)


# End to end (the narrow model, in this process) -----------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('extra', [[], ['--test-scales', '128,96', '--test-flipping',
                                        '--gpus', 'cpu:2', '--prefetch-threads', '2']],
                         ids=['one-scale', 'two-scales-flip-cpu2'])
def test_outputs_equal_evaluates_predictions(data, tiny_weights, tmp_path, extra):
    root, lst, images = data
    evaluate_extra = [e for e in extra if e not in ('cpu:2', '--gpus')]
    ev = str(tmp_path / 'evaluate')
    assert evaluate.main(['--data-root', root, '--split', lst, '--weights', tiny_weights,
                          '--output', ev, '--gpus', 'cpu', '--no-progress', '--test-scales',
                          '128'] + evaluate_extra) == 0
    out = _predict(tiny_weights, tmp_path / 'predict', os.path.join(root, 'leftImg8bit'), *extra)
    for name in _names(images):
        for ours, theirs in (('labelIds', 'labelId'), ('trainIds', 'trainId'),
                             ('color', 'color')):
            with open(os.path.join(out, ours, name + '.png'), 'rb') as f, \
                    open(os.path.join(ev, theirs, name + '.png'), 'rb') as g:
                assert f.read() == g.read(), (ours, name)
    assert sorted(os.listdir(out)) == sorted(PNG_KINDS + ('predict.log', 'summary.json',
                                                          'predict.json', '.lock'))
    summary = json.loads(open(os.path.join(out, 'summary.json')).read())
    assert summary['images'] == 3 and summary['skipped'] == 0 and summary['seconds'] > 0
    assert list(summary['class_shares']) == list(INFO.class_names)
    counts = np.zeros(19)
    for name in _names(images):
        counts += np.bincount(_read(os.path.join(out, 'trainIds', name + '.png')).ravel(),
                              minlength=19)
    np.testing.assert_allclose(list(summary['class_shares'].values()), counts / counts.sum(),
                               atol=1e-6)


@pytest.mark.slow
def test_single_image_list_and_folder_give_the_same_files(data, tiny_weights, tmp_path):
    root, lst, images = data
    folder = _tree(_predict(tiny_weights, tmp_path / 'folder', os.path.join(root, 'leftImg8bit')))
    assert len(folder) == 3 * len(PNG_KINDS)
    lists = _tree(_predict(tiny_weights, tmp_path / 'list', lst, '--data-root', root))
    assert lists == folder
    singles = {}
    for image in images:  # one image a run, into the same folder
        singles = _tree(_predict(tiny_weights, tmp_path / 'single', image))
    assert singles == folder
    relative = tmp_path / 'rel.lst'  # no --data-root: relative to the list file's folder
    relative.write_text(''.join(os.path.relpath(p, str(tmp_path)) + '\n' for p in images))
    assert _tree(_predict(tiny_weights, tmp_path / 'rel', relative)) == folder


@pytest.mark.slow
def test_confidence_entropy_probs_and_overlay_from_the_probabilities(data, tiny_weights,
                                                                     tmp_path):
    root, _, images = data
    out = _predict(tiny_weights, tmp_path / 'out', images[0], images[1], '--confidence',
                   '--save-probs', '--opacity', '0.5')
    assert sorted(os.listdir(out)) == sorted(PNG_KINDS + ('confidence', 'entropy', 'probs',
                                                          'predict.log', 'summary.json',
                                                          'predict.json', '.lock'))
    for image, name in zip(images[:2], _names(images)):
        probs = _probs(tiny_weights, image)
        clipped = np.clip(probs.astype(np.float64), 0, 1)
        entropy = np.rint(np.clip(entr(clipped).sum(0) / np.log(19), 0, 1) * 255)
        confidence = np.rint(np.clip(probs.max(0), 0, 1) * 255)
        np.testing.assert_array_equal(_read(os.path.join(out, 'entropy', name + '.png')),
                                      entropy)
        np.testing.assert_array_equal(_read(os.path.join(out, 'confidence', name + '.png')),
                                      confidence)
        saved = np.load(os.path.join(out, 'probs', name + '.npz'))['probs']
        assert saved.dtype == np.float16 and saved.shape == (19, 64, 128)
        np.testing.assert_array_equal(saved, probs.astype(np.float16))
        rgb = cv2.imread(image)[:, :, ::-1].astype(np.float64)
        colors = INFO.palette[INFO.train_to_label[probs.argmax(0)]]
        np.testing.assert_array_equal(_read(os.path.join(out, 'overlay', name + '.png')),
                                      np.rint(0.5 * rgb + 0.5 * colors))


@pytest.mark.slow
def test_only_the_requested_outputs_are_written(data, tiny_weights, tmp_path):
    _, _, images = data
    out = _predict(tiny_weights, tmp_path / 'out', images[0], '--outputs', 'trainIds,entropy')
    assert sorted(_tree(out)) == ['entropy/%s.png' % _names(images)[0],
                                  'trainIds/%s.png' % _names(images)[0]]


@pytest.mark.slow
def test_rerun_skips_finished_images(data, tiny_weights, tmp_path, monkeypatch):
    from issegm.testtime.one_image import Predictor
    root, _, images = data
    out = _predict(tiny_weights, tmp_path / 'out', os.path.join(root, 'leftImg8bit'))
    first = _tree(out)
    summary = open(os.path.join(out, 'summary.json')).read()
    names = _names(images)
    os.remove(os.path.join(out, 'overlay', names[1] + '.png'))  # as if killed before it
    calls = []
    real = Predictor.predict

    def counting(self, image, *args, **kwargs):
        calls.append(image.shape)
        return real(self, image, *args, **kwargs)
    monkeypatch.setattr(Predictor, 'predict', counting)
    _predict(tiny_weights, out, os.path.join(root, 'leftImg8bit'))
    assert len(calls) == 1 and _tree(out) == first
    again = json.loads(open(os.path.join(out, 'summary.json')).read())
    assert again['images'] == 1 and again['skipped'] == 2
    # asking for more outputs redoes the images that lack them
    _predict(tiny_weights, out, os.path.join(root, 'leftImg8bit'), '--confidence')
    assert len(calls) == 4
    # nothing left: no prediction, the summary stays
    summary = open(os.path.join(out, 'summary.json')).read()
    _predict(tiny_weights, out, os.path.join(root, 'leftImg8bit'), '--outputs', 'color')
    assert len(calls) == 4 and open(os.path.join(out, 'summary.json')).read() == summary
    assert not [n for n in os.listdir(os.path.join(out, 'overlay')) if n.startswith('.')]


def _write_video(path, frames, fps=5.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps,
                             (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.mark.slow
def test_video_with_frames_equals_its_decoded_frames_as_images(data, tiny_weights, tmp_path):
    _, _, images = data
    frames = [cv2.imread(image) for image in images] + [cv2.imread(images[0])[::-1].copy()]
    video = tmp_path / 'clip.avi'
    _write_video(video, frames, fps=5.0)
    out = _predict(tiny_weights, tmp_path / 'out', video, '--frames', '--gpus', 'cpu:2')
    capture = cv2.VideoCapture(str(video))  # the frames as OpenCV decodes them, as PNG files
    decoded = tmp_path / 'decoded'
    for i in range(len(frames)):
        ok, frame = capture.read()
        assert ok
        write_png(str(decoded / ('clip_%06d.png' % i)), frame[:, :, ::-1])
    assert not capture.read()[0]
    as_images = _tree(_predict(tiny_weights, tmp_path / 'images', decoded))
    tree = _tree(out)
    overlaid = tree.pop('overlay/clip.mp4')
    assert tree == as_images and len(tree) == 4 * len(PNG_KINDS)
    result = cv2.VideoCapture(os.path.join(out, 'overlay', 'clip.mp4'))
    assert result.get(cv2.CAP_PROP_FPS) == 5.0
    shapes = []
    while True:
        ok, frame = result.read()
        if not ok:
            break
        shapes.append(frame.shape)
    assert shapes == [(64, 128, 3)] * 4 and len(overlaid) > 1000
    summary = json.loads(open(os.path.join(out, 'summary.json')).read())
    assert summary['images'] == 4 and summary['videos'] == 1
    # without --frames: only the video; a rerun with the video in place does nothing
    only = _predict(tiny_weights, tmp_path / 'only', video)
    assert sorted(_tree(only)) == ['overlay/clip.mp4']
    _predict(tiny_weights, only, video)
    assert 'nothing to do' in open(os.path.join(only, 'predict.log')).read()


@pytest.mark.slow
def test_bad_inputs_give_one_error_line(data, tiny_weights, tmp_path):
    _, _, images = data
    misfit = tmp_path / ('%s_ep-0000.params' % TINY)
    write_model_weights(misfit, 'cityscapes_rna-tiny_cls16_s8')  # 16-class head, 19-class name
    (tmp_path / 'notes.txt').write_text('hello')
    (tmp_path / 'broken.png').write_bytes(b'not a png at all')
    (tmp_path / 'broken.mp4').write_bytes(os.urandom(4096))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'twin').mkdir()
    os.symlink(str(tmp_path / 'loop.png'), str(tmp_path / 'loop.png'))
    twin = str(tmp_path / 'twin' / os.path.basename(images[0]).replace('.png', '.jpg'))
    cv2.imwrite(twin, cv2.imread(images[0]))
    base = ['--output', str(tmp_path / 'out'), '--gpus', 'cpu', '--test-scales', '64']
    weights = ['--weights', tiny_weights]
    cases = {
        'cannot read %s: not an image' % (tmp_path / 'notes.txt'): weights + [
            str(tmp_path / 'notes.txt')],
        'cannot read image %s' % (tmp_path / 'broken.png'): weights + [
            str(tmp_path / 'broken.png')],
        'not a video OpenCV can read': weights + [str(tmp_path / 'broken.mp4')],
        'does not fit the model': ['--weights', str(misfit), images[0]],
        'no images (png, jpg, jpeg, bmp, tif, tiff, webp) in folder': weights + [
            str(tmp_path / 'empty')],
        'the following arguments are required: INPUT': weights,
        'input not found': weights + [str(tmp_path / 'nowhere.png')],
        'input %s is a symbolic link loop' % (tmp_path / 'loop.png'): weights + [
            str(tmp_path / 'loop.png')],
        'two images share the output name': weights + [images[0], twin],
        '--opacity must be between 0 and 1': weights + [images[0], '--opacity', '1.5'],
        'unknown --outputs kind': weights + [images[0], '--outputs', 'overlays'],
        'weight file not found': ['--weights', str(tmp_path / ('%s_ep-0009.params' % TINY)),
                                  images[0]],
    }
    procs = {k: subprocess.Popen([sys.executable, SCRIPT] + base + v, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
             for k, v in cases.items()}
    for expected, proc in procs.items():
        _, err = proc.communicate(timeout=180)
        assert proc.returncode != 0, expected
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: '), (expected, err)
        assert expected in lines[0], (expected, lines[0])
    assert not (tmp_path / 'out' / 'labelIds').exists()


def _chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def _huge_png(path, width=100000, height=100000):
    """A PNG whose header says width x height (its pixel data: a few bytes): cv2.imread raises
    about CV_IO_MAX_IMAGE_PIXELS on it."""
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    with open(str(path), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) +
                _chunk(b'IDAT', zlib.compress(b'\0' * 64)) + _chunk(b'IEND', b''))


def _corrupt_inputs(tmp_path, images):
    """{case: (input folder, words of the error line)}: each folder holds good images and one
    bad one, sorted last (it would be predicted after the others)."""
    rgb = cv2.imread(images[0])
    cases = {}
    for case in ('truncated-jpeg', 'truncated-png', 'huge-header', 'crc'):
        folder = tmp_path / case
        folder.mkdir()
        for i in range(6):
            cv2.imwrite(str(folder / ('a%d.png' % i)), np.roll(rgb, i, axis=1))
        bad = folder / ('z.jpg' if case == 'truncated-jpeg' else 'z.png')
        if case == 'huge-header':
            _huge_png(bad)
            words = 'its header says 100000x100000'
        else:
            cv2.imwrite(str(bad), rgb)
            data = bad.read_bytes()
            if case == 'crc':  # a flipped byte inside the pixel data: the file ends with IEND
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
                words = 'IDAT chunk is corrupt (CRC mismatch)'
            else:
                data = data[:len(data) // 2]
                words = 'image is truncated'
            bad.write_bytes(data)
        cases[case] = (str(folder), '%s' % bad, words)
    return cases


@pytest.mark.slow
def test_corrupt_inputs_stop_before_the_first_prediction(data, tiny_weights, tmp_path):
    """A truncated JPEG (libjpeg only warns), a truncated PNG after 6 good images, a PNG whose
    header says 100000x100000 (cv2.imread raises), a PNG with a corrupt chunk: one line naming
    the file, exit 1, no output folder."""
    _, _, images = data
    cases = _corrupt_inputs(tmp_path, images)
    procs = {case: subprocess.Popen(
        [sys.executable, SCRIPT, '--weights', tiny_weights, '--gpus', 'cpu', '--test-scales',
         '64', '--output', str(tmp_path / ('out-' + case)), folder], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for case, (folder, _, _) in cases.items()}
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        _, bad, words = cases[case]
        assert proc.returncode == 1 and out == '', (case, out, err)
        assert err.strip().splitlines() == [err.strip()] and err.startswith('error: '), (case, err)
        assert bad in err and words in err, (case, err)
        assert not (tmp_path / ('out-' + case)).exists(), case


def _refused(capsys, weights, output, *inputs_and_flags):
    """A predict.py run that must stop: its one error line."""
    with pytest.raises(SystemExit) as exit:
        _predict(weights, output, *inputs_and_flags)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 1 and len(lines) == 1, lines
    return lines[0]


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused_until_overwrite(data, tiny_weights, tmp_path,
                                                              capsys):
    """The settings that made the maps are in predict.json; a rerun with other weights, scales
    or flipping (also with a new image) is one line naming the flag and changes nothing;
    --overwrite predicts everything again with the new settings."""
    root, _, images = data
    out = _predict(tiny_weights, tmp_path / 'out', images[0], images[1])
    first = _tree(out)
    record = open(os.path.join(out, 'predict.json')).read()
    assert json.loads(record)['settings']['--test-scales'] == '128'
    other = tmp_path / os.path.basename(tiny_weights)  # same model label, other weights
    write_model_weights(other, TINY, seed=5)
    for flags, changed in (
            (['--test-scales', '96'], '--test-scales 128 (now 96)'),
            ([images[2], '--test-flipping'], '--test-flipping False (now True)'),
            (['--weights', str(other)], '--weights %s (now %s)' % (tiny_weights, other))):
        line = _refused(capsys, tiny_weights, out, images[0], images[1], *flags)
        assert line.startswith('error: %s holds predictions made with other settings' % out)
        assert changed in line and '--overwrite' in line, line
        assert _tree(out) == first and open(os.path.join(out, 'predict.json')).read() == record
    _predict(tiny_weights, out, images[0], images[1], '--test-scales', '96', '--overwrite')
    again = json.loads(open(os.path.join(out, 'summary.json')).read())
    assert again['images'] == 2 and again['skipped'] == 0 and again['test_scales'] == [96]
    assert json.loads(open(os.path.join(out, 'predict.json')).read())['settings'][
        '--test-scales'] == '96'
    assert _tree(out) != first and sorted(_tree(out)) == sorted(first)
    # the same settings again: the new image alone is predicted
    _predict(tiny_weights, out, images[0], images[1], images[2], '--test-scales', '96')
    assert json.loads(open(os.path.join(out, 'summary.json')).read())['images'] == 1


@pytest.mark.slow
def test_a_locked_output_is_refused(data, tiny_weights, tmp_path, capsys):
    """predict.py takes OUTPUT/.lock, as evaluate.py does: a second run on the folder (here a
    process holding its lock) stops with one line and writes nothing."""
    from test_locks import held_elsewhere
    _, _, images = data
    out = tmp_path / 'out'
    with held_elsewhere(str(out)) as pid:
        line = _refused(capsys, tiny_weights, out, images[0])
    assert 'is in use by PID %d' % pid in line and 'wait for that run to end' in line
    assert sorted(os.listdir(str(out))) == ['.lock']
