"""A smoke version of `make demo`: tiny sizes, one round, the same scripts end to end."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _pseudo_labels(folder):
    """{name: bytes} of a round's pseudo-label PNGs."""
    pngs = sorted((folder / '0' / 'self_train' / 'pseudo_labelIds').iterdir())
    assert pngs
    return {png.name: png.read_bytes() for png in pngs}


def test_demo_smoke(tmp_path):
    out = tmp_path / 'demo'
    res = subprocess.run([sys.executable, '-m', 'issegm.demo', '--smoke', '--output', str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((out / 'results.json').read_text())
    assert set(results) == {'source', 'st', 'cbst', 'cbst_sp', 'crst_mrkld', 'crst_lrent'}
    assert all(0 <= v <= 100 for v in results.values())
    # each row is its own evaluation's mIoU (of the last round), and self-training changed
    # the model: the CBST row is not the source row
    for key, value in results.items():
        folder = out / 'eval' / ('source' if key == 'source' else '%s/round_0' % key)
        assert value == round(100 * json.loads((folder / 'metrics.json').read_text())['miou'], 2)
    assert results['cbst'] != results['source']
    # round 0 starts from the same model: ST's single threshold labels other pixels than
    # CBST's class-balanced ones, and so does LR-ENT; MR-KLD changes only the training, so
    # its phase val is CBST's, byte for byte
    cbst = _pseudo_labels(out / 'cbst')
    assert _pseudo_labels(out / 'st') != cbst and _pseudo_labels(out / 'crst_lrent') != cbst
    assert _pseudo_labels(out / 'crst_mrkld') == cbst
    table = (out / 'results.md').read_text()
    for row in ('| Source only |', '| ST |', '| CBST |', '| CBST-SP |', '| CRST-MRKLD |',
                '| CRST-LRENT |'):
        assert row in table
    for png in ('miou_per_round.png', 'predictions.png'):
        assert (out / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # The self-training runs used the real orchestrator outputs, prior included.
    assert (out / 'spatial_prior' / 'gta' / 'prior_array.mat').is_file()
    assert list((out / 'cbst_sp' / '0' / 'self_train' / 'splabelIds').iterdir())
    assert not (out / 'st' / '0' / 'self_train' / 'rwlabelIds').exists()  # global policy
    # The CRST runs ran with their regularisers: LR-ENT kept its network maps for phase
    # train, and every orchestrator drew its per-round figure.
    assert (out / 'crst_lrent' / '0' / 'self_train' / 'soft_labels.json').is_file()
    assert not (out / 'crst_mrkld' / '0' / 'self_train' / 'soft_labels.json').exists()
    entry = json.loads((out / 'crst_mrkld' / 'summary.json').read_text())[0]
    assert entry['mr_weight_kld'] == 0.01 and 'lr_weight_ent' not in entry
    entry = json.loads((out / 'cbst' / 'summary.json').read_text())[0]
    assert 'mr_weight_kld' not in entry and 'lr_weight_ent' not in entry
    for key in ('st', 'cbst', 'cbst_sp', 'crst_mrkld', 'crst_lrent'):
        assert (out / key / 'rounds.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'demo finished in' in res.stdout and 'results.json' in res.stdout
    # The last step: predict.py with the last CBST model on three target images.
    predicted = out / 'predict'
    for kind in ('labelIds', 'trainIds', 'color', 'overlay', 'confidence', 'entropy'):
        assert len(list((predicted / kind).iterdir())) == 3, kind
    summary = json.loads((predicted / 'summary.json').read_text())
    assert summary['images'] == 3 and summary['model'] == 'cityscapes_rna-tiny_cls19_s8'
    assert summary['weights'].endswith('cbst/0/cityscapes_rna-tiny_cls19_s8_ep-0001.params')
