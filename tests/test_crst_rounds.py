"""CRST rounds end to end with the narrow model: the four weights off leave every CBST output
bit-identical; each CRST variant runs a round; phase val's LR-ENT labels against a plain
statement of yzou2/CRST crst_seg.py label_selection; bad CRST flags are one error line;
OUTPUT/rounds.png after every round."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_round_data
from issegm.datasets import get_dataset, read_label, read_list
from issegm.testtime.one_image import upsample_probs

pytestmark = pytest.mark.slow  # subprocesses, Horovod or long runs: not in `make test-quick`

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCHESTRATOR = os.path.join(REPO, 'issegm', 'solve_AO.py')
ROUND_SCRIPT = os.path.join(REPO, 'issegm', 'solve_ST.py')
MODEL = 'cityscapes_rna-tiny_cls19_s8'
ZEROS = ['--lr-weight-ent', '0', '--mr-weight-kld', '0', '--mr-weight-l2', '0',
         '--mr-weight-ent', '0']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_round_data(tmp_path_factory.mktemp('crst'))


def command(data, output, *extra, rounds=1):
    gta, cs, weights = data
    return [sys.executable, ORCHESTRATOR, '--num-round', str(rounds), '--epoch-per-round', '1',
            '--test-scales', '96', '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
            '--split', str(gta / 'train.lst'), '--split-tgt', str(cs / 'val.lst'),
            '--data-root', str(gta), '--data-root-tgt', str(cs), '--output', str(output),
            '--model', MODEL, '--weights', weights, '--batch-images', '2', '--crop-size', '64',
            '--init-tgt-port', '0.3', '--init-src-port', '1', '--mine-port', '0.5',
            '--base-lr', '1e-3', '--gpus', 'cpu', '--no-progress'] + list(extra)


def run(cmd):
    return subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


# ----------------------------------------------------------------------------------------------
# All four weights 0: CBST, bit for bit

def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def _comparable(path, root):
    """The bytes of an output file with the run's own folder replaced, metrics.json without
    its timing and a phase marker without its command line."""
    with open(path, 'rb') as f:
        raw = f.read().replace(str(root).encode(), b'OUTPUT')
    name = os.path.basename(path)
    if name == 'metrics.json' or name.endswith('.done'):
        obj = json.loads(raw)
        obj.pop('timing', None)
        obj.pop('argv', None)
        return json.dumps(obj, sort_keys=True).encode()
    return raw


def test_zero_weights_leave_every_cbst_output_bit_identical(data, tmp_path):
    """A CBST round of the orchestrator, then the same two phases run by the per-round script
    with all four CRST flags given as 0: every checkpoint, PNG, statistic, list and metric is
    the same byte for byte (logs and timing aside)."""
    plain, zeros = tmp_path / 'plain', tmp_path / 'zeros'
    res = run(command(data, plain))
    assert res.returncode == 0, res.stderr[-3000:]
    for phase in ('val', 'train'):
        argv = json.loads((plain / '0' / (phase + '.done')).read_text())['argv']
        argv = [a.replace(str(plain), str(zeros)) for a in argv]
        res = run([sys.executable, ROUND_SCRIPT] + argv + ZEROS)
        assert res.returncode == 0, res.stderr[-3000:]
    # the orchestrator passes zero weights on as nothing: the same children
    from issegm.rounds import orchestrator
    given = orchestrator.parse_args(command(data, plain)[2:] + ZEROS)
    plan = orchestrator.RoundPlan(0, 0.3, 1.0, 1e-3, 1, 0)
    assert orchestrator.phase_arguments(given, plan, given.weights) == \
        orchestrator.phase_arguments(orchestrator.parse_args(command(data, plain)[2:]), plan,
                                     given.weights)
    outputs = [f for f in _files(plain) if not f.endswith('.log')
               and f not in ('summary.json', 'rounds.png', 'run.json')]
    assert outputs == [f for f in _files(zeros) if not f.endswith('.log')]
    kinds = {os.path.splitext(f)[1] for f in outputs}
    assert {'.params', '.png', '.npy', '.json', '.lst', '.done'} <= kinds
    for f in outputs:
        assert _comparable(plain / f, plain) == _comparable(zeros / f, zeros), f


# ----------------------------------------------------------------------------------------------
# Each CRST variant: one round

def lrent_restated(prob, cls_thresh, alpha):
    """yzou2/CRST crst_seg.py label_selection (cb, lr_weight_ent > 0) in plain NumPy, with this
    port's thresholds (0 -> 1, float32) and p clipped at 0: (pseudo-label, kept per class)."""
    t = np.where(np.asarray(cls_thresh) == 0, 1.0, cls_thresh).astype(np.float32)
    p = np.maximum(prob, np.float32(0))
    q = p / t[:, None, None]
    y = q.astype(np.float64) ** (1.0 / alpha)
    y /= y.sum(axis=0)
    p64 = p.astype(np.float64)
    reg = (-y * np.log(p64 + 1e-32) + alpha * y * np.log(y + 1e-32)).sum(axis=0)
    sel = (-y * np.log(t.astype(np.float64)[:, None, None] + 1e-32)).sum(axis=0)
    label = q.argmax(axis=0)
    label[reg >= sel] = 255
    return label, np.array([(label == k).sum() for k in range(len(t))])


