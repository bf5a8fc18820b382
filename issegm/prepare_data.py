"""Prepare GTA-5, SYNTHIA-RAND-CITYSCAPES or Cityscapes as downloaded: convert, check, list.

Sub-commands gta, synthia and cityscapes: what each writes, checks and reports is in the
README ("Data, list files, weights and priors") and docs/internals.md, section 7.
"""
import collections
import functools
import glob
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from issegm.datacheck.headers import (header_or_problem, image_problems,  # noqa: E402
                                      label_problems, pair_problems)
from issegm.datacheck.id_space import (held_values, id_space_problems, label_counts,  # noqa: E402
                                       label_value_problems)
from issegm.datacheck.lists import duplicate_name_problems, missing_folder_summary  # noqa: E402
from issegm.datacheck.problems import Problem, raise_on_errors  # noqa: E402
from issegm.datasets import (DATA_LIST_DIR, IGNORE, get_dataset, read_image,  # noqa: E402
                             read_label, write_list)
from issegm.figures import draw_class_chart  # noqa: E402
from util.errors import UserError, cli_entry, require_dir  # noqa: E402
from util.files import (atomic_path, remove_stale_temporaries, require_writable,  # noqa: E402
                        write_json)
from util.flags import FlagParser  # noqa: E402
from util.image import resize_image, resize_label  # noqa: E402
from util.parallel import map_in_processes  # noqa: E402

__all__ = ['cityscapes_pairs', 'flat_pairs', 'list_pairs', 'default_list', 'prepared_list', 'Prepared',
           'prepare_gta_sample', 'prepare_synthia_sample', 'check_sample', 'class_report',
           'main']

GTA_SIZE = '1914x1052'  # yzou2/CBST README.md, "Datasets": resize all GTA-5 images to 1052x1914
ASPECT_TOLERANCE = 0.02  # a mismatched GTA-5 pair is resized when its aspect ratios agree so
SYNTHIA_RAW_LABELS = os.path.join('GT', 'LABELS')
CITYSCAPES_SPLITS = ('train', 'val', 'test')

# Layouts with one folder of images and one of labels of the same file names.
FLAT_LAYOUTS = {'gta': ('images', 'labels'), 'synthia': ('RGB', os.path.join('GT', 'labels'))}
LAYOUTS = ('cityscapes',) + tuple(FLAT_LAYOUTS)

# One sample's outcome: paths relative to the root, sizes as found ('WxH' or None), files
# written now, pixels per label value (256,) or None, [Problem].
Prepared = collections.namedtuple('Prepared', 'image label image_size label_size written counts '
                                              'problems')


def cityscapes_pairs(root, split):
    """[(image, label)] relative to root of a Cityscapes split; test: (image, None)."""
    images = sorted(glob.glob(os.path.join(root, 'leftImg8bit', split, '*', '*_leftImg8bit.png')))
    pairs = []
    for image in images:
        city = os.path.basename(os.path.dirname(image))
        stem = os.path.basename(image)[:-len('_leftImg8bit.png')]
        label = os.path.join('gtFine', split, city, stem + '_gtFine_labelIds.png')
        pairs.append((os.path.relpath(image, root), None if split == 'test' else label))
    return pairs


def flat_pairs(root, image_dir, label_dir):
    """[(image_dir/NAME.png, label_dir/NAME.png)] for every image, relative to root."""
    return [(os.path.relpath(image, root), os.path.join(label_dir, os.path.basename(image)))
            for image in sorted(glob.glob(os.path.join(root, image_dir, '*.png')))]


def layout_pairs(layout, root, split):
    """[(image, label)] relative to root of a layout; a UserError when there is no image."""
    if layout == 'cityscapes':
        pairs, where = cityscapes_pairs(root, split), os.path.join(root, 'leftImg8bit', split)
    else:
        image_dir, label_dir = FLAT_LAYOUTS[layout]
        pairs, where = flat_pairs(root, image_dir, label_dir), os.path.join(root, image_dir)
    if not pairs:
        raise UserError('no images found under %s' % where)
    return pairs


