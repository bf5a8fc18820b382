"""issegm/prepare_data.py on small raw datasets in the layouts as downloaded: the prepared files
pixel by pixel against plain restatements of each conversion, the report's counts, reruns, and
the bad cases (one error line, exit status 1, no list or report written)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from PIL import Image

from conftest import (as_train_ids, make_layout, without_write_override, write_gta_pair,
                      write_street_labels, write_synthia_raw)
from issegm import prepare_data
from issegm.datasets import SYNTHIA_IDS, get_dataset, read_list
from issegm.preparation import layouts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def prepare(*argv):
    return prepare_data.main(list(argv) + ['--workers', '1', '--no-progress'])


def prepare_fails(capsys, *argv):
    """Run a preparation that must fail: its stderr lines."""
    with pytest.raises(SystemExit) as exit:
        prepare(*argv)
    assert exit.value.code == 1
    return capsys.readouterr().err.strip().splitlines()


def report_of(lst):
    return json.loads(open(lst[:-len('.lst')] + '.report.json').read())


def restated_counts(label_maps, label_to_train):
    """Pixels per train id and ignored pixels from label id maps and a {label id: train id}
    dict (ids not in it are ignored)."""
    per_class, ignored = {}, 0
    for ids in label_maps:
        for value, count in zip(*np.unique(ids, return_counts=True)):
            train = label_to_train.get(int(value), 255)
            if train == 255:
                ignored += int(count)
            else:
                per_class[train] = per_class.get(train, 0) + int(count)
    return per_class, ignored


def check_report_counts(report, label_maps, dataset, table):
    per_class, ignored = restated_counts(label_maps, table)
    names = get_dataset(dataset).class_names
    assert report['pixels_per_class'] == {name: per_class.get(k, 0) for k, name in
                                          enumerate(names)}
    assert report['ignored_pixels'] == ignored
    assert report['pixels'] == sum(ids.size for ids in label_maps)
    assert sum(report['pixels_per_label_id'].values()) == report['pixels']
    labelled = sum(per_class.values())
    assert report['class_share']['road'] == pytest.approx(per_class.get(0, 0) / labelled)


# --- SYNTHIA ---------------------------------------------------------------------------------

def test_synthia_label_is_the_r_channel_of_the_16_bit_ground_truth(tmp_path):
    root, lst = str(tmp_path / 'synthia'), str(tmp_path / 'lists' / 'train.lst')
    ids = write_synthia_raw(root, 3)
    assert prepare('synthia', '--data-root', root, '--output', lst) == 0
    names = sorted(ids)
    assert read_list(lst) == [('RGB/%s.png' % n, 'GT/labels/%s.png' % n) for n in names]
    for name in names:
        with Image.open(os.path.join(root, 'GT', 'labels', name + '.png')) as img:
            assert img.mode == 'L'
            np.testing.assert_array_equal(np.asarray(img), ids[name])
    report = report_of(lst)
    assert (report['samples'], report['labels'], report['files_written']) == (3, 3, 3)
    assert report['image_sizes'] == {'64x38': 3} and report['mismatched_pairs'] == []
    check_report_counts(report, [ids[n] for n in names], 'synthia', SYNTHIA_IDS)
    with Image.open(lst[:-len('.lst')] + '.classes.png') as chart:
        assert chart.format == 'PNG' and chart.size[0] > 300


def test_synthia_rerun_skips_what_is_done_and_redoes_what_does_not_verify(tmp_path):
    root, lst = str(tmp_path / 'synthia'), str(tmp_path / 'train.lst')
    ids = write_synthia_raw(root, 3, seed=1)
    assert prepare('synthia', '--data-root', root, '--output', lst) == 0
    first = report_of(lst)
    labels = [os.path.join(root, 'GT', 'labels', n + '.png') for n in sorted(ids)]
    stamps = [os.stat(p).st_mtime_ns for p in labels]
    assert prepare('synthia', '--data-root', root, '--output', lst) == 0
    again = report_of(lst)
    assert (again['files_written'], again['samples_already_done']) == (0, 3)
    assert [os.stat(p).st_mtime_ns for p in labels] == stamps
    assert again['pixels_per_class'] == first['pixels_per_class']
    data = open(labels[1], 'rb').read()
    open(labels[1], 'wb').write(data[:len(data) // 2])  # a label that no longer verifies
    assert prepare('synthia', '--data-root', root, '--output', lst) == 0
    assert report_of(lst)['files_written'] == 1
    np.testing.assert_array_equal(np.asarray(Image.open(labels[1])), ids[sorted(ids)[1]])
    assert not [f for f in os.listdir(os.path.dirname(labels[0])) if 'tmp' in f]


def test_synthia_default_list_path(tmp_path, monkeypatch):
    monkeypatch.setattr(layouts, 'DATA_LIST_DIR', str(tmp_path / 'data_list'))
    root = str(tmp_path / 'synthia')
    write_synthia_raw(root, 2)
    assert prepare('synthia', '--data-root', root, '--report', str(tmp_path / 'rep')) == 0
    assert len(read_list(str(tmp_path / 'data_list' / 'synthia' / 'train.lst'))) == 2
    assert sorted(os.listdir(tmp_path / 'rep')) == ['train.classes.png', 'train.report.json']


def test_cityscapes_train_goes_to_train_full_not_the_papers_train_list(tmp_path, monkeypatch):
    """All Cityscapes train images are the original's train_full.lst; its train.lst (the 505
    images the paper pseudo-labels) is never written."""
    monkeypatch.setattr(layouts, 'DATA_LIST_DIR', str(tmp_path / 'data_list'))
    root = str(tmp_path / 'cityscapes')
    make_layout(root, 'cityscapes', 3, split='train')
    assert prepare('cityscapes', '--data-root', root, '--split', 'train', '--no-progress') == 0
    assert 'train.lst' not in os.listdir(tmp_path / 'data_list' / 'cityscapes')
    assert len(read_list(str(tmp_path / 'data_list' / 'cityscapes' / 'train_full.lst'))) == 3


def test_synthia_bad_raw_labels(tmp_path, capsys):
    root, lst = str(tmp_path / 'synthia'), str(tmp_path / 'train.lst')
    ids = write_synthia_raw(root, 3)
    name = sorted(ids)[1]
    raw = os.path.join(root, 'GT', 'LABELS', name + '.png')
    os.remove(raw)
    err = prepare_fails(capsys, 'synthia', '--data-root', root, '--output', lst)
    assert len(err) == 1 and err[0].startswith('error: prepare_data synthia under %s: %s: raw '
                                               'label not found' % (root, raw)), err
    Image.fromarray(np.zeros((38, 64, 3), np.uint8)).save(raw)  # 8-bit colour, not GT/LABELS
    err = prepare_fails(capsys, 'synthia', '--data-root', root, '--output', lst)
    assert len(err) == 1 and "expected SYNTHIA-RAND-CITYSCAPES' 16-bit RGB PNG" in err[0]
    # a class id SYNTHIA does not have
    bad = np.zeros((38, 64, 3), np.uint16)
    bad[:, :, 2] = 30
    cv2.imwrite(raw, bad)
    err = prepare_fails(capsys, 'synthia', '--data-root', root, '--output', lst)
    assert len(err) == 1 and 'GT/labels/%s.png: label values 30 are not SYNTHIA label ids ' \
                             '(0..22' % name in err[0], err
    assert not os.path.exists(lst) and not os.path.exists(lst[:-4] + '.report.json')
    # the other samples are prepared and kept
    assert os.path.isfile(os.path.join(root, 'GT', 'labels', sorted(ids)[0] + '.png'))


# --- GTA-5 -----------------------------------------------------------------------------------

def test_gta_resized_in_place_and_mismatched_pair_fixed(tmp_path):
    """Target 64x36: a pair already there (untouched), a mismatched pair (image larger on both
    sides: Lanczos; label already the target size), a pair smaller on both sides (bicubic), a
    pair narrower only (bilinear); labels nearest neighbour, palette kept."""
    root, lst = str(tmp_path / 'gta'), str(tmp_path / 'train.lst')
    cases = {'00001': ((36, 64), (36, 64), None), '00002': ((45, 80), (36, 64), Image.LANCZOS),
             '00003': ((27, 48), (27, 48), Image.BICUBIC), '00004': ((36, 60), (36, 60),
                                                                     Image.BILINEAR)}
    raw = {name: write_gta_pair(root, name, ihw, lhw, seed=k)
           for k, (name, (ihw, lhw, _)) in enumerate(sorted(cases.items()))}
    untouched = open(os.path.join(root, 'images', '00001.png'), 'rb').read()
    assert prepare('gta', '--data-root', root, '--output', lst, '--size', '64x36') == 0
    for name, (_, _, resample) in cases.items():
        image, ids = raw[name]
        want = image if resample is None else \
            np.asarray(Image.fromarray(image).resize((64, 36), resample))
        with Image.open(os.path.join(root, 'labels', name + '.png')) as label:
            assert label.mode == 'P'
            assert label.getpalette() == get_dataset('gta').palette.ravel().tolist()
            want_ids = np.asarray(Image.fromarray(ids).resize((64, 36), Image.NEAREST))
            np.testing.assert_array_equal(np.asarray(label), want_ids)
        np.testing.assert_array_equal(np.asarray(Image.open(os.path.join(root, 'images',
                                                                         name + '.png'))), want)
    assert open(os.path.join(root, 'images', '00001.png'), 'rb').read() == untouched
    report = report_of(lst)
    assert report['mismatched_pairs'] == ['images/00002.png'] and report['resized_to'] == '64x36'
    assert report['image_sizes'] == {'64x36': 1, '80x45': 1, '48x27': 1, '60x36': 1}
    assert (report['files_written'], report['samples_already_done']) == (5, 1)
    resized = [np.asarray(Image.open(os.path.join(root, 'labels', n + '.png'))) for n in cases]
    check_report_counts(report, resized, 'gta',
                        {lab.id: lab.trainId for lab in CS_LABELS if 0 <= lab.trainId < 255})
    assert prepare('gta', '--data-root', root, '--output', lst, '--size', '64x36') == 0
    assert report_of(lst)['files_written'] == 0


def test_gta_pair_of_another_shape_is_reported_not_fixed(tmp_path, capsys):
    root, lst = str(tmp_path / 'gta'), str(tmp_path / 'train.lst')
    write_gta_pair(root, '00001', (36, 64), (36, 64))
    write_gta_pair(root, '00002', (36, 64), (64, 36), seed=1)
    before = open(os.path.join(root, 'labels', '00002.png'), 'rb').read()
    err = prepare_fails(capsys, 'gta', '--data-root', root, '--output', lst, '--size', '64x36')
    assert len(err) == 1 and 'labels/00002.png: label is 36x64 but its image' in err[0]
    assert 'aspect ratios too different' in err[0]
    assert not os.path.exists(lst) and not os.path.exists(lst[:-4] + '.report.json')
    assert open(os.path.join(root, 'labels', '00002.png'), 'rb').read() == before


def test_missing_labels_folder_is_one_line(tmp_path, capsys):
    root, lst = str(tmp_path / 'gta'), str(tmp_path / 'train.lst')
    for k in range(3):
        write_gta_pair(root, '%05d' % (k + 1), (36, 64), (36, 64), seed=k)
    shutil.rmtree(os.path.join(root, 'labels'))
    err = prepare_fails(capsys, 'gta', '--data-root', root, '--output', lst, '--size', '64x36')
    assert len(err) == 1 and '%s: folder not found (3 listed file(s) under it, e.g. 00001.png)' \
        % os.path.join(root, 'labels') in err[0], err
    assert not os.path.exists(lst)


# --- Cityscapes ------------------------------------------------------------------------------

def test_cityscapes_lists_and_counts(tmp_path):
    root = str(tmp_path / 'cs')
    pairs = make_layout(root, 'cityscapes', 3, split='val')
    make_layout(root, 'cityscapes', 2, split='test', seed=1)
    lst = str(tmp_path / 'val.lst')
    assert prepare('cityscapes', '--data-root', root, '--split', 'val', '--output', lst) == 0
    assert read_list(lst) == sorted(pairs)
    labels = [np.asarray(Image.open(os.path.join(root, label))) for _, label in sorted(pairs)]
    check_report_counts(report_of(lst), labels, 'cityscapes',
                        {lab.id: lab.trainId for lab in CS_LABELS if 0 <= lab.trainId < 255})
    test = str(tmp_path / 'test.lst')
    assert prepare('cityscapes', '--data-root', root, '--split', 'test', '--output', test) == 0
    assert [label for _, label in read_list(test)] == [None, None]
    assert report_of(test)['labels'] == 0 and not os.path.exists(test[:-4] + '.classes.png')


@pytest.mark.parametrize('void', [True, False])
def test_cityscapes_trainids_in_place_of_labelids(tmp_path, capsys, void):
    """trainIds with void pixels (255) and without (street scenes of no void: only the share of
    pixels mapping to ignore tells them)."""
    root, lst = str(tmp_path / 'cs'), str(tmp_path / 'val.lst')
    pairs = make_layout(root, 'cityscapes', 3, split='val')
    if void:
        as_train_ids(root, pairs)
    else:
        write_street_labels(root, pairs, train_ids=True)
    err = prepare_fails(capsys, 'cityscapes', '--data-root', root, '--split', 'val',
                        '--output', lst)
    assert len(err) == 1 and 'labels look like Cityscapes trainIds' in err[0], err
    assert 'no list written' in err[0]
    assert not os.path.exists(lst) and not os.path.exists(lst[:-4] + '.report.json')


def test_no_images_and_bad_flags_are_one_line(tmp_path, capsys):
    for argv, message in (
            (['gta', '--data-root', str(tmp_path)], 'no images found under %s'
             % os.path.join(str(tmp_path), 'images')),
            (['gta', '--data-root', str(tmp_path / 'nope')], 'data root not found'),
            (['gta', '--data-root', str(tmp_path), '--size', '64'], 'bad --size'),
            (['cityscapes', '--data-root', str(tmp_path), '--split', 'extra'],
             "unknown --split 'extra' (allowed: train, val, test)")):
        with pytest.raises(SystemExit) as exit:
            prepare(*argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit.value.code in (1, 2) and len(err) == 1 and message in err[0], err


@pytest.mark.slow
def test_command_line_in_processes(tmp_path):
    """The README's command form, two worker processes and the progress bar."""
    root, lst = str(tmp_path / 'synthia'), str(tmp_path / 'train.lst')
    ids = write_synthia_raw(root, 6, seed=3)
    res = subprocess.run([sys.executable, os.path.join(REPO, 'issegm', 'prepare_data.py'),
                          'synthia', '--data-root', root, '--output', lst, '--workers', '2'],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert 'synthia: 6 samples listed in %s (6 files written now' % lst in res.stdout
    assert '6/6' in res.stderr  # the progress bar
    for name, want in ids.items():
        np.testing.assert_array_equal(
            np.asarray(Image.open(os.path.join(root, 'GT', 'labels', name + '.png'))), want)


def test_warnings_are_printed_and_reported(tmp_path, capsys):
    root, lst = str(tmp_path / 'cs'), str(tmp_path / 'val.lst')
    pairs = make_layout(root, 'cityscapes', 3, split='val')
    empty = os.path.join(root, pairs[2][1])
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(empty)  # all unlabeled
    assert prepare('cityscapes', '--data-root', root, '--split', 'val', '--output', lst) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['warning: %s: every pixel of the label maps to ignore in cityscapes '
                   '(values 0): it teaches and measures nothing' % empty]
    assert report_of(lst)['warnings'] == [err[0][len('warning: '):]]


# --- outputs that cannot be written, interrupts ----------------------------------------------

PREPARE = os.path.join(REPO, 'issegm', 'prepare_data.py')


def _files(folder):
    """{relative path: bytes} of every file under `folder` (hidden ones too)."""
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _one_error_line(res):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith('error: '), \
        res.stdout + res.stderr
    assert 'Traceback' not in res.stderr
    return lines[0]


@pytest.mark.slow
def test_outputs_that_cannot_be_written_stop_before_any_change(tmp_path):
    """A read-only list folder (GTA-5 resized in place otherwise), a read-only --report folder,
    an --output under a file: one line each, the dataset and the folders as they were."""
    root = str(tmp_path / 'gta')
    for k in range(2):
        write_gta_pair(root, '%05d' % (k + 1), (36, 64), (36, 64), seed=k)  # to be resized
    before = _files(root)
    read_only = tmp_path / 'read-only'
    read_only.mkdir()
    (tmp_path / 'a-file').write_text('x')
    read_only.chmod(0o555)
    cases = {
        'list file %s: Permission denied' % (read_only / 'train.lst'):
            ['--output', str(read_only / 'train.lst')],
        'report %s: Permission denied' % (read_only / 'train.report.json'):
            ['--output', str(tmp_path / 'lists' / 'train.lst'), '--report', str(read_only)],
        'list file %s: %s is a file, not a folder' % (tmp_path / 'a-file' / 'train.lst',
                                                       tmp_path / 'a-file'):
            ['--output', str(tmp_path / 'a-file' / 'train.lst')],
    }
    try:
        for words, flags in cases.items():
            res = subprocess.run(without_write_override(
                [sys.executable, PREPARE, 'gta', '--data-root', root, '--size', '32x18',
                 '--no-progress'] + flags), capture_output=True, text=True)
            line = _one_error_line(res)
            assert 'cannot write the ' + words in line, line
            assert _files(root) == before and os.listdir(str(read_only)) == []
            assert not (tmp_path / 'lists').exists()
    finally:
        read_only.chmod(0o755)
    # a read-only dataset folder where a file must be resized in place: a problem line
    os.remove(os.path.join(root, 'images', '00002.png'))
    os.remove(os.path.join(root, 'labels', '00002.png'))
    before = _files(root)
    images = os.path.join(root, 'images')
    os.chmod(images, 0o555)
    try:
        res = subprocess.run(without_write_override(
            [sys.executable, PREPARE, 'gta', '--data-root', root, '--size', '32x18',
             '--no-progress', '--output', str(tmp_path / 'train.lst')]), capture_output=True,
            text=True)
    finally:
        os.chmod(images, 0o755)
    line = _one_error_line(res)
    assert '%s: cannot write the prepared file in place (Permission denied)' % os.path.join(
        images, '00001.png') in line and 'no list written' in line, line
    assert _files(root) == before and not (tmp_path / 'train.lst').exists()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', ''])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_ctrl_c_leaves_no_temporary_files_and_no_worker_traceback(tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while two workers resize
    GTA-5 in place: `error: interrupted`, exit 130, no .NAME.png temporary file left, no
    `Process ForkPoolWorker` trace; the rerun removes the temporary files a killed run left
    and finishes."""
    root, lst = str(tmp_path / 'gta'), str(tmp_path / 'train.lst')
    for k in range(40):
        write_gta_pair(root, '%05d' % (k + 1), (200, 360), (200, 360), seed=k)
    images = os.path.join(root, 'images')
    stamp = os.stat(images).st_mtime_ns
    proc = subprocess.Popen([sys.executable, PREPARE, 'gta', '--data-root', root, '--output',
                             lst, '--size', '1914x1052', '--workers', '2', '--no-progress'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while os.stat(images).st_mtime_ns == stamp and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # until the first resized image is renamed in place
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip() == 'error: interrupted', err
    hidden = [n for folder in ('images', 'labels') for n in os.listdir(os.path.join(root, folder))
              if n.startswith('.')]
    assert hidden == [] and not os.path.exists(lst)
    # what a killed run leaves (both temporary names this tool ever gave): removed by the rerun
    stale = [os.path.join(images, '.00001.png.%d-1.tmp' % _dead_pid()),
             os.path.join(root, 'labels', '.00002.png.tmp%d' % _dead_pid())]
    for path in stale:
        open(path, 'wb').write(b'\0' * 1000)
    res = subprocess.run([sys.executable, PREPARE, 'gta', '--data-root', root, '--output', lst,
                          '--size', '96x54', '--workers', '2', '--no-progress'],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stderr == '', res.stderr
    assert not any(os.path.exists(p) for p in stale) and read_list(lst)