VARIANTS = {
    'lrent': ['--lr-weight-ent', '0.25'],
    'mrkld': ['--mr-weight-kld', '0.01'],
    'mrl2': ['--mr-weight-l2', '0.1'],
    'mrent': ['--mr-weight-ent', '0.1'],
    'lrent+mrkld': ['--lr-weight-ent', '0.25', '--mr-weight-kld', '0.01'],
}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_crst_variant_runs_a_round(data, tmp_path, variant):
    out = tmp_path / 'run'
    flags = VARIANTS[variant]
    res = run(command(data, out, *flags, '--keep-probmaps'))
    assert res.returncode == 0, res.stderr[-3000:]
    weights = {flags[i][2:].replace('-', '_'): float(flags[i + 1])
               for i in range(0, len(flags), 2)}
    assert 'CRST: ' in res.stdout + res.stderr
    assert (out / '0' / ('%s_ep-0001.params' % MODEL)).is_file()
    done = json.loads((out / '0' / 'train.done').read_text())
    assert math.isfinite(done['history'][0]['nll']) and done['history'][0]['batches'] == 4
    summary = json.loads((out / 'summary.json').read_text())
    assert {k: summary[0][k] for k in weights} == weights
    assert (out / 'rounds.png').stat().st_size > 0
    train_args = done['argv']
    for flag, value in zip(flags[::2], flags[1::2]):
        assert train_args[train_args.index(flag) + 1] == value
    symbol = json.loads((out / '0' / ('%s_ep-symbol.json' % MODEL)).read_text())
    assert any(n['name'] == 'crst_loss' for n in symbol['nodes'])
    if 'lrent' in variant:
        _check_lrent_round(out, data, weights['lr_weight_ent'])
    else:  # hard labels: no soft-label record kept
        assert not (out / '0' / 'self_train' / 'netmaps').exists()


def _check_lrent_round(out, data, alpha):
    """Phase val's LR-ENT outputs against the plain statement on its own full-size maps, and
    the kept network maps and record that give back exactly those maps."""
    info = get_dataset('cityscapes')
    metrics = json.loads((out / '0' / 'metrics.json').read_text())
    record = json.loads((out / '0' / 'self_train' / 'soft_labels.json').read_text())
    thresh = np.load(out / 'stats' / 'cls_thresh.npy')
    assert metrics['lr_weight_ent'] == record['lr_weight_ent'] == alpha
    assert record['cls_thresh'] == thresh.tolist() and record['pred_stride'] == 8
    kept, pixels = np.zeros(19, np.int64), 0
    for image, _ in read_list(str(data[1] / 'val.lst')):
        name = os.path.splitext(os.path.basename(image))[0]
        probs = np.load(out / 'probmap' / (name + '.npy'))
        label, counts = lrent_restated(probs, thresh, alpha)
        saved = read_label(str(out / '0' / 'self_train' / 'pseudo_labelIds' / (name + '.png')))
        np.testing.assert_array_equal(saved, info.train_to_label[label])
        geometry = record['images'][name]
        net = np.load(out / '0' / 'self_train' / 'netmaps' / (name + '.npy'))
        np.testing.assert_array_equal(
            upsample_probs(net, 8, geometry['scaled_hw'], geometry['hw']), probs)
        kept += counts
        pixels += label.size
    assert kept.sum() > 0
    # Storage: what phase val keeps for phase train, per image pixel, scaled to a 2048x1024
    # Cityscapes image, stays under the 8 MB budget (the released code: ~150 MB).
    kept_files = list((out / '0' / 'self_train' / 'netmaps').iterdir())
    kept_bytes = sum(f.stat().st_size for f in kept_files)
    kept_bytes += (out / '0' / 'self_train' / 'soft_labels.json').stat().st_size
    assert kept_bytes / pixels * 2048 * 1024 < 8e6
    for k, name in enumerate(info.class_names):
        assert metrics['selected_share'][name] == pytest.approx(kept[k] / pixels, abs=1e-15)