def list_pairs(layout, root, split):
    """layout_pairs whose label files must all exist (issegm/make_lists.py)."""
    pairs = layout_pairs(layout, root, split)
    missing = [label for _, label in pairs
               if label is not None and not os.path.isfile(os.path.join(root, label))]
    if missing:
        raise UserError('%d image(s) have no label file, e.g. %s'
                        % (len(missing), os.path.join(root, missing[0])))
    return pairs


def default_list(layout, split):
    """issegm/data_list/LAYOUT/SPLIT.lst, where split names resolve."""
    return os.path.join(DATA_LIST_DIR, layout, split + '.lst')


# The list name prepare_data writes a split to, where it is not the split's name: all 2975
# Cityscapes train images are yzou2/CBST issegm/data_list/cityscapes/train_full.lst there; its
# train.lst is the 505-image subset the paper's --split-tgt train pseudo-labels, never replaced.
PREPARED_LIST_NAMES = {('cityscapes', 'train'): 'train_full'}


def prepared_list(layout, split):
    """Where `prepare_data.py LAYOUT --split SPLIT` writes its list without --output."""
    return default_list(layout, PREPARED_LIST_NAMES.get((layout, split), split))


def _size(header):
    return None if header is None else '%dx%d' % (header.width, header.height)


def write_png_atomic(path, array, palette=None):
    """A uint8 array as PNG (palette image when a palette list is given), written under a
    temporary name beside the target and renamed (util.files.atomic_path, which removes it on
    any error or interrupt), so that an interrupted run never leaves half a file."""
    img = Image.fromarray(np.ascontiguousarray(array))
    if palette is not None:
        img.putpalette(palette)
    with atomic_path(path) as tmp:
        img.save(tmp, format='PNG')


def _same_aspect(a, b):
    return abs(a[0] / a[1] - b[0] / b[1]) <= ASPECT_TOLERANCE * (b[0] / b[1])


def _label_palette(path):
    with Image.open(path) as img:
        return img.getpalette() if img.mode == 'P' else None


def _resize_gta(image, label, ih, lh, size):
    """Resize the files of a checked pair in place to size (w, h); (files written, counts)."""
    written = 0
    if (ih.width, ih.height) != size:
        write_png_atomic(image, resize_image(read_image(image), size[::-1]))
        written += 1
    ids = read_label(label)
    if (lh.width, lh.height) != size:
        ids = resize_label(ids, size[::-1])
        write_png_atomic(label, ids, _label_palette(label))
        written += 1
    return written, np.bincount(ids.ravel(), minlength=256).astype(np.int64)


def prepare_gta_sample(pair, root, size):
    """Check one GTA-5 pair and resize it in place to `size` (w, h); a Prepared."""
    image, label = (os.path.join(root, p) for p in pair)
    ih, problems = header_or_problem(image, 'image')
    lh, label_found = header_or_problem(label, 'label')
    problems += (image_problems(image, ih) if ih else []) + label_found
    problems += label_problems(label, lh) if lh else []
    done = functools.partial(Prepared, pair[0], pair[1], _size(ih), _size(lh))
    if problems:
        return done(0, None, problems)
    if not _same_aspect((ih.width, ih.height), (lh.width, lh.height)):
        return done(0, None, [Problem(label, 'size-mismatch', (
            'label is %dx%d but its image %s is %dx%d: aspect ratios too different to fix by '
            'resizing (is it the right label?)' % (lh.width, lh.height, image, ih.width,
                                                   ih.height)))])
    try:
        written, counts = _resize_gta(image, label, ih, lh, size)
    except UserError as e:
        return done(0, None, [Problem(label, 'decode', str(e))])
    except OSError as e:  # a read-only dataset folder (a full disk is a UserError already)
        return done(0, None, [_write_problem(image, e)])
    return done(written, counts, [])


