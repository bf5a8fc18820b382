"""Label values against the dataset's id space: ids outside it, labels that map every pixel
to ignore, and labels that look like trainIds where label ids are expected."""
import collections

import numpy as np
from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABELS

from issegm.datacheck.problems import WARNING, Problem
from issegm.datasets import IGNORE, get_dataset, read_label
from util.errors import UserError

IdSpace = collections.namedtuple('IdSpace', 'family label_ids train_ids expected ignore_share')

# Labels read as label ids that send this share of their pixels to ignore (and hold no label id
# above 18) are trainIds. Measured on generated street scenes (tests/test_data_checks.py,
# test_trainid_share_rule_measured): sets of 20 trainIds, with or without void, send 68-85% of
# their pixels to ignore, sets of 20 labelIds with 0-15% void 0-19% (sets of 3: 56-93%, 0-22%).
TRAINID_IGNORE_SHARE = 0.4

_CITYSCAPES_IDS = IdSpace('Cityscapes', frozenset(lab.id for lab in CITYSCAPES_LABELS
                                                  if lab.id >= 0),
                          frozenset(range(19)),
                          'labelIds (*_gtFine_labelIds.png), not trainIds (*_labelTrainIds.png)',
                          TRAINID_IGNORE_SHARE)

# SYNTHIA class ids 0 (void) .. 22 (lanemarking): yzou2/CBST data/cityscapesscripts/helpers/
# labels_synthia.py; its 16 train ids 0..15.
# No share rule: read as SYNTHIA ids, its trainIds send only road, bus and motorcycle to ignore
# (a share that void pixels of genuine labels reach); its labels converted by prepare_data.py
# hold no trainIds anyway.
_SYNTHIA_IDS = IdSpace('SYNTHIA', frozenset(range(23)), frozenset(range(16)),
                       'SYNTHIA class ids (GT/labels/NAME.png from prepare_data.py synthia), '
                       'not trainIds', None)

ID_SPACES = {'cityscapes': _CITYSCAPES_IDS, 'cityscapes16': _CITYSCAPES_IDS,
             'gta': _CITYSCAPES_IDS, 'synthia': _SYNTHIA_IDS}


def label_counts(path):
    """Pixels per value (256,) int64 of a decoded label; UserError when it does not decode."""
    return np.bincount(read_label(path).ravel(), minlength=256).astype(np.int64)


def require_id_space(dataset):
    """The label and train ids of a dataset (an unknown name is a UserError)."""
    return ID_SPACES[get_dataset(dataset).name]


def label_value_problems(path, values, dataset):
    """Problems of one label from the values it holds: ids outside the dataset's id set, or
    else all pixels mapping to ignore (a warning)."""
    space = require_id_space(dataset)
    outside = sorted(set(int(v) for v in values) - space.label_ids - {IGNORE})
    problems = []
    if outside:
        shown = ', '.join(map(str, outside[:8])) + (', ...' if len(outside) > 8 else '')
        problems.append(Problem(path, 'label-ids', 'label values %s are not %s label ids '
                                '(%d..%d; 255 = ignore)' % (shown, space.family,
                                                            min(space.label_ids),
                                                            max(space.label_ids))))
    elif _all_ignored(values, dataset):
        problems.append(Problem(path, 'all-ignore', 'every pixel of the label maps to ignore in '
                                '%s (values %s): it teaches and measures nothing'
                                % (dataset, ', '.join(map(str, sorted(values)))), WARNING))
    return problems


def _all_ignored(values, dataset):
    table = get_dataset(dataset).label_to_train
    return all(table[int(v)] == IGNORE for v in values)


def ignore_share(counts, dataset):
    """The share of the pixels of (256,) pixel counts per label value that map to ignore in
    `dataset`'s label -> train id table (0 for no pixel)."""
    counts = np.asarray(counts)
    total = counts.sum()
    return float(counts[get_dataset(dataset).label_to_train == IGNORE].sum() / total) \
        if total else 0.0


def id_space_problems(checked, dataset):
    """Problems of a set of labels together: `checked` = [(path, pixels per label value (256,))].
    Labels that look like trainIds: every value held is a train id or 255 (none that only label
    ids use, Cityscapes 19..33, SYNTHIA 16..22, nor one outside the id set), and some hold 255
    (which label ids never use, trainIds use for ignore) or, Cityscapes ids, at least
    TRAINID_IGNORE_SHARE of their pixels map to ignore (read as label ids, trainIds send road,
    sidewalk, building, terrain and sky there: most of a street scene; labelIds only their void
    pixels). Every label all-ignore: an error (and no trainIds hint)."""
    if not checked:
        return []
    space = require_id_space(dataset)
    trainid_values = space.train_ids | {IGNORE}
    held = [set(np.flatnonzero(counts).tolist()) for _, counts in checked]
    all_ignored = all(_all_ignored(values, dataset) for values in held)
    with_ignore = [path for (path, _), values in zip(checked, held) if IGNORE in values]
    share = ignore_share(sum(np.asarray(counts) for _, counts in checked), dataset)
    high_share = space.ignore_share is not None and share >= space.ignore_share and \
        not all_ignored
    problems = []
    if (with_ignore or high_share) and all(values <= trainid_values for values in held):
        top = max(space.train_ids)
        why = ('hold only values 0..%d and 255' % top if with_ignore else
               'hold only values 0..%d, %.0f%% of their pixels mapping to ignore'
               % (top, 100 * share))
        problems.append(Problem(with_ignore[0] if with_ignore else checked[0][0], 'trainids', (
            'labels look like %s trainIds: the %d labels checked %s and none of the label ids '
            'above %d; --dataset %s expects %s'
            % (space.family, len(checked), why, top, dataset, space.expected))))
    if all_ignored:
        problems.append(Problem(checked[0][0], 'all-ignore', 'all %d labels checked map every '
                                'pixel to ignore in %s: wrong labels or wrong --dataset?'
                                % (len(checked), dataset)))
    return problems


def held_values(counts):
    """The label values of (256,) pixel counts that some pixel holds, ascending."""
    return tuple(np.flatnonzero(counts).tolist())


def counts_or_problem(path):
    """(pixels per label value (256,), []) or (None, [the decode problem])."""
    try:
        return label_counts(path), []
    except UserError as e:
        return None, [Problem(path, 'decode', str(e))]