# ----------------------------------------------------------------------------------------------
# Bad values

@pytest.mark.parametrize('script', [ORCHESTRATOR, ROUND_SCRIPT])
@pytest.mark.parametrize('extra,message', [
    (['--mr-weight-kld', '-0.1'], '--mr-weight-kld must be >= 0 (0 = off)'),
    (['--lr-weight-ent', '-1'], '--lr-weight-ent must be >= 0 (0 = off)'),
    (['--mr-weight-l2', 'nan'], '--mr-weight-l2 must be >= 0'),
    (['--mr-weight-kld', '0.1', '--mr-weight-ent', '0.1'], 'only one model regulariser'),
    (['--lr-weight-ent', '0.25', '--kc-policy', 'global'], '--lr-weight-ent needs --kc-policy cb'),
])
def test_bad_crst_values_give_one_error_line(data, tmp_path, script, extra, message):
    cmd = command(data, tmp_path / 'run', *extra)
    if script == ROUND_SCRIPT:
        cmd = [sys.executable, ROUND_SCRIPT, '--phase', 'val'] + cmd[2:]
        cmd = [c for i, c in enumerate(cmd) if c not in ('--num-round', '--epoch-per-round')
               and cmd[i - 1] not in ('--num-round', '--epoch-per-round')]
    res = run(cmd)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], res.stderr
    assert not (tmp_path / 'run' / '0').exists()


def test_lrent_needs_one_test_step_and_phase_val_record(data, tmp_path):
    gta, cs, weights = data
    base = [sys.executable, ROUND_SCRIPT, '--dataset', 'gta', '--dataset-tgt', 'cityscapes',
            '--split', gta / 'train.lst', '--split-tgt', cs / 'val.lst', '--data-root', gta,
            '--data-root-tgt', cs, '--output', tmp_path / 'run', '--model', MODEL,
            '--weights', weights, '--gpus', 'cpu', '--lr-weight-ent', '0.25']
    res = run(base + ['--phase', 'val', '--test-steps', '2'])
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        'error: --lr-weight-ent needs --test-steps 1 (phase train recomputes the soft labels '
        'from the stride-8 maps), got 2']
    # phase train of a round whose phase val ran without LR-ENT
    cbst = tmp_path / 'cbst'
    assert run(command(data, cbst)).returncode == 0
    argv = json.loads((cbst / '0' / 'train.done').read_text())['argv']
    res = run([sys.executable, ROUND_SCRIPT] + argv + ['--lr-weight-ent', '0.25'])
    assert res.returncode != 0 and 'Traceback' not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith('error: --lr-weight-ent: ') and 'soft_labels.json not found' in last


# ----------------------------------------------------------------------------------------------
# rounds.png

FAKE_ROUND_SCRIPT = '''
import json, os, shutil, sys
argv = sys.argv[1:]
value = lambda flag: argv[argv.index(flag) + 1]
out, r = value('--output'), int(value('--idx-round'))
os.makedirs(os.path.join(out, str(r)), exist_ok=True)
if value('--phase') == 'val':
    png = os.path.join(out, 'rounds.png')
    if os.path.exists(png):  # what the orchestrator drew after the rounds before this one
        shutil.copy(png, os.path.join(out, 'rounds-before-%d.png' % r))
    share = {'road': 0.1 * (r + 1), 'car': 0.05}
    with open(os.path.join(out, str(r), 'metrics.json'), 'w') as f:
        json.dump({'selected_share': share, 'selected_total': sum(share.values()),
                   'miou': 0.2 + 0.1 * r}, f)
'''


def test_rounds_png_is_drawn_after_every_round(data, tmp_path):
    """The orchestrator draws OUTPUT/rounds.png after each round (a stand-in per-round script
    records what it finds before each phase val)."""
    script = tmp_path / 'fake_round.py'
    script.write_text(FAKE_ROUND_SCRIPT)
    out = tmp_path / 'run'
    res = run(command(data, out, '--self-training-script', script, rounds=3))
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (out / 'rounds-before-0.png').exists()
    snapshots = [(out / ('rounds-before-%d.png' % r)).read_bytes() for r in (1, 2)]
    final = (out / 'rounds.png').read_bytes()
    assert all(s.startswith(b'\x89PNG') for s in snapshots + [final])
    assert len({snapshots[0], snapshots[1], final}) == 3  # redrawn after rounds 0, 1 and 2
    summary = json.loads((out / 'summary.json').read_text())
    assert [e['miou'] for e in summary] == pytest.approx([0.2, 0.3, 0.4])
