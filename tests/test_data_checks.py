"""issegm/datacheck/ and issegm/check_data.py on generated datasets in the real layouts.

Every bad input of the data issue gives one clear error line naming the file and a non-zero
exit (check_data.py, and train_src.py / evaluate.py / the orchestrator before any output);
CRLF lists, a trailing blank line and paths with spaces are accepted."""
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import (STREET_SHARES, as_train_ids, make_layout, official_train_ids,
                      street_scene, write_model_weights, write_street_labels)
from issegm.datacheck import id_space
from issegm.datacheck.headers import Header, HeaderError, read_header
from issegm.datacheck.id_space import id_space_problems, ignore_share
from issegm.datacheck.lists import full_check, quick_check
from issegm.datacheck.problems import ERROR, WARNING
from issegm.datasets import get_dataset, read_list, write_list, write_png
from util.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(REPO, 'issegm', 'check_data.py')


def cityscapes(tmp_path, count=3, **kw):
    """A Cityscapes val split in its layout: (root, list path, [(image, label)] relative)."""
    root = tmp_path / 'cs'
    pairs = make_layout(str(root), 'cityscapes', count, split='val', **kw)
    lst = str(root / 'val.lst')
    write_list(lst, pairs)
    return str(root), lst, pairs


def kinds(problems):
    return [(p.kind, p.severity) for p in problems]


# --- headers ---------------------------------------------------------------------------------

def test_header_gives_format_size_channels_depth_without_decoding(tmp_path):
    rgb = (np.random.RandomState(0).rand(12, 20, 3) * 255).astype(np.uint8)
    files = {
        'rgb.png': (lambda p: write_png(p, rgb), ('PNG', 20, 12, 'RGB', 8, True)),
        'gray.png': (lambda p: write_png(p, rgb[:, :, 0]), ('PNG', 20, 12, 'grayscale', 8, True)),
        'pal.png': (lambda p: write_png(p, rgb[:, :, 0], get_dataset('gta').palette),
                    ('PNG', 20, 12, 'palette', 8, True)),
        'rgba.png': (lambda p: Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])).save(p),
                     ('PNG', 20, 12, 'RGBA', 8, True)),
        'gray16.png': (lambda p: cv2.imwrite(p, rgb[:, :, 0].astype(np.uint16) * 300),
                       ('PNG', 20, 12, 'grayscale', 16, True)),
        'rgb16.png': (lambda p: cv2.imwrite(p, rgb.astype(np.uint16) * 300),
                      ('PNG', 20, 12, 'RGB', 16, True)),
        'photo.jpg': (lambda p: Image.fromarray(rgb).save(p), ('JPEG', 20, 12, 'RGB', 8, True)),
    }
    for name, (write, expected) in files.items():
        path = str(tmp_path / name)
        write(path)
        assert read_header(path) == Header(*expected), name
        data = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) - 20])  # cut before the end marker
        assert read_header(path) == Header(*expected[:-1] + (False,)), name
    (tmp_path / 'text.png').write_text('not an image at all')
    (tmp_path / 'empty.png').write_bytes(b'')
    for name in ('text.png', 'empty.png'):
        with pytest.raises(HeaderError):
            read_header(str(tmp_path / name))


# --- rules -----------------------------------------------------------------------------------

def test_generated_layouts_are_clean(tmp_path):
    for layout, dataset, ids in (('cityscapes', 'cityscapes', (0, 7, 8, 11, 21, 23, 24, 26)),
                                 ('gta', 'gta', (0, 7, 8, 11, 21, 23, 24, 26)),
                                 ('synthia', 'synthia', (0, 1, 2, 3, 8, 21, 22))):
        root = tmp_path / layout
        pairs = make_layout(str(root), layout, 4, label_ids=ids)
        write_list(str(root / 'x.lst'), pairs)
        for check in (quick_check, full_check):
            assert check(str(root / 'x.lst'), dataset, str(root)) == [], (layout, check)


