"""The round orchestrator with the narrow model on generated GTA-5 and Cityscapes layouts."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_layout, write_model_weights
from issegm.datasets import write_list

ORCHESTRATOR = 'issegm/script-self-paced-self-trained-segresnet.py'
MODEL = 'cityscapes_rna-tiny_cls19_s8'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp('orc')
    gta, cs = base / 'gta', base / 'cs'
    write_list(str(gta / 'train.lst'), make_layout(str(gta), 'gta', 8, hw=(64, 112)))
    write_list(str(cs / 'val.lst'), make_layout(str(cs), 'cityscapes', 4, hw=(64, 128),
                                                split='val', seed=3))
    weights = write_model_weights(base / 'gta_rna-tiny_cls19_s8_ep-0000.params',
                                  'gta_rna-tiny_cls19_s8')
    return gta, cs, weights


def command(data, output, *extra):
    gta, cs, weights = data
    return [sys.executable, ORCHESTRATOR, '--num-round', '2', '--test-scales', '128',
            '--dataset', 'gta', '--dataset-tgt', 'cityscapes', '--split', str(gta / 'train.lst'),
            '--split-tgt', str(cs / 'val.lst'), '--data-root', str(gta), '--data-root-tgt', str(cs),
            '--output', str(output), '--model', MODEL, '--weights', weights, '--batch-images', '2',
            '--crop-size', '64', '--init-tgt-port', '0.15', '--init-src-port', '0.5',
            '--mine-port', '0.8', '--base-lr', '1e-3', '--gpus', 'cpu', '--no-progress',
            '--kc-policy', 'cb'] + list(extra)


def test_two_rounds(data, tmp_path):
    out = tmp_path / 'run'
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    for r, epoch in ((0, 2), (1, 4)):
        assert (out / str(r) / ('%s_ep-%04d.params' % (MODEL, epoch))).is_file()
        assert (out / str(r) / 'self_train' / 'pseudo_labelIds').is_dir()
    assert not (out / '0' / ('%s_ep-%04d.params' % (MODEL, 3))).exists()
    # Round 1 starts from round 0's last checkpoint and continues the epoch count.
    assert '--weights %s' % (out / '0' / ('%s_ep-0002.params' % MODEL)) in res.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert [e['round'] for e in summary] == [0, 1]
    assert summary[1]['lr'] == pytest.approx(1e-3 / math.sqrt(2))
    assert summary[1]['tgt_port'] == pytest.approx(0.2)
    assert summary[1]['src_port'] == pytest.approx(0.5)  # already above --max-src-port 0.06
    assert list(summary[0]['selected_share'])[:2] == ['road', 'sidewalk']
    assert 0 <= summary[1]['miou'] <= 1
    assert res.stdout.count('| selected: road') == 2
    for name in ('mine_id', 'mine_id_priority', 'cls_thresh', 'cls_size'):
        assert (out / 'stats' / (name + '.npy')).is_file()


def test_failing_child_stops_with_its_status(data, tmp_path):
    res = subprocess.run(command(data, tmp_path / 'run', '--data-root', str(tmp_path / 'nope')),
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert 'data root not found' in res.stderr and 'Traceback' not in res.stderr
    assert not (tmp_path / 'run' / '1').exists()


def test_resume_after_kill_in_round_1(data, tmp_path):
    out = tmp_path / 'run'
    proc = subprocess.Popen(command(data, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not (out / '1' / 'val.done').exists():
        assert proc.poll() is None and time.time() < deadline, 'orchestrator ended early'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kills the orchestrator and its child phase
    proc.wait()
    assert not (out / '1' / 'train.done').exists()
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    for skipped in ('round 0 phase val', 'round 0 phase train', 'round 1 phase val'):
        assert skipped + ' already finished, skipping' in res.stdout
    assert 'round 1 phase train: ' in res.stdout
    assert (out / '1' / ('%s_ep-0004.params' % MODEL)).is_file()
    assert (out / '1' / 'train.done').is_file()
    leftovers = [p for p in out.rglob('*') if '.tmp' in p.name or 'partial' in p.name]
    assert not leftovers
    # A third call finds everything finished and runs nothing.
    res = subprocess.run(command(data, out), capture_output=True, text=True)
    assert res.returncode == 0 and 'running:' not in res.stdout
