"""A whole list checked: the quick check the long-running scripts make first (every header,
a sample of labels decoded) and check_data.py's full one (every file decoded, in processes)."""
import collections
import functools
import os

import numpy as np
from PIL import Image

from issegm.datacheck.headers import pair_problems
from issegm.datacheck.id_space import (counts_or_problem, held_values, id_space_problems,
                                       label_value_problems, require_id_space)
from issegm.datacheck.problems import WARNING, Problem, raise_on_errors
from issegm.datasets import load_samples, sample_name, target_dataset
from util.errors import UserError
from util.parallel import map_in_processes

# Labels decoded by the quick check, spread evenly over the list.
LABEL_SAMPLE = 20


def duplicate_name_problems(samples):
    """Two different images of one output name (the image file name without extension): phase
    val and evaluate.py write their outputs by that name, so one would overwrite the other."""
    seen, problems = {}, []
    for image, _ in samples:
        first = seen.setdefault(sample_name(image), image)
        if first != image:
            problems.append(Problem(image, 'duplicate-name', 'image has the output name %s of %s '
                                    'too (outputs are written as NAME.png)'
                                    % (sample_name(image), first)))
    return problems


def check_unique_names(named):
    """Raise a UserError naming both sources when two (output name, source) pairs share a
    name: their outputs would overwrite each other."""
    seen = {}
    for name, source in named:
        if name in seen:
            raise UserError('two images share the output name %s: %s and %s'
                            % (name, seen[name], source))
        seen[name] = source


def _as_samples(samples_or_list, dataset, data_root, require_labels):
    """[(image, label or None)] absolute: as given, or loaded from a split name / list path."""
    if isinstance(samples_or_list, str):
        return load_samples(data_root, samples_or_list, dataset, require_labels=require_labels)
    return list(samples_or_list)


def _even_sample(items, count):
    """`count` items spread evenly over `items` (all when fewer), in order."""
    if len(items) <= count:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]


def _missing_label_summary(problems):
    """The warnings of missing optional labels as one line (phase val then reports no mIoU)."""
    missing = [p for p in problems if p.kind == 'missing-label']
    if not missing:
        return problems
    rest = [p for p in problems if p.kind != 'missing-label']
    return rest + [Problem(missing[0].path, 'missing-label', '%d label file(s) not found, e.g. '
                           'this one: phase val reports no target mIoU' % len(missing), WARNING)]


def _missing_folder(path):
    """The highest missing folder of a missing file's path (its parent exists), or None when
    the file's own folder exists."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder):
        return None
    while not os.path.isdir(os.path.dirname(folder)) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def missing_folder_summary(problems):
    """Files not found because a folder of their path is missing (labels/, gtFine/, ...): one
    error naming that folder instead of one per file."""
    by_folder, rest = collections.OrderedDict(), []
    for p in problems:
        folder = _missing_folder(p.path) if p.kind == 'missing' else None
        if folder is None:
            rest.append(p)
        else:
            by_folder.setdefault(folder, []).append(p)
    return rest + [Problem(folder, 'missing-folder', 'folder not found (%d listed file(s) under '
                           'it, e.g. %s)' % (len(group), os.path.relpath(group[0].path, folder)))
                   for folder, group in by_folder.items()]


def quick_check(samples_or_list, dataset, data_root=None, sample=LABEL_SAMPLE,
                require_labels=False, labels_optional=False):
    """Problems found from the headers of every listed file and the values of `sample` labels
    spread evenly over the list. `samples_or_list`: [(image, label or None)] paths, or a split
    name / list path read under `data_root`. `labels_optional`: a missing label file is a
    warning (the self-training target), not an error."""
    require_id_space(dataset)
    samples = _as_samples(samples_or_list, dataset, data_root, require_labels)
    problems = duplicate_name_problems(samples)
    readable = []
    for image, label in samples:
        found, label_ok = pair_problems(image, label, labels_optional)
        problems += found
        if label_ok:
            readable.append(label)
    checked = []
    for label in _even_sample(readable, sample):
        counts, decode_problem = counts_or_problem(label)
        problems += decode_problem
        if counts is not None:
            checked.append((label, counts))
            problems += label_value_problems(label, held_values(counts), dataset)
    return missing_folder_summary(_missing_label_summary(problems)) + \
        id_space_problems(checked, dataset)


def decode_image(path):
    """[] or [the problem] after decoding every pixel of an image."""
    try:
        with Image.open(path) as img:
            img.load()
        return []
    except Exception as e:
        return [Problem(path, 'decode', 'cannot decode the image (%s)' % e)]


def full_sample_check(sample, dataset, labels_optional=False):
    """Headers, a full decode of image and label, and the label's values, for one sample:
    (problems, (label, pixels per label value) or None)."""
    image, label = sample
    problems, label_ok = pair_problems(image, label, labels_optional)
    if os.path.isfile(image) and not any(p.path == image for p in problems):
        problems += decode_image(image)
    if not label_ok:
        return problems, None
    counts, decode_problem = counts_or_problem(label)
    if counts is None:
        return problems + decode_problem, None
    return problems + label_value_problems(label, held_values(counts), dataset), (label, counts)


def full_check(samples_or_list, dataset, data_root=None, require_labels=False,
               labels_optional=False, workers=None, progress=False):
    """`quick_check` with every image and label decoded and every label's values checked, in
    `workers` processes (default: every core)."""
    require_id_space(dataset)
    samples = _as_samples(samples_or_list, dataset, data_root, require_labels)
    results = map_in_processes(functools.partial(full_sample_check, dataset=dataset,
                                                 labels_optional=labels_optional),
                               samples, workers, progress, desc='check', unit='sample')
    problems = duplicate_name_problems(samples)
    for found, _ in results:
        problems += found
    checked = [held for _, held in results if held is not None]
    return missing_folder_summary(_missing_label_summary(problems)) + \
        id_space_problems(checked, dataset)


def require_clean(samples_or_list, dataset, data_root=None, what=None, require_labels=False,
                  labels_optional=False, sample=LABEL_SAMPLE):
    """The quick check the long-running scripts make first (see raise_on_errors); returns the
    problems (warnings only) when there is no error."""
    problems = quick_check(samples_or_list, dataset, data_root, sample, require_labels,
                           labels_optional)
    what = what or (samples_or_list if isinstance(samples_or_list, str) else 'the list')
    raise_on_errors(problems, 'data check of %s' % what,
                    '`python issegm/check_data.py` checks a list on its own; '
                    '--skip-data-check runs anyway')
    return problems


def require_unique_names(samples, what):
    """A UserError when two different images of [(image, label)] share an output name
    (duplicate_name_problems): phase val checks it even when the data check is skipped."""
    raise_on_errors(duplicate_name_problems(samples), 'data check of %s' % what,
                    'rename one of them: outputs are written as NAME.png')


def check_self_training_lists(run):
    """The orchestrator's check before round 0, from its RunSettings `run`: the source list
    (labels required) with the source's tables, the target list with the target's (its labels
    are optional: without them phase val reports no mIoU)."""
    require_clean(run.split, run.dataset, run.data_root, what='the source list %s'
                  % run.split, require_labels=True)
    require_clean(run.split_tgt, target_dataset(run.dataset, run.dataset_tgt),
                  run.data_root_tgt, what='the target list %s' % run.split_tgt,
                  labels_optional=True)