def _write_problem(path, error):
    return Problem(path, 'write', 'cannot write the prepared file in place (%s): the dataset '
                                  'folder must be writable' % error.strerror)


def _prepared_synthia_label(out, image_header):
    """Pixel counts of an existing GT/labels file that verifies (8-bit one-channel PNG,
    complete, the image's size, decodes), else None."""
    if image_header is None or not os.path.isfile(out):
        return None
    header, problems = header_or_problem(out, 'label')
    if problems or label_problems(out, header) or header.colour != 'grayscale' or \
            (header.width, header.height) != (image_header.width, image_header.height):
        return None
    try:
        return label_counts(out)
    except UserError:
        return None


def _convert_synthia_label(raw, out):
    """GT/LABELS (16-bit, 3 or 4 channels, class id in R) -> GT/labels (8-bit ids); returns
    (ids, []) or (None, [Problem])."""
    header, problems = header_or_problem(raw, 'raw label')
    if problems:
        return None, problems
    if header.format != 'PNG' or header.depth != 16 or header.colour not in ('RGB', 'RGBA'):
        return None, [Problem(raw, 'label-mode', 'raw SYNTHIA label is a %d-bit %s %s; '
                              'expected SYNTHIA-RAND-CITYSCAPES\' 16-bit RGB PNG'
                              % (header.depth, header.colour, header.format))]
    bgr = cv2.imread(raw, cv2.IMREAD_UNCHANGED)  # 16 bits kept; channels in B, G, R(, A) order
    if bgr is None or bgr.ndim != 3:
        return None, [Problem(raw, 'decode', 'cannot decode the raw SYNTHIA label')]
    red = bgr[:, :, 2]
    if red.max() > 255:
        return None, [Problem(raw, 'label-ids', 'raw SYNTHIA label has class ids up to %d in '
                              'its R channel; SYNTHIA ids are 0..22' % red.max())]
    ids = red.astype(np.uint8)
    try:
        write_png_atomic(out, ids)
    except OSError as e:  # a read-only dataset folder (a full disk is a UserError already)
        return None, [_write_problem(out, e)]
    return ids, []


def prepare_synthia_sample(pair, root):
    """Check one SYNTHIA image and make its GT/labels file from GT/LABELS unless it exists and
    verifies; a Prepared."""
    image, out = (os.path.join(root, p) for p in pair)
    raw = os.path.join(root, SYNTHIA_RAW_LABELS, os.path.basename(out))
    ih, problems = header_or_problem(image, 'image')
    problems += image_problems(image, ih) if ih else []
    counts = _prepared_synthia_label(out, ih)
    if counts is not None:
        return Prepared(pair[0], pair[1], _size(ih), _size(ih), 0, counts, problems)
    if not os.path.isfile(raw):
        return Prepared(pair[0], pair[1], _size(ih), None, 0, None, problems + [Problem(
            raw, 'missing', 'raw label not found (nor a finished %s)' % pair[1])])
    rh, _ = header_or_problem(raw, 'raw label')
    if ih is not None and rh is not None and (rh.width, rh.height) != (ih.width, ih.height):
        return Prepared(pair[0], pair[1], _size(ih), _size(rh), 0, None, problems + [Problem(
            raw, 'size-mismatch', 'raw label is %s but its image %s is %s'
            % (_size(rh), image, _size(ih)))])
    ids, converted = _convert_synthia_label(raw, out)
    counts = None if ids is None else np.bincount(ids.ravel(), minlength=256).astype(np.int64)
    return Prepared(pair[0], pair[1], _size(ih), _size(rh), int(ids is not None), counts,
                    problems + converted)


