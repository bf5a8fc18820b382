"""The demo's seed comparison (issegm/demo/compare.py) and task properties
(issegm/demo/properties.py) on constructed results: means, standard deviations, paired
differences, per-class means, the ST / CBST health side by side, the class counts."""
import json

import numpy as np
import pytest

from issegm.demo import compare, properties

CLASSES = ('road', 'person', 'bicycle')


def _finals(mious, ious=None):
    """One seed's {key: metrics} with the given mIoU fractions (and per-class IoU)."""
    return {key: {'miou': m, 'iou': dict(zip(CLASSES, (ious or {}).get(key, (m, m, m))))}
            for key, m in mious.items()}


SEEDS = [
    _finals({'source': 0.10, 'st': 0.12, 'cbst': 0.15, 'cbst_sp': 0.14, 'crst_mrkld': 0.15,
             'crst_lrent': 0.16}),
    _finals({'source': 0.11, 'st': 0.14, 'cbst': 0.16, 'cbst_sp': 0.18, 'crst_mrkld': 0.15,
             'crst_lrent': 0.15}),
    _finals({'source': 0.09, 'st': 0.13, 'cbst': 0.17, 'cbst_sp': 0.14, 'crst_mrkld': 0.17,
             'crst_lrent': 0.17}),
]


def test_mean_sd_is_the_sample_standard_deviation():
    assert compare.mean_sd([1.0, 2.0, 3.0, 6.0]) == pytest.approx(
        (3.0, np.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + 0 + (6 - 3) ** 2) / 3.0)))
    assert compare.mean_sd([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError):
        compare.mean_sd([])


def test_method_spread_in_percent_per_seed():
    spread = compare.method_spread(SEEDS, ['source', 'cbst'])
    assert spread['source']['values'] == pytest.approx([10.0, 11.0, 9.0])
    assert spread['source']['mean'] == pytest.approx(10.0)
    assert spread['source']['sd'] == pytest.approx(1.0)
    assert spread['cbst']['mean'] == pytest.approx(16.0) and spread['cbst']['sd'] == \
        pytest.approx(1.0)


def test_paired_differences_are_taken_within_each_seed():
    d = compare.paired_differences(SEEDS)
    # CBST - ST: +3, +2, +4 points: mean 3, sd 1, beyond its spread
    assert d['CBST - ST']['values'] == pytest.approx([3.0, 2.0, 4.0])
    assert (d['CBST - ST']['mean'], d['CBST - ST']['sd']) == pytest.approx((3.0, 1.0))
    assert d['CBST - ST']['beyond']
    # CBST-SP - CBST: -1, +2, -3: mean -2/3, its sd larger: not beyond
    assert d['CBST-SP - CBST']['values'] == pytest.approx([-1.0, 2.0, -3.0])
    assert not d['CBST-SP - CBST']['beyond']
    # CRST-MRKLD - CBST: 0, -1, 0: a zero difference in a seed is not a consistent sign
    assert d['CRST-MRKLD - CBST']['values'] == pytest.approx([0.0, -1.0, 0.0])
    assert not d['CRST-MRKLD - CBST']['beyond']
    # the paired sd differs from the unpaired one: the seeds' shared offset cancels
    unpaired = np.hypot(compare.method_spread(SEEDS, ['cbst'])['cbst']['sd'],
                        compare.method_spread(SEEDS, ['st'])['st']['sd'])
    assert d['CBST - ST']['sd'] != pytest.approx(unpaired)
    assert set(d) == {label for label, _, _ in compare.PAIRS}


def test_paired_differences_skip_missing_methods_and_one_seed_is_never_beyond():
    one = compare.paired_differences([{'st': {'miou': 0.1}, 'cbst': {'miou': 0.3}}])
    assert list(one) == ['CBST - ST']
    assert one['CBST - ST']['values'] == pytest.approx([20.0])
    assert one['CBST - ST']['sd'] == 0.0 and not one['CBST - ST']['beyond']


def test_class_means_average_each_class_over_the_seeds():
    seeds = [_finals({'st': 0.2}, {'st': (0.5, 0.0, 0.1)}),
             _finals({'st': 0.3}, {'st': (0.7, 0.2, 0.0)})]
    means = compare.class_means(seeds, ['st'], CLASSES)
    assert means['st'] == pytest.approx({'road': 60.0, 'person': 10.0, 'bicycle': 5.0})


def _entry(round_, kept, precision, recall):
    return {'round': round_, 'selected_share': dict(zip(CLASSES, kept)),
            'pseudo_precision': dict(zip(CLASSES, precision)),
            'pseudo_recall': dict(zip(CLASSES, recall))}


def test_health_side_by_side_counts_kept_classes_and_averages_the_last_round():
    summaries = [
        {'st': [_entry(0, (0.3, 0, 0), (0.9, None, None), (0.3, 0.0, 0.0)),
                _entry(1, (0.4, 0, 0), (0.8, None, None), (0.4, 0.0, 0.0))],
         'cbst': [_entry(0, (0.2, 0.2, 0.2), (0.9, 0.5, 0.7), (0.2, 0.1, 0.2)),
                  _entry(1, (0.3, 0.3, 0), (0.9, 0.7, None), (0.3, 0.2, 0.0))]},
        {'st': [_entry(0, (0.3, 0.01, 0), (0.7, 0.2, None), (0.3, 0.0, 0.0)),
                _entry(1, (0.4, 0.01, 0), (0.6, 0.4, None), (0.4, 0.1, 0.0))],
         'cbst': [_entry(0, (0.2, 0.2, 0.2), (0.9, 0.5, 0.7), (0.2, 0.1, 0.2)),
                  _entry(1, (0.3, 0.3, 0.3), (0.7, 0.5, 0.5), (0.3, 0.2, 0.1))]}]
    health = compare.health_side_by_side(summaries, CLASSES)
    assert health['st']['kept'] == pytest.approx([1.5, 1.5])
    assert health['cbst']['kept'] == pytest.approx([3.0, 2.5])
    assert health['st']['precision'] == pytest.approx({'road': 0.7, 'person': 0.4,
                                                       'bicycle': None})
    assert health['st']['precision']['bicycle'] is None
    assert health['cbst']['precision']['bicycle'] == pytest.approx(0.5)
    assert health['cbst']['recall']['person'] == pytest.approx(0.2)
    assert health['st']['kept_share'] == pytest.approx({'road': 1.0, 'person': 0.5,
                                                        'bicycle': 0.0})
    assert health['cbst']['round'] == 1 and health['cbst']['seeds'] == 2


def test_write_compare_writes_markdown_json_and_figure(tmp_path):
    keys = ['source', 'st', 'cbst', 'cbst_sp', 'crst_mrkld', 'crst_lrent']
    result = compare.aggregate(SEEDS, [{}, {}, {}], [0, 1, 2], keys, CLASSES)
    titles = {k: k.upper() for k in keys}
    paths = compare.write_compare(str(tmp_path), result, titles, CLASSES)
    assert json.loads((tmp_path / 'compare.json').read_text())['methods']['cbst']['mean'] == \
        pytest.approx(16.0)
    md = (tmp_path / 'compare.md').read_text()
    assert '| CBST | 16.0 ± 1.0 | 15.0, 16.0, 17.0 |' in md
    assert '| CBST - ST | +3.0 ± 1.0 | +3.0, +2.0, +4.0 | yes |' in md
    assert '| CBST-SP - CBST | -0.7 ± 2.5 | -1.0, +2.0, -3.0 | no |' in md
    assert (tmp_path / 'compare.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert len(paths) == 3


def test_image_counts_and_split_summary_restate_the_pixels():
    gt = np.array([[0, 0, 1, 255], [2, 2, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1, 0], [2, 2, 0, 1]], np.uint8)
    conf = np.array([[0.9, 0.5, 0.6, 1.0], [0.2, 0.4, 0.6, 1.0]])
    one = properties.image_counts(gt, 3, pred, conf)
    total = properties.add_counts(properties.add_counts(None, one), one)
    summary = properties.split_summary(total, CLASSES)
    assert summary['share'] == pytest.approx({'road': 25.0, 'person': 12.5, 'bicycle': 37.5})
    # road: 2 gt pixels, 1 right, 2 predicted (void gt pixels not counted): 1 / 3; person:
    # 1 gt, 1 right, 2 predicted: 1 / 2; bicycle: 3 gt, 2 right, 2 predicted: 2 / 3
    assert summary['iou'] == pytest.approx({'road': 1 / 3, 'person': 1 / 2, 'bicycle': 2 / 3})
    assert summary['confidence'] == pytest.approx({'road': 0.7, 'person': 0.6, 'bicycle': 0.4})
    assert properties.group_confidence(summary, ('road', 'person')) == pytest.approx(0.65)
    labels_only = properties.split_summary(properties.image_counts(gt, 3), CLASSES)
    assert set(labels_only) == {'share'}


def test_reference_shares_are_long_tailed_and_complete():
    for shares in properties.REFERENCE_SHARES.values():
        assert len(shares) == 19
        assert max(shares) > 30 and min(shares) < 0.2
