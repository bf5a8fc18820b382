"""Phase val's report of a round: the mining statistics phase train reads (OUTPUT/stats), the
round's metrics.json (thresholds, selection, pass 1's scores, the round's health, the timing)
and its pseudo_quality.md (docs/internals.md, section 11).
"""
import logging
import os
from typing import NamedTuple

import numpy as np

from issegm import cbst
from issegm.rounds import health as round_health
from issegm.rounds import layout
from util.files import write_atomically, write_json
from util.kernels import isa_record, threads_record
from util.metrics import metrics_dict

__all__ = ['Thresholds', 'write_mining_stats', 'round_timing', 'write_round_report']

log = logging.getLogger('cbst')


class Thresholds(NamedTuple):
    """The round's class thresholds and the pixels per class they came from
    (cbst.ConfidencePool.thresholds)."""
    cls_thresh: np.ndarray
    cls_size: np.ndarray


def write_mining_stats(folder, thresholds, mine_id_number, mine_thresh):
    """FOLDER/{mine_id,mine_id_priority,cls_thresh,cls_size}.npy (phase train's
    --mine-id-address) of the Thresholds; returns (mine_id, mine_id_priority) of
    cbst.mining_classes."""
    mine_id, mine_id_priority = cbst.mining_classes(thresholds.cls_size, mine_id_number,
                                                    mine_thresh)
    os.makedirs(folder)
    for key, value in zip(layout.MINING_STATS, (mine_id, mine_id_priority,
                                                thresholds.cls_thresh, thresholds.cls_size)):
        np.save(os.path.join(folder, key + '.npy'), value)
    log.info('mine_id %s, mine_id_priority %s', list(mine_id), list(mine_id_priority))
    return mine_id, mine_id_priority


def round_timing(seconds, first, num_devices, selection=None):
    """metrics.json 'timing': per image, the seconds in the network (summed over devices), the
    rest of the phase's `seconds` (wall time less the network's share of each device) and the
    bytes kept between the passes (`first`: the FirstPass); with the round's health (a
    Selection with one), the CPU seconds per image its signals took (summed over threads) and
    those of all debug grids."""
    n = len(first.images)
    timing = {'network_s_per_image': first.network_seconds / n,
              'other_s_per_image': (seconds - first.network_seconds / num_devices) / n,
              'cache_bytes_per_image': first.cache_bytes / n}
    if selection is not None and selection.health is not None:
        timing.update(health_cpu_s_per_image=(selection.health_seconds
                                              + first.argmax.entropy.seconds) / n,
                      debug_grid_cpu_s=selection.debug_grid_seconds)
    return timing


def write_round_report(path, header, info, first, thresholds, selection, timing):
    """metrics.json of the round: `header` (round, portion, policy, ...), the Thresholds, the
    share of pixels selected per class (selection: the passes' Selection), the scores of pass
    1's argmax when the split has ground truth (and of the prior-weighted argmax; first: the
    FirstPass), the round's health (and pseudo_quality.md), the timing, and the kernels that
    computed them ("cpu_isa", "cpu_threads": util/kernels.py)."""
    total = max(selection.total_pixels, 1)
    report = dict(header)
    report.update({'cls_thresh': [float(t) for t in thresholds.cls_thresh],
                   'cls_size': [int(s) for s in thresholds.cls_size],
                   'selected_share': {n: float(s) / total
                                      for n, s in zip(info.class_names, selection.selected)},
                   'selected_total': float(selection.selected.sum()) / total})
    argmax = first.argmax
    if argmax.meter is not None:
        report.update(metrics_dict(argmax.meter.matrix, info.class_names))
        if argmax.meter_prior is not None:
            report['with_prior_metrics'] = metrics_dict(argmax.meter_prior.matrix,
                                                         info.class_names)
    if selection.health is not None:
        report.update(round_health.health_metrics(selection.health, info.class_names))
    report.update(cpu_isa=isa_record(), cpu_threads=threads_record())
    report['timing'] = timing  # last, as before
    log.info('per image: network %.3f s, everything else %.3f s; kept %.2f MB between passes',
             timing['network_s_per_image'], timing['other_s_per_image'],
             timing['cache_bytes_per_image'] / 1e6)
    write_json(path, report)
    if selection.health is not None:
        _write_quality_table(os.path.join(os.path.dirname(path), layout.QUALITY_FILE), report,
                             info.class_names, selection.health)
    return report


def _write_quality_table(path, report, class_names, health):
    """PATH (pseudo_quality.md) and one log line of the round's health."""
    text = round_health.quality_table(report, class_names)
    write_atomically(path, lambda f: f.write(text.encode('utf-8')))
    numbers = ['%s %s' % (label, '-' if report.get(key) is None else '%.3f' % report[key])
               for label, key in (('precision', 'pseudo_precision_total'),
                                  ('recall', 'pseudo_recall_total'),
                                  ('kept share', 'pseudo_kept_share_total'),
                                  ('agreement', 'agreement'),
                                  ('mean confidence', 'mean_confidence_total'),
                                  ('mean entropy', 'mean_entropy_total'))
               if key in report]
    log.info('pseudo-labels: %s (agreement over %d of %d images with the previous round\'s)',
             ', '.join(numbers), health.previous_images, health.num_images)