def check_sample(pair, root):
    """Headers of one listed pair and its label's pixel counts (Cityscapes); a Prepared."""
    image = os.path.join(root, pair[0])
    label = None if pair[1] is None else os.path.join(root, pair[1])
    problems, label_ok = pair_problems(image, label)
    ih, _ = header_or_problem(image, 'image')
    lh = header_or_problem(label, 'label')[0] if label else None
    counts = None
    if label_ok:
        try:
            counts = label_counts(label)
        except UserError as e:
            problems.append(Problem(label, 'decode', str(e)))
    return Prepared(pair[0], pair[1], _size(ih), _size(lh), 0, counts, problems)


def class_report(info, counts):
    """Pixels per class (train ids), their share of the labelled pixels, ignored pixels and
    pixels per label id, from (256,) pixel counts per label value."""
    per_class = np.bincount(info.label_to_train, weights=counts, minlength=256)
    labelled = int(per_class[:len(info.class_names)].sum())
    return {
        'pixels': int(counts.sum()), 'labelled_pixels': labelled,
        'ignored_pixels': int(per_class[IGNORE]),
        'pixels_per_class': {name: int(per_class[k]) for k, name in enumerate(info.class_names)},
        'class_share': {name: float(per_class[k]) / max(labelled, 1)
                        for k, name in enumerate(info.class_names)},
        'pixels_per_label_id': {str(v): int(counts[v]) for v in np.flatnonzero(counts)},
    }


def report_paths(list_path, report_dir=None):
    """(LIST_STEM.report.json, LIST_STEM.classes.png) in `report_dir` or beside the list."""
    stem = os.path.splitext(os.path.basename(list_path))[0]
    folder = report_dir or os.path.dirname(os.path.abspath(list_path))
    return (os.path.join(folder, stem + '.report.json'),
            os.path.join(folder, stem + '.classes.png'))


def build_report(args, info, results, list_path, warnings):
    """The JSON report: counts, sizes seen, files written, pixels per class."""
    labelled = [r for r in results if r.counts is not None]
    counts = sum((r.counts for r in labelled), np.zeros(256, np.int64))
    report = {
        'dataset': args.dataset, 'data_root': os.path.abspath(args.data_root),
        'list': os.path.abspath(list_path), 'samples': len(results), 'labels': len(labelled),
        'files_written': int(sum(r.written for r in results)),
        'samples_already_done': int(sum(r.written == 0 for r in results)),
        'image_sizes': dict(collections.Counter(r.image_size for r in results)),
        'label_sizes': dict(collections.Counter(r.label_size for r in labelled)),
        'mismatched_pairs': [r.image for r in labelled if r.image_size != r.label_size],
        'warnings': warnings,
    }
    if args.dataset == 'gta':
        report['resized_to'] = args.size
    report.update(class_report(info, counts))
    return report


def finish(args, info, results, list_path):
    """Problems of the whole set (names, id space) with the samples'; then, when there is no
    error, the list, the report and the chart. Returns 0."""
    root = args.data_root
    problems = duplicate_name_problems([(os.path.join(root, r.image), None) for r in results])
    for r in results:
        problems += r.problems
    checked = [(os.path.join(root, r.label), r.counts) for r in results if r.counts is not None]
    for label, counts in checked:
        problems += label_value_problems(label, held_values(counts), info.name)
    problems = missing_folder_summary(problems) + id_space_problems(checked, info.name)
    raise_on_errors(problems, 'prepare_data %s under %s' % (args.dataset, root),
                    'no list written; fix them and run again (the files already prepared are '
                    'kept and skipped)')
    warnings = ['%s: %s' % (p.path, p.message) for p in problems]
    write_list(list_path, [(r.image, r.label) for r in results])
    report = build_report(args, info, results, list_path, warnings)
    report_json, chart = report_paths(list_path, args.report)
    write_json(report_json, report)
    if report['labels']:
        draw_class_chart(chart, info, report['class_share'], '%s %s: %d labels' % (
            args.dataset, os.path.basename(list_path), report['labels']))
    print('%s: %d samples listed in %s (%d files written now, %d samples already done); '
          'report %s%s' % (args.dataset, len(results), list_path, report['files_written'],
                           report['samples_already_done'], report_json,
                           ', chart ' + chart if report['labels'] else ''))
    return 0


