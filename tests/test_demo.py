"""A smoke version of `make demo`: tiny sizes, one round, the same scripts end to end; and the
demo's health report (issegm/demo/health_report.py) from constructed summary.json files."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from issegm.demo import health_report
from issegm.demo.pipeline import METHODS


def _pseudo_labels(folder):
    """{name: bytes} of a round's pseudo-label PNGs."""
    pngs = sorted((folder / '0' / 'self_train' / 'pseudo_labelIds').iterdir())
    assert pngs
    return {png.name: png.read_bytes() for png in pngs}


@pytest.mark.slow
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
    for png in ('miou_per_round.png', 'predictions.png', 'health_per_round.png',
                'spatial_prior/gta/prior.png', 'spatial_prior/gta/class_share.png'):
        assert (out / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    report = (out / 'health.md').read_text()
    for _, title, _ in METHODS:
        assert '\n## %s\n\n| round | target mIoU (%%) |' % title in report
        assert '\n| 0 | ' in report
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
    # properties.md/json: the class shares and the source model on held-out images of both
    # domains (4 held-out source images in the smoke configuration)
    props = json.loads((out / 'properties.json').read_text())
    assert len(list((out / 'properties' / 'source' / 'confidence').iterdir())) == 4
    for domain in ('source', 'target'):
        assert sum(props[domain]['share'].values()) <= 100.0 + 1e-9
        assert all(c is None or 0 < c <= 1 for c in props[domain]['confidence'].values())
    assert '| person |' in (out / 'properties.md').read_text()
    # The last step: predict.py with the last CBST model on three target images.
    predicted = out / 'predict'
    for kind in ('labelIds', 'trainIds', 'color', 'overlay', 'confidence', 'entropy'):
        assert len(list((predicted / kind).iterdir())) == 3, kind
    summary = json.loads((predicted / 'summary.json').read_text())
    assert summary['images'] == 3 and summary['model'] == 'cityscapes_rna-tiny_cls19_s8'
    assert summary['weights'].endswith('cbst/0/cityscapes_rna-tiny_cls19_s8_ep-0001.params')


def _run_demo(*args):
    res = subprocess.run([sys.executable, '-m', 'issegm.demo', '--smoke'] + list(args),
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_demo_two_seeds_compare_and_resume(tmp_path):
    """--seeds 2 (two methods, to stay small): one data set, a run per seed, compare.*
    restating the seeds' results; a rerun resumes (no training) and writes the same."""
    out = tmp_path / 'compare'
    _run_demo('--seeds', '2', '--methods', 'st,cbst', '--output', str(out))
    result = json.loads((out / 'compare.json').read_text())
    assert result['seeds'] == [0, 1] and list(result['methods']) == ['source', 'st', 'cbst']
    per_seed = [json.loads((out / ('seed_%d' % k) / 'results.json').read_text())
                for k in (0, 1)]
    for key, spread in result['methods'].items():
        assert spread['values'] == pytest.approx([r[key] for r in per_seed], abs=0.006)
        assert spread['mean'] == pytest.approx(np.mean(spread['values']))
        assert spread['sd'] == pytest.approx(np.std(spread['values'], ddof=1))
    assert result['differences']['CBST - ST']['values'] == pytest.approx(
        [r['cbst'] - r['st'] for r in per_seed], abs=0.011)
    # the seeds drew other source weights and passed their seed to the rounds
    weights = [(out / ('seed_%d' % k) / 'source' / 'gta_rna-tiny_cls19_s8_ep-0001.params')
               .read_bytes() for k in (0, 1)]
    assert weights[0] != weights[1]
    for k in (0, 1):
        run = json.loads((out / ('seed_%d' % k) / 'cbst' / 'run.json').read_text())
        assert run['settings']['--seed-int'] == k
    assert set(result['health']) == {'st', 'cbst'}
    assert len(result['health']['cbst']['kept']) == 1
    md = (out / 'compare.md').read_text()
    assert '| CBST - ST |' in md and '## Round health of ST and CBST' in md
    assert (out / 'compare.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert not (out / 'seed_1' / 'data').exists()  # the data are shared by the seeds
    before = (out / 'compare.json').read_text()
    # one lane, so that every step a rerun runs prints here, none to a lane's log (the
    # orchestrator itself starts again and finds its rounds done)
    again = _run_demo('--seeds', '2', '--methods', 'st,cbst', '--jobs', '1', '--output', str(out))
    assert 'source-only training' not in again and 'evaluation:' not in again
    assert (out / 'compare.json').read_text() == before


@pytest.mark.slow
def test_methods_side_by_side_give_the_numbers_of_one_at_a_time(tmp_path):
    """--jobs 2 runs ST and CBST at once, each lane logging to OUTPUT/logs/KEY.log; every
    evaluation and pseudo-label equals the one-at-a-time run's, byte for byte."""
    outputs = {}
    for jobs in ('1', '2'):
        outputs[jobs] = tmp_path / ('jobs%s' % jobs)
        printed = _run_demo('--methods', 'st,cbst', '--jobs', jobs, '--output',
                            str(outputs[jobs]))
        assert ('its output: %s' % (outputs[jobs] / 'logs' / 'cbst.log') in printed) == \
            (jobs == '2')
    assert 'finished 1 rounds' in (outputs['2'] / 'logs' / 'st.log').read_text()
    for key in ('st', 'cbst'):
        assert _pseudo_labels(outputs['1'] / key) == _pseudo_labels(outputs['2'] / key)
        metrics = [json.loads((o / 'eval' / key / 'round_0' / 'metrics.json').read_text())
                   for o in outputs.values()]
        assert metrics[0] == metrics[1]
    assert (outputs['1'] / 'results.md').read_text() == (outputs['2'] / 'results.md').read_text()


def test_a_failing_lane_stops_the_lanes_not_yet_started(tmp_path, monkeypatch):
    from issegm.demo import steps
    started = []

    def lane(output, cfg, paths, source_weights, prior, method, seed, log=None):
        started.append(method[0])
        if method[0] == 'st':
            raise steps.UserError('demo step "self-training: st" failed with exit status 1')
        return [{'miou': 0.1}], 'w'

    monkeypatch.setattr(steps, 'method_lane', lane)
    with pytest.raises(steps.UserError, match='self-training: st'):
        steps.run_methods(str(tmp_path), {}, {}, 'w0', 'prior', METHODS, 0, jobs=1)
    assert started == ['st']
    started.clear()
    result = steps.run_methods(str(tmp_path), {}, {}, 'w0', 'prior', METHODS[1:3], 0, jobs=2)
    assert sorted(started) == ['cbst', 'cbst_sp'] and list(result) == ['cbst', 'cbst_sp']
    assert (tmp_path / 'logs').is_dir()


def test_default_jobs_is_one_more_lane_than_cpus_and_at_most_one_per_method():
    from issegm.demo.pipeline import default_jobs
    assert [default_jobs(c) for c in (1, 2, 3, 4, 16)] == [2, 3, 4, 5, 5]
    assert len(METHODS) == 5


def test_demo_rejects_bad_seed_flags(tmp_path):
    from issegm.demo.pipeline import main
    for argv in (['--seeds', '0'], ['--seeds', '2', '--only-seed', '2'],
                 ['--methods', 'st'], ['--methods', 'cbst,nope'], ['--jobs', '0']):
        with pytest.raises(SystemExit) as exc:
            main(argv + ['--output', str(tmp_path / 'x')])
        assert exc.value.code != 0
    assert not (tmp_path / 'x').exists()


# ----------------------------------------------------------------------------------------------
# health.md and health_per_round.png from constructed summary.json files

NAN = float('nan')


def _entry(r, miou, precision=None, recall=None, kept=0.2, agreement=None, entropy=None,
           confidence=None):
    entry = {'round': r, 'tgt_port': 0.2, 'miou': miou, 'selected_total': kept,
             'selected_share': {'road': kept}}
    health_keys = {'pseudo_precision_total': precision, 'pseudo_recall_total': recall,
                   'agreement': agreement, 'mean_entropy_total': entropy,
                   'mean_confidence_total': confidence}
    entry.update({k: v for k, v in health_keys.items() if v is not None or r % 2})
    return entry  # even rounds leave the unknown keys out, odd ones write null


SUMMARIES = {
    # ST: all known but the agreement at round 0 and the precision at round 2
    'st': [_entry(0, 0.17, 0.70, 0.10, 0.20, None, 0.60, 0.80),
           _entry(1, 0.18, 0.74, 0.15, 0.25, 0.81, 0.55, 0.83),
           _entry(2, 0.20, None, 0.18, 0.30, 0.86, 0.50, 0.84),
           _entry(3, 0.19, 0.77, 0.20, 0.35, 0.84, 0.52, 0.86)],
    # CBST as with --no-health: only the mIoU and the kept share
    'cbst': [_entry(r, 0.2 + 0.01 * r) for r in range(3)],
    # CRST-LRENT: two rounds (too few for r), a constant confidence
    'crst_lrent': [_entry(0, 0.17, 0.6, 0.1, 0.2, None, 0.7, 0.9),
                   _entry(1, 0.2, 0.7, 0.1, 0.2, 0.9, 0.6, 0.9)],
}  # CBST-SP and CRST-MRKLD: no summary.json (the run did not get that far)
TITLES = {key: title for key, title, _ in METHODS}


def _write_summaries(output):
    for key, entries in SUMMARIES.items():
        os.makedirs(os.path.join(output, key))
        with open(os.path.join(output, key, 'summary.json'), 'w') as f:
            json.dump(entries, f)


def _restated_r(xs, ys):
    """Pearson's r written out, over the pairs where both are known; None below 3 pairs or
    for a constant side."""
    pairs = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len(pairs) < 3:
        return None
    mx = sum(x for x, _ in pairs) / len(pairs)
    my = sum(y for _, y in pairs) / len(pairs)
    sxy = sum((x - mx) * (y - my) for x, y in pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    syy = sum((y - my) ** 2 for _, y in pairs)
    if max(x for x, _ in pairs) == min(x for x, _ in pairs) or \
            max(y for _, y in pairs) == min(y for _, y in pairs):
        return None
    return sxy / math.sqrt(sxx * syy)


def _rows(table):
    return [[c.strip() for c in line.strip('|').split('|')]
            for line in table.strip().splitlines()[2:]]


def test_health_tables_restate_the_summaries(tmp_path):
    _write_summaries(str(tmp_path))
    summaries = health_report.load_summaries(str(tmp_path), METHODS)
    assert list(summaries) == ['st', 'cbst', 'crst_lrent'] and summaries == SUMMARIES
    columns = [('miou', 100, '%.1f'), ('pseudo_precision_total', 100, '%.1f'),
               ('pseudo_recall_total', 100, '%.1f'), ('selected_total', 100, '%.1f'),
               ('agreement', 100, '%.1f'), ('mean_entropy_total', 1, '%.3f'),
               ('mean_confidence_total', 1, '%.3f')]
    for key, entries in SUMMARIES.items():
        expected = [[str(e['round'])] + ['-' if e.get(k) is None else form % (scale * e[k])
                                         for k, scale, form in columns] for e in entries]
        assert _rows(health_report.health_table(entries)) == expected
    assert _rows(health_report.health_table(SUMMARIES['st']))[2] == \
        ['2', '20.0', '-', '18.0', '30.0', '86.0', '0.500', '0.840']
    assert _rows(health_report.health_table(SUMMARIES['cbst']))[1] == \
        ['1', '21.0', '-', '-', '20.0', '-', '-', '-']


def test_tracking_table_is_pearsons_r_per_run_and_over_all_runs():
    rows = _rows(health_report.tracking_table(SUMMARIES, TITLES))
    assert len(rows) == 6
    pairs = [(s, v) for s in ('agreement', 'mean_entropy_total', 'mean_confidence_total')
             for v in ('pseudo_precision_total', 'miou')]
    for row, (signal, value) in zip(rows, pairs):
        columns = [SUMMARIES[k] for k in SUMMARIES] + [sum(SUMMARIES.values(), [])]
        expected = [_restated_r([e.get(signal) for e in entries],
                                [e.get(value) for e in entries]) for entries in columns]
        assert row[2:] == ['-' if r is None else '%.2f' % r for r in expected], row
    # ST's agreement and precision: rounds 1 and 3 only (round 0: no agreement, 2: no
    # precision), too few; with the mIoU: rounds 1-3
    assert rows[0][2] == '-' and rows[1][2] == '%.2f' % _restated_r([0.81, 0.86, 0.84],
                                                                    [0.18, 0.20, 0.19])
    assert rows[2][2] != '-' and rows[2][4] == '-'  # CRST-LRENT: two rounds
    assert rows[4][4] == '-'  # its constant confidence
    assert health_report.pearson([1, 2, NAN, 4], [2, 4, 5, 8]) == pytest.approx(1.0)
    assert health_report.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert health_report.pearson([1, 1, 1], [1, 2, 3]) is None
    assert health_report.pearson([], []) is None


def test_health_figure_draws_the_series_and_the_signals_against_the_labels():
    import matplotlib.pyplot as plt
    fig = health_report.health_figure(SUMMARIES, TITLES)
    assert len(fig.axes) == 12
    panels = {ax.get_title(): ax for ax in fig.axes}
    precision = panels['pseudo-label precision (%) per round']
    assert [line.get_label() for line in precision.lines] == ['ST', 'CBST', 'CRST-LRENT']
    assert list(precision.lines[0].get_ydata()) == pytest.approx([70, 74, NAN, 77], nan_ok=True)
    assert np.isnan(precision.lines[1].get_ydata()).all()
    entropy = panels['mean entropy (nats) per round'].lines[0]
    assert list(entropy.get_xdata()) == [0, 1, 2, 3]
    assert list(entropy.get_ydata()) == pytest.approx([0.6, 0.55, 0.5, 0.52])
    against = panels['pseudo-label precision (%) against agreement (%)'].lines[0]
    assert list(against.get_xdata()) == pytest.approx([NAN, 81, 86, 84], nan_ok=True)
    assert list(against.get_ydata()) == pytest.approx([70, 74, NAN, 77], nan_ok=True)
    miou = panels['target mIoU (%) against mean confidence'].lines[2]
    assert list(miou.get_xdata()) == pytest.approx([0.9, 0.9])
    assert list(miou.get_ydata()) == pytest.approx([17, 20])
    plt.close('all')


def test_write_health_writes_the_report_and_the_figure(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(health_report, 'save_figure', lambda fig, path: saved.append(fig) or path)
    assert health_report.write_health(str(tmp_path), METHODS) == []  # no run: nothing written
    assert not os.listdir(tmp_path) and not saved
    _write_summaries(str(tmp_path))
    md, png = health_report.write_health(str(tmp_path), METHODS)
    assert (md, png) == (str(tmp_path / 'health.md'), str(tmp_path / 'health_per_round.png'))
    assert len(saved) == 1 and len(saved[0].axes) == 12
    report = open(md).read()
    assert [line[3:] for line in report.splitlines() if line.startswith('## ')] == \
        ['ST', 'CBST', 'CRST-LRENT', 'Do the label-free signals track the labelled ones?']
    assert health_report.health_table(SUMMARIES['cbst']) in report
    assert health_report.tracking_table(SUMMARIES, TITLES) in report
    import matplotlib.pyplot as plt
    plt.close('all')
