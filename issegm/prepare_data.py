"""Prepare GTA-5, SYNTHIA-RAND-CITYSCAPES or Cityscapes as downloaded: convert, check, list.

Sub-commands gta, synthia and cityscapes: what each writes, checks and reports is in the
README ("Data, list files, weights and priors") and docs/internals.md, section 7. The library:
issegm/preparation/.
"""
import collections
import functools
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from issegm.datacheck.id_space import (held_values, id_space_problems,  # noqa: E402
                                       label_value_problems)
from issegm.datacheck.lists import duplicate_name_problems, missing_folder_summary  # noqa: E402
from issegm.datacheck.problems import raise_on_errors  # noqa: E402
from issegm.datasets import IGNORE, get_dataset, write_list  # noqa: E402
from issegm.figures import draw_class_chart  # noqa: E402
from issegm.preparation.layouts import (CITYSCAPES_SPLITS, FLAT_LAYOUTS,  # noqa: E402
                                        layout_pairs, prepared_list)
from issegm.preparation.samples import (check_sample, prepare_gta_sample,  # noqa: E402
                                        prepare_synthia_sample)
from util.errors import UserError, cli_entry, require_dir  # noqa: E402
from util.files import remove_stale_temporaries, require_writable, write_json  # noqa: E402
from util.flags import FlagParser  # noqa: E402
from util.parallel import map_in_processes  # noqa: E402

__all__ = ['class_report', 'report_paths', 'build_report', 'finish', 'parse_size', 'main']

GTA_SIZE = '1914x1052'  # yzou2/CBST README.md, "Datasets": resize all GTA-5 images to 1052x1914


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


def build_report(info, root, results, list_path, warnings, size=None):
    """The JSON report of the dataset `info` under `root`: counts, sizes seen, files written,
    pixels per class (GTA-5: the --size resized to)."""
    labelled = [r for r in results if r.counts is not None]
    counts = sum((r.counts for r in labelled), np.zeros(256, np.int64))
    report = {
        'dataset': info.name, 'data_root': os.path.abspath(root),
        'list': os.path.abspath(list_path), 'samples': len(results), 'labels': len(labelled),
        'files_written': int(sum(r.written for r in results)),
        'samples_already_done': int(sum(r.written == 0 for r in results)),
        'image_sizes': dict(collections.Counter(r.image_size for r in results)),
        'label_sizes': dict(collections.Counter(r.label_size for r in labelled)),
        'mismatched_pairs': [r.image for r in labelled if r.image_size != r.label_size],
        'warnings': warnings,
    }
    if info.name == 'gta':
        report['resized_to'] = size
    report.update(class_report(info, counts))
    return report


def finish(info, root, results, list_path, report_dir=None, size=None):
    """Problems of the whole set (names, id space) with the samples'; then, when there is no
    error, the list, the report (in `report_dir`, else beside the list) and the chart.
    Returns 0."""
    dataset = info.name
    problems = duplicate_name_problems([(os.path.join(root, r.image), None) for r in results])
    for r in results:
        problems += r.problems
    checked = [(os.path.join(root, r.label), r.counts) for r in results if r.counts is not None]
    for label, counts in checked:
        problems += label_value_problems(label, held_values(counts), info.name)
    problems = missing_folder_summary(problems) + id_space_problems(checked, info.name)
    raise_on_errors(problems, 'prepare_data %s under %s' % (dataset, root),
                    'no list written; fix them and run again (the files already prepared are '
                    'kept and skipped)')
    warnings = ['%s: %s' % (p.path, p.message) for p in problems]
    write_list(list_path, [(r.image, r.label) for r in results])
    report = build_report(info, root, results, list_path, warnings, size)
    report_json, chart = report_paths(list_path, report_dir)
    write_json(report_json, report)
    if report['labels']:
        draw_class_chart(chart, info, report['class_share'], '%s %s: %d labels' % (
            dataset, os.path.basename(list_path), report['labels']))
    print('%s: %d samples listed in %s (%d files written now, %d samples already done); '
          'report %s%s' % (dataset, len(results), list_path, report['files_written'],
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
    return finish(get_dataset(args.dataset), args.data_root, results, list_path, args.report,
                  getattr(args, 'size', None))


if __name__ == '__main__':
    sys.exit(main())
