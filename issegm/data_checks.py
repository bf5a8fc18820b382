"""Checks of a list file's images and labels before hours of work are spent on them (no MXNet).

Used by check_data.py, prepare_data.py, and by train_src.py, evaluate.py and the orchestrator
before their first epoch / round 0 (`--skip-data-check`); the rules: docs/internals.md, section 6.
"""
import collections
import functools
import os
import struct
import sys
import zlib

import numpy as np
from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABELS
from PIL import Image

from issegm.datasets import (IGNORE, get_dataset, load_samples, read_label, sample_name,
                             target_dataset)
from util.errors import UserError, not_a_file
from util.parallel import map_in_processes

__all__ = ['ERROR', 'WARNING', 'Problem', 'Header', 'HeaderError', 'read_header',
           'png_chunk_problem', 'truncation_problems', 'image_problems', 'label_problems',
           'pair_problems', 'label_counts', 'label_value_problems', 'id_space_problems',
           'duplicate_name_problems', 'header_or_problem', 'counts_or_problem', 'held_values',
           'ignore_share', 'TRAINID_IGNORE_SHARE', 'decode_image', 'full_sample_check',
           'quick_check', 'full_check', 'missing_folder_summary', 'format_problem',
           'count_errors', 'raise_on_errors', 'require_clean', 'require_unique_names',
           'check_self_training_lists', 'LABEL_SAMPLE', 'ID_SPACES']

ERROR, WARNING = 'error', 'warning'
Problem = collections.namedtuple('Problem', 'path kind message severity')
Problem.__new__.__defaults__ = (ERROR,)

# Labels decoded by the quick check, spread evenly over the list.
LABEL_SAMPLE = 20

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

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_COLOURS = {0: 'grayscale', 2: 'RGB', 3: 'palette', 4: 'grayscale+alpha', 6: 'RGBA'}
# Pillow modes of other formats: (colour, bit depth)
PIL_MODES = {'1': ('grayscale', 1), 'L': ('grayscale', 8), 'P': ('palette', 8),
             'RGB': ('RGB', 8), 'RGBA': ('RGBA', 8), 'LA': ('grayscale+alpha', 8),
             'I;16': ('grayscale', 16), 'I': ('grayscale', 32), 'F': ('grayscale', 32),
             'CMYK': ('CMYK', 8), 'YCbCr': ('YCbCr', 8)}
TAIL_BYTES = 64  # where a complete file's end marker must be (PNG IEND, JPEG EOI)

Header = collections.namedtuple('Header', 'format width height colour depth complete')


class HeaderError(ValueError):
    """A file whose header cannot be read as an image."""


def read_header(path):
    """Format, size, colour type, bit depth and completeness of an image file, without decoding
    its pixels; raises HeaderError for a file that is not a readable image."""
    with open(path, 'rb') as f:
        head = f.read(33)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read()
    if not head:
        raise HeaderError('empty file')
    if head[:8] == PNG_SIGNATURE:
        if len(head) < 26 or head[12:16] != b'IHDR':
            raise HeaderError('PNG without its IHDR header (truncated or corrupt)')
        width, height, depth, colour = struct.unpack('>IIBB', head[16:26])
        return Header('PNG', width, height, PNG_COLOURS.get(colour, 'colour type %d' % colour),
                      depth, b'IEND' in tail)
    try:
        with Image.open(path) as img:
            fmt, (width, height), mode = img.format, img.size, img.mode
    except Image.DecompressionBombError as e:  # its size, from its header: too large to open
        raise HeaderError(str(e))
    except Exception:
        raise HeaderError('not an image file (no format Pillow knows)')
    colour, depth = PIL_MODES.get(mode, (mode, 8))
    complete = b'\xff\xd9' in tail if fmt == 'JPEG' else True
    return Header(fmt, width, height, colour, depth, complete)


def png_chunk_problem(path):
    """None, or what is wrong with the chunks of a PNG file: each chunk's length and CRC are
    checked, as a decoder would, without decompressing the pixels (a corrupt file that still
    ends with IEND)."""
    with open(path, 'rb') as f:
        if f.read(8) != PNG_SIGNATURE:
            return 'not a PNG file'
        while True:
            head = f.read(8)
            if len(head) < 8:
                return 'the file ends before its IEND chunk (truncated)'
            length, kind = struct.unpack('>I4s', head)
            data, crc = f.read(length), f.read(4)
            if len(data) < length or len(crc) < 4:
                return 'the file ends inside its %s chunk (truncated)' % kind.decode('latin-1')
            if zlib.crc32(kind + data) != struct.unpack('>I', crc)[0]:
                return 'its %s chunk is corrupt (CRC mismatch)' % kind.decode('latin-1')
            if kind == b'IEND':
                return None


def describe(header):
    """E.g. 'an 8-bit RGBA PNG'."""
    text = '%d-bit %s %s' % (header.depth, header.colour, header.format)
    return ('an ' if text[0] in '8aeiou' else 'a ') + text


def header_or_problem(path, what):
    """(Header, []) or (None, [the Problem why not])."""
    reason = not_a_file(path)
    if reason == 'not found':
        return None, [Problem(path, 'missing', '%s not found' % what)]
    if reason:  # a folder, a symbolic link loop, ...
        return None, [Problem(path, 'not-file', '%s %s' % (what, reason))]
    try:
        return read_header(path), []
    except (OSError, HeaderError) as e:
        return None, [Problem(path, 'not-image', 'cannot read the %s: %s' % (what, e))]