def parse_size(text):
    """'1914x1052' -> (1914, 1052), width x height."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise UserError('bad --size %r: expected WIDTHxHEIGHT, e.g. %s' % (text, GTA_SIZE))
    if width <= 0 or height <= 0:
        raise UserError('bad --size %r: expected positive sizes' % text)
    return width, height


def parse_args(argv):
    common = FlagParser(add_help=False)
    a = common.add_argument
    a('--data-root', required=True, help='the dataset folder as downloaded')
    a('--output', help='list file (default issegm/data_list/DATASET/SPLIT.lst; Cityscapes train: '
                       'train_full.lst, as the original names all 2975 images)')
    a('--report', help='folder of LIST_STEM.report.json and LIST_STEM.classes.png (default: '
                       'beside the list)')
    a('--workers', type=int, help='processes (default: every core)')
    a('--no-progress', action='store_true', help='no progress bar')
    parser = FlagParser(description=__doc__.splitlines()[0],
                        epilog='python issegm/prepare_data.py DATASET --help: the flags of one')
    sub = parser.add_subparsers(dest='dataset', required=True, metavar='DATASET')
    gta = sub.add_parser('gta', parents=[common], help='resize GTA-5 in place to 1914x1052, '
                                                        'check, list')
    gta.add_argument('--size', default=GTA_SIZE,
                     help='WIDTHxHEIGHT the images and labels get (default %(default)s)')
    sub.add_parser('synthia', parents=[common], help='GT/LABELS (16-bit) -> GT/labels (8-bit '
                                                     'class ids), check, list')
    cityscapes = sub.add_parser('cityscapes', parents=[common], help='list and check a split')
    cityscapes.add_argument('--split', default='train', choices=CITYSCAPES_SPLITS,
                            help='leftImg8bit/SPLIT (default %(default)s)')
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise UserError('--workers must be at least 1, got %d' % args.workers)
    return args


def sample_function(args):
    """The per-sample function of the dataset, with its settings."""
    root = args.data_root
    if args.dataset == 'gta':
        return functools.partial(prepare_gta_sample, root=root, size=parse_size(args.size))
    if args.dataset == 'synthia':
        return functools.partial(prepare_synthia_sample, root=root)
    return functools.partial(check_sample, root=root)


def require_outputs_writable(list_path, report_dir):
    """One UserError line unless the list, the report and the chart can all be written:
    checked before any file of the dataset is changed."""
    require_writable(list_path, 'list file')
    for path, what in zip(report_paths(list_path, report_dir), ('report', 'class chart')):
        require_writable(path, what)


def written_folders(dataset, root):
    """The dataset folders prepare_data writes into: GTA-5's images and labels (resized in
    place), SYNTHIA's GT/labels; none for Cityscapes."""
    if dataset == 'gta':
        return [os.path.join(root, folder) for folder in FLAT_LAYOUTS['gta']]
    if dataset == 'synthia':
        return [os.path.join(root, FLAT_LAYOUTS['synthia'][1])]
    return []


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    require_dir(args.data_root, 'data root')
    split = getattr(args, 'split', 'train')
    prepare = sample_function(args)
    pairs = layout_pairs(args.dataset, args.data_root, split)
    list_path = args.output or prepared_list(args.dataset, split)
    require_outputs_writable(list_path, args.report)
    for folder in written_folders(args.dataset, args.data_root):
        remove_stale_temporaries(folder)  # what a run killed mid-write left
    results = map_in_processes(prepare, pairs, args.workers, not args.no_progress,
                               desc=args.dataset, unit='sample')
    return finish(args, get_dataset(args.dataset), results, list_path)


if __name__ == '__main__':
    sys.exit(main())