def test_trainid_labels_are_named_as_such(tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    as_train_ids(root, pairs)
    for check in (quick_check, full_check):
        problems = check(lst, 'cityscapes', root)
        assert kinds(problems) == [('trainids', ERROR)]
        assert 'trainIds' in problems[0].message and '0..18' in problems[0].message
    # the 16-class tables read Cityscapes labelIds as well
    assert kinds(quick_check(lst, 'cityscapes16', root)) == [('trainids', ERROR)]


def _counts(values, pixels=None):
    """(256,) pixel counts holding `values` (one pixel each, or `pixels`)."""
    counts = np.zeros(256, np.int64)
    for v, n in zip(values, pixels or [1] * len(values)):
        counts[v] += n
    return counts


def test_trainid_rule_is_a_plain_statement():
    """Flagged exactly when no label holds a label-id-only value (Cityscapes 19..33) and some
    label holds 255 or 40% of the pixels map to ignore (not every one); checked on random sets
    of values and pixel counts against that statement."""
    rng = np.random.RandomState(0)
    table = get_dataset('gta').label_to_train
    candidates = list(range(34)) + [255]
    for _ in range(300):
        held = [list(set(rng.choice(candidates, rng.randint(1, 6))))
                for _ in range(rng.randint(1, 4))]
        counts = [_counts(v, list(rng.randint(1, 100, len(v)))) for v in held]
        total = sum(counts)
        share = total[table == 255].sum() / total.sum()
        expected = (not any(v in range(19, 34) for values in held for v in values)
                    and (any(255 in values for values in held) or 0.4 <= share < 1))
        problems = id_space_problems([('l%d' % i, c) for i, c in enumerate(counts)], 'gta')
        assert ('trainids' in [p.kind for p in problems]) == expected, (held, share)
    # SYNTHIA: its label ids 16..22 are the ones trainIds never hold; no share rule there
    assert [p.kind for p in id_space_problems([('a', _counts([0, 3, 15, 255]))], 'synthia')] == \
        ['trainids']
    assert id_space_problems([('a', _counts([0, 3, 15, 255])), ('b', _counts([22]))],
                             'synthia') == []
    assert id_space_problems([('a', _counts([0, 3], [90, 10]))], 'synthia') == []


def _street_sets(rng, sets, size, void_share, train_ids, shares=None):
    """[(share of pixels mapping to ignore, trainids flagged)] of `sets` sets of `size`
    generated street-scene labels (conftest.street_scene), as label ids or as trainIds."""
    table = official_train_ids()
    out = []
    for _ in range(sets):
        labels = [street_scene(rng, (64, 128), void_share, shares) for _ in range(size)]
        labels = [table[ids] if train_ids else ids for ids in labels]
        checked = [('l%d' % i, np.bincount(ids.ravel(), minlength=256))
                   for i, ids in enumerate(labels)]
        share = ignore_share(sum(c for _, c in checked), 'cityscapes')
        out.append((share, 'trainids' in [p.kind for p in id_space_problems(checked,
                                                                            'cityscapes')]))
    return out


@pytest.mark.slow
def test_trainid_share_rule_measured():
    """The trainIds rule on generated street scenes (conftest.street_scene: classes drawn
    around Cityscapes' shares, scene to scene varied): every set of trainIds made with
    cityscapesscripts' table is caught, with or without void pixels, and no set of labelIds
    with 0-15% void is: neither scenes of all classes nor the hard case, scenes of the classes
    below label id 19 only (which hold no label-id-only value). Sets of 20 labels (the quick
    check's sample) and of 3. The shares measured are printed (pytest -s)."""
    rng = np.random.RandomState(0)
    low = {k: v for k, v in STREET_SHARES.items() if k < 19}
    for size in (20, 3):
        for void in (0.0, 0.05, 0.10, 0.15):
            train = _street_sets(rng, 40, size, void, True)
            labels = _street_sets(rng, 40, size, void, False)
            low_labels = _street_sets(rng, 40, size, void, False, low)
            print('%2d labels, %2.0f%% void: trainIds %.3f..%.3f, labelIds %.3f..%.3f, labelIds '
                  'below 19 only %.3f..%.3f of the pixels map to ignore'
                  % ((size, 100 * void) + tuple(f(s for s, _ in sets) for sets in (
                      train, labels, low_labels) for f in (min, max))))
            assert all(flagged for _, flagged in train), (size, void)
            assert not any(flagged for _, flagged in labels + low_labels), (size, void)
            if size == 20:  # the margin of the quick check's sample, both sides of 40%
                assert min(s for s, _ in train) > 0.55 and \
                    max(s for s, _ in labels + low_labels) < 0.3


def test_trainids_of_scenes_without_void_are_caught(tmp_path):
    """No 255 in them: quick and full check still name them."""
    root, lst, pairs = cityscapes(tmp_path, count=4)
    write_street_labels(root, pairs, train_ids=True)
    assert not any(255 in np.asarray(Image.open(os.path.join(root, label)))
                   for _, label in pairs)
    for check in (quick_check, full_check):
        problems = check(lst, 'cityscapes', root)
        assert kinds(problems) == [('trainids', ERROR)], problems
        assert 'of their pixels mapping to ignore' in problems[0].message
    write_street_labels(root, pairs, void_share=0.1)  # the labelIds of such scenes: clean
    assert quick_check(lst, 'cityscapes', root) == []


def test_labelids_of_low_classes_only_are_not_trainids(tmp_path):
    # labelIds images of road, sidewalk, building, pole (all <= 18) and no 255: no hint
    root, lst, _ = cityscapes(tmp_path, label_ids=(7, 8, 11, 17))
    assert quick_check(lst, 'cityscapes', root) == []


def test_values_outside_the_id_set(tmp_path):
    root, lst, pairs = cityscapes(tmp_path, label_ids=(7, 40, 41))
    problems = quick_check(lst, 'cityscapes', root)
    assert kinds(problems) == [('label-ids', ERROR)] * 3
    assert 'label values 40, 41 are not Cityscapes label ids (0..33' in problems[0].message
    # Cityscapes label ids in SYNTHIA labels
    root, lst, _ = cityscapes(tmp_path / 's', label_ids=(3, 23, 26))
    assert 'label values 23, 26 are not SYNTHIA label ids (0..22' in \
        quick_check(lst, 'synthia', root)[0].message


def test_all_ignore_is_a_warning_unless_every_label_is(tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    write_png(os.path.join(root, pairs[1][1]), np.zeros((32, 64), np.uint8))  # unlabeled
    problems = quick_check(lst, 'cityscapes', root)
    assert kinds(problems) == [('all-ignore', WARNING)]
    assert problems[0].path == os.path.join(root, pairs[1][1])
    for _, label in pairs:
        write_png(os.path.join(root, label), np.full((32, 64), 3, np.uint8))  # out of roi
    assert kinds(quick_check(lst, 'cityscapes', root)) == \
        [('all-ignore', WARNING)] * 3 + [('all-ignore', ERROR)]


def test_two_images_of_one_output_name(tmp_path):
    root = tmp_path / 'd'
    pairs = make_layout(str(root), 'gta', 2)
    moved = ('other/00001.png', pairs[1][1])
    os.makedirs(root / 'other')
    os.replace(root / pairs[1][0], root / moved[0])
    problems = quick_check([(str(root / i), str(root / l)) for i, l in (pairs[0], moved)], 'gta')
    assert kinds(problems) == [('duplicate-name', ERROR)]
    assert problems[0].path == str(root / moved[0]) and str(root / pairs[0][0]) in \
        problems[0].message


def test_quick_check_decodes_a_sample_of_labels_only(tmp_path, monkeypatch):
    root, lst, pairs = cityscapes(tmp_path, count=12)
    write_png(os.path.join(root, pairs[5][1]), np.full((32, 64), 99, np.uint8))
    decoded = []
    real = id_space.label_counts
    monkeypatch.setattr(id_space, 'label_counts', lambda p: decoded.append(p) or real(p))
    assert quick_check(lst, 'cityscapes', root, sample=4) == []  # label 5 not in the sample
    assert decoded == [os.path.join(root, pairs[k][1]) for k in (0, 4, 7, 11)]
    monkeypatch.undo()
    assert kinds(full_check(lst, 'cityscapes', root, workers=1)) == [('label-ids', ERROR)]


def test_full_check_finds_what_headers_do_not(tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    path = os.path.join(root, pairs[1][0])
    data = bytearray(open(path, 'rb').read())
    data[200:260] = bytes(60)  # pixel data broken, header and end marker intact
    open(path, 'wb').write(bytes(data))
    assert quick_check(lst, 'cityscapes', root) == []
    problems = full_check(lst, 'cityscapes', root, workers=2)
    assert kinds(problems) == [('decode', ERROR)] and problems[0].path == path


def test_missing_optional_labels_are_one_warning(tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    for _, label in pairs[:2]:
        os.remove(os.path.join(root, label))
    problems = quick_check(lst, 'cityscapes', root, labels_optional=True)
    assert kinds(problems) == [('missing-label', WARNING)]
    assert '2 label file(s) not found' in problems[0].message
    assert kinds(quick_check(lst, 'cityscapes', root)) == [('missing', ERROR)] * 2


def test_list_formats(tmp_path):
    lst = tmp_path / 'a.lst'
    lst.write_bytes(b'\xef\xbb\xbfim 1/a.png\tla 1/a.png\r\nim/b.png\r\n\r\n')
    assert read_list(str(lst)) == [('im 1/a.png', 'la 1/a.png'), ('im/b.png', None)]
    lst.write_text('im/a.png\tla/a.png\nim/b.png la/b.png\n')
    with pytest.raises(UserError, match=r'line 2: image and label are separated by spaces; .*'
                                        r'image<TAB>label \(one TAB'):
        read_list(str(lst))
    lst.write_text('\n\n')
    with pytest.raises(UserError, match='is empty'):
        read_list(str(lst))


# --- check_data.py and the scripts' early check: every bad case of the issue -----------------

def _overwrite(path, array, **save):
    os.remove(path)
    Image.fromarray(array).save(path, **save)


def _truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


def _with_jpeg_image(root, lst, pairs):
    image = os.path.join(root, pairs[1][0])
    Image.open(image).save(image[:-4] + '.jpg', quality=95)
    write_list(lst, [(i[:-4] + '.jpg' if k == 1 else i, l) for k, (i, l) in enumerate(pairs)])
    return image[:-4] + '.jpg'


def _bad_case(case, root, lst, pairs):
    """Make one bad case in a clean Cityscapes val layout; returns the file to be named."""
    image, label = (os.path.join(root, p) for p in pairs[1])
    rgb = np.asarray(Image.open(image))
    ids = np.asarray(Image.open(label))
    if case == 'trainid-labels':
        as_train_ids(root, pairs)
        return os.path.join(root, pairs[0][1])
    if case == 'colour-label':
        _overwrite(label, get_dataset('cityscapes').palette[ids])
    elif case == '16-bit-label':  # SYNTHIA's raw GT/LABELS: 16-bit, 3 channels
        raw = np.dstack([ids * 0, ids * 0, ids]).astype(np.uint16)
        raw[:, :, 1] = 700  # instance ids
        cv2.imwrite(label, raw)
    elif case == 'size-mismatch':
        _overwrite(image, rgb[:, :48])
    elif case == 'grayscale-image':
        _overwrite(image, rgb[:, :, 0])
    elif case == 'rgba-image':
        _overwrite(image, np.dstack([rgb, rgb[:, :, :1]]))
    elif case == 'jpeg-image':
        return _with_jpeg_image(root, lst, pairs)
    elif case == 'missing-file':
        os.remove(label)
    elif case == 'truncated-png':
        _truncate(image)
    return label if case in ('colour-label', '16-bit-label', 'missing-file',
                             'size-mismatch') else image


BAD_CASES = {  # case: words of its error line
    'trainid-labels': 'look like Cityscapes trainIds', 'colour-label': 'colour image',
    '16-bit-label': "16-bit RGB PNG, as SYNTHIA's raw GT/LABELS",
    'size-mismatch': 'label is 64x32 but its image', 'grayscale-image': '8-bit grayscale PNG',
    'rgba-image': '8-bit RGBA PNG', 'jpeg-image': 'image is a JPEG file',
    'missing-file': 'label not found', 'truncated-png': 'image is truncated',
}


def _run(args, **kw):
    t0 = time.time()
    res = subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO, **kw)
    return res, time.time() - t0


def _error_lines(res):
    return [line for line in (res.stdout + res.stderr).splitlines()
            if line.startswith('error: ')]


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(BAD_CASES))
def test_check_data_names_each_bad_case_in_one_line(case, tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    named = _bad_case(case, root, lst, pairs)
    res, elapsed = _run([CHECK, '--dataset', 'cityscapes', '--data-root', root, '--split', lst])
    errors = _error_lines(res)
    assert res.returncode == 1 and elapsed < 60, res.stdout + res.stderr
    assert len(errors) == 1 and errors[0].startswith('error: %s: ' % named), errors
    assert BAD_CASES[case] in errors[0] and 'Traceback' not in res.stderr
    assert '1 error(s)' in res.stdout.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize('dataset', ['cityscapes', 'gta'])
def test_check_data_names_trainids_without_void(dataset, tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    write_street_labels(root, pairs, train_ids=True)
    for extra in ([], ['--full', '--no-progress']):
        res, _ = _run([CHECK, '--dataset', dataset, '--data-root', root, '--split', lst] + extra)
        errors = _error_lines(res)
        assert res.returncode == 1 and len(errors) == 1, res.stdout + res.stderr
        assert 'look like Cityscapes trainIds' in errors[0] and 'Traceback' not in res.stderr
        assert '1 error(s)' in res.stdout.splitlines()[-1]


@pytest.mark.slow
def test_check_data_empty_list_and_accepted_lists(tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    args = [CHECK, '--dataset', 'cityscapes', '--data-root', root, '--split']
    open(lst, 'w').close()
    res, _ = _run(args + [lst])
    assert res.returncode == 1 and _error_lines(res) == ['error: list file %s is empty' % lst]
    # CRLF line ends, a trailing blank line, spaces in the paths: accepted
    os.rename(os.path.join(root, 'leftImg8bit'), os.path.join(root, 'left img 8bit'))
    rows = [(i.replace('leftImg8bit/', 'left img 8bit/'), l) for i, l in pairs]
    with open(lst, 'wb') as f:
        f.write(b''.join(b'%s\t%s\r\n' % (i.encode(), l.encode()) for i, l in rows) + b'\r\n')
    for extra in ([], ['--full', '--no-progress']):
        res, _ = _run(args + [lst] + extra)
        assert res.returncode == 0 and _error_lines(res) == [], res.stdout + res.stderr
        assert res.stdout.splitlines() == [res.stdout.splitlines()[-1]]  # the summary alone
        assert '3 samples' in res.stdout and '0 error(s), 0 warning(s)' in res.stdout


@pytest.fixture(scope='module')
def tiny_weights(tmp_path_factory):
    base = tmp_path_factory.mktemp('w')
    return write_model_weights(base / 'cityscapes_rna-tiny_cls19_s8_ep-0000.params',
                               'cityscapes_rna-tiny_cls19_s8')


@pytest.mark.slow
def test_scripts_stop_before_any_output(tmp_path, tiny_weights):
    """trainIds given for labelIds (of scenes without void pixels, so without 255):
    train_src.py, evaluate.py and the orchestrator stop with the
    check's one line, within seconds, before writing anything; --skip-data-check lets them
    start (and train_src then trains on the wrong labels)."""
    root, lst, pairs = cityscapes(tmp_path)
    write_street_labels(root, pairs, train_ids=True)  # no void: no 255 in them
    common = ['--data-root', root, '--weights', tiny_weights, '--gpus', 'cpu', '--no-progress']
    commands = {
        'train_src.py': ['--split', lst, '--batch-images', '2', '--crop-size', '32',
                         '--to-epoch', '1', '--origin-size', '64'],
        'evaluate.py': ['--split', lst, '--test-scales', '64'],
        'solve_AO.py': ['--dataset', 'gta', '--dataset-tgt', 'cityscapes', '--split', lst,
                        '--split-tgt', lst, '--data-root-tgt', root, '--num-round', '1'],
    }
    for script, args in commands.items():
        out = tmp_path / ('out-' + script)
        res, elapsed = _run([os.path.join(REPO, 'issegm', script), '--output', str(out)]
                            + common + args)
        errors = _error_lines(res)
        assert res.returncode == 1 and elapsed < 60, (script, res.stderr)
        assert len(errors) == 1 and 'look like Cityscapes trainIds' in errors[0], (script, errors)
        assert '--skip-data-check' in errors[0] and not out.exists(), script
    out = tmp_path / 'out-skip'
    res, _ = _run([os.path.join(REPO, 'issegm', 'train_src.py'), '--output', str(out),
                   '--skip-data-check'] + common + commands['train_src.py'])
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.slow
def test_several_problems_one_line_each_then_the_summary(tmp_path, tiny_weights):
    root, lst, pairs = cityscapes(tmp_path)
    _truncate(os.path.join(root, pairs[0][0]))
    os.remove(os.path.join(root, pairs[2][1]))
    res, _ = _run([os.path.join(REPO, 'issegm', 'evaluate.py'), '--output', str(tmp_path / 'o'),
                   '--data-root', root, '--split', lst, '--weights', tiny_weights])
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 3, res.stderr
    assert lines[0] == 'error: %s: image is truncated: the PNG file ends before its end marker ' \
                       '(an interrupted download or copy?)' % os.path.join(root, pairs[0][0])
    assert lines[1] == 'error: %s: label not found' % os.path.join(root, pairs[2][1])
    assert lines[2].startswith('error: data check of %s: 2 problems (above)' % lst)
    assert not (tmp_path / 'o').exists()


def test_labels_that_are_not_files_are_named_for_what_they_are(tmp_path):
    """A label path that is a folder, a symbolic link loop or a broken link: said so, not
    `label not found`."""
    root, lst, pairs = cityscapes(tmp_path, count=3)
    folder, loop, broken = (os.path.join(root, label) for _, label in pairs)
    for path in (folder, loop, broken):
        os.remove(path)
    os.mkdir(folder)
    os.symlink(loop, loop)  # a link to itself
    os.symlink(os.path.join(root, 'nowhere.png'), broken)
    for check in (quick_check, full_check):
        problems = {p.path: p.message for p in check(lst, 'cityscapes', root)}
        assert problems == {
            folder: 'label is a folder, not a file', loop: 'label is a symbolic link loop',
            broken: 'label is a broken symbolic link (to %s)' % os.path.join(root, 'nowhere.png')}


def test_a_missing_label_folder_is_one_error(tmp_path):
    """gtFine/ (or GTA-5's labels/) missing: one error naming the folder, not one per file."""
    root, lst, pairs = cityscapes(tmp_path, count=4)
    shutil.rmtree(os.path.join(root, 'gtFine'))
    for check in (quick_check, full_check):
        problems = check(lst, 'cityscapes', root)
        assert kinds(problems) == [('missing-folder', ERROR)], problems
        assert problems[0].path == os.path.join(root, 'gtFine')
        assert problems[0].message.startswith('folder not found (4 listed file(s) under it, '
                                              'e.g. val/testcity/')
    gta = tmp_path / 'gta'
    pairs = make_layout(str(gta), 'gta', 3)
    write_list(str(gta / 'x.lst'), pairs)
    shutil.rmtree(str(gta / 'labels'))
    os.remove(str(gta / 'images' / '00001.png'))  # a single missing file stays one line
    problems = quick_check(str(gta / 'x.lst'), 'gta', str(gta))
    assert [(p.kind, p.path) for p in problems] == [
        ('missing', str(gta / 'images' / '00001.png')), ('missing-folder', str(gta / 'labels'))]


@pytest.mark.slow
def test_check_data_split_that_is_a_folder_and_a_missing_gtfine(tmp_path):
    root, lst, pairs = cityscapes(tmp_path)
    res, _ = _run([CHECK, '--dataset', 'cityscapes', '--data-root', root, '--split', root])
    assert res.returncode == 1 and _error_lines(res) == [
        "error: list file %s is a folder, not a file (split %r of dataset cityscapes)"
        % (root, root)], res.stderr
    shutil.rmtree(os.path.join(root, 'gtFine'))
    res, _ = _run([CHECK, '--dataset', 'cityscapes', '--data-root', root, '--split', lst])
    errors = _error_lines(res)
    assert res.returncode == 1 and len(errors) == 1, res.stdout + res.stderr
    assert errors[0].startswith('error: %s: folder not found (3 listed file(s)'
                                % os.path.join(root, 'gtFine'))