def truncation_problems(path, header, what):
    """[] or [the Problem of a file that ends before its end marker] (Header.complete)."""
    if header.complete:
        return []
    return [Problem(path, 'truncated', '%s is truncated: the %s file ends before its end '
                                       'marker (an interrupted download or copy?)'
                    % (what, header.format))]


def image_problems(path, header):
    """The problems of an image's header (8-bit RGB PNG expected)."""
    if header.format != 'PNG':
        return [Problem(path, 'image-format', 'image is a %s file (%s); expected an 8-bit RGB PNG '
                        'as the datasets ship them (a re-encoded image has other pixels)'
                        % (header.format, describe(header)))]
    if header.colour != 'RGB' or header.depth != 8:
        return [Problem(path, 'image-mode', 'image is %s; expected 8-bit RGB (3 channels)'
                        % describe(header))] + truncation_problems(path, header, 'image')
    return truncation_problems(path, header, 'image')


def _bad_label_kind(header):
    """(kind, message) of a label header that is not 8-bit single-channel PNG, or None."""
    if header.format != 'PNG':
        return 'label-format', ('label is a %s file; labels must be PNG (lossless: a JPEG '
                                'changes ids along every edge)' % header.format)
    if header.depth == 16 and header.colour in ('RGB', 'RGBA'):
        return 'label-16bit', ('label is a 16-bit %s PNG, as SYNTHIA\'s raw GT/LABELS (class id in '
                               'the R channel): convert them with `python issegm/prepare_data.py '
                               'synthia --data-root ROOT`, which writes 8-bit GT/labels/NAME.png'
                               % header.colour)
    if header.depth == 16:
        return 'label-16bit', ('label is a 16-bit %s PNG; expected 8-bit label ids'
                               % header.colour)
    if header.colour in ('RGB', 'RGBA'):
        return 'label-colour', ('label is %s colour image; expected one channel of label ids '
                                '(colour PNGs such as *_gtFine_color.png or SYNTHIA\'s GT/COLOR '
                                'show classes as colours, not ids)' % describe(header))
    if header.colour == 'palette' or (header.colour == 'grayscale' and header.depth == 8):
        return None
    return 'label-mode', 'label is %s; expected 8-bit label ids' % describe(header)


def label_problems(path, header):
    """The problems of a label's header (8-bit grayscale or palette PNG expected)."""
    bad = _bad_label_kind(header)
    problems = [] if bad is None else [Problem(path, bad[0], bad[1])]
    return problems + truncation_problems(path, header, 'label')


def pair_problems(image, label, labels_optional=False):
    """Problems of one listed sample from the file headers: (problems, label_ok), label_ok True
    when the label exists and its header is fine (so that its values can be read)."""
    image_header, problems = header_or_problem(image, 'image')
    if image_header is not None:
        problems += image_problems(image, image_header)
    if label is None:
        return problems, False
    if labels_optional and not_a_file(label) == 'not found':
        return problems + [Problem(label, 'missing-label', 'label not found', WARNING)], False
    label_header, label_found = header_or_problem(label, 'label')
    problems += label_found
    if label_header is None:
        return problems, False
    bad_label = label_problems(label, label_header)
    problems += bad_label
    if image_header is not None and (image_header.width, image_header.height) != \
            (label_header.width, label_header.height):
        problems.append(Problem(label, 'size-mismatch', 'label is %dx%d but its image %s is %dx%d'
                                % (label_header.width, label_header.height, image,
                                   image_header.width, image_header.height)))
    return problems, not bad_label


def label_counts(path):
    """Pixels per value (256,) int64 of a decoded label; UserError when it does not decode."""
    return np.bincount(read_label(path).ravel(), minlength=256).astype(np.int64)


def _id_space(dataset):
    """The label and train ids of a dataset (an unknown name is a UserError)."""
    return ID_SPACES[get_dataset(dataset).name]


def label_value_problems(path, values, dataset):
    """Problems of one label from the values it holds: ids outside the dataset's id set, or
    else all pixels mapping to ignore (a warning)."""
    space = _id_space(dataset)
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
    space = _id_space(dataset)
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
    _id_space(dataset)
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


def held_values(counts):
    """The label values of (256,) pixel counts that some pixel holds, ascending."""
    return tuple(np.flatnonzero(counts).tolist())


def counts_or_problem(path):
    """(pixels per label value (256,), []) or (None, [the decode problem])."""
    try:
        return label_counts(path), []
    except UserError as e:
        return None, [Problem(path, 'decode', str(e))]


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
    _id_space(dataset)
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


def format_problem(problem):
    """One line: `error: PATH: message` (or `warning: ...`)."""
    return '%s: %s: %s' % (problem.severity, problem.path, problem.message)


def count_errors(problems):
    return sum(p.severity == ERROR for p in problems)


def raise_on_errors(problems, what, hint):
    """Print the warnings to stderr; stop with a UserError when any problem is an error: one
    line naming the file for one error; for several, one line each on stderr first."""
    errors = [p for p in problems if p.severity == ERROR]
    for p in problems:
        if p.severity != ERROR or len(errors) > 1:
            print(format_problem(p), file=sys.stderr, flush=True)
    if len(errors) == 1:
        raise UserError('%s: %s: %s (%s)' % (what, errors[0].path, errors[0].message, hint))
    if errors:
        raise UserError('%s: %d problems (above); %s' % (what, len(errors), hint))


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
