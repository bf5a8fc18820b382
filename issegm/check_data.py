"""Check the images and labels of a list file before a long run spends hours on them.

Commands: the README, "Data, list files, weights and priors"; quick by default, --full
decodes every file (docs/internals.md, section 6). One line per problem, a summary line; exit
status 0 without errors (warnings allowed), 1 with any.
"""
import os
import sys
import time

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.datacheck.lists import LABEL_SAMPLE, full_check, quick_check  # noqa: E402
from issegm.datacheck.problems import count_errors, format_problem  # noqa: E402
from issegm.datasets import DATASETS, load_samples, resolve_split  # noqa: E402
from util.errors import UserError, cli_entry  # noqa: E402
from util.flags import FlagParser  # noqa: E402


def parse_args(argv):
    parser = FlagParser(description=__doc__.splitlines()[0])
    a = parser.add_argument
    a('--dataset', required=True, choices=sorted(DATASETS),
      help='whose label ids the labels hold (cityscapes16 reads Cityscapes labelIds too)')
    a('--data-root', required=True, help='dataset root (paths in the list file are relative)')
    a('--split', required=True,
      help='split name (issegm/data_list/DATASET/SPLIT.lst) or .lst path')
    a('--full', action='store_true', help='decode every image and label (slower)')
    a('--sample', type=int, default=LABEL_SAMPLE,
      help='quick check: labels whose values are read (default %(default)s)')
    a('--workers', type=int, help='--full: processes (default: every core)')
    a('--no-progress', action='store_true', help='--full: no progress bar')
    args = parser.parse_args(argv)
    if args.sample < 1 or (args.workers is not None and args.workers < 1):
        raise UserError('--sample and --workers must be at least 1')
    return args


@cli_entry
def main(argv=None):
    args = parse_args(argv)
    list_path = resolve_split(args.dataset, args.split)
    samples = load_samples(args.data_root, args.split, args.dataset, require_labels=False)
    t0 = time.time()
    if args.full:
        problems = full_check(samples, args.dataset, workers=args.workers,
                              progress=not args.no_progress)
        how = 'full check (every file decoded)'
    else:
        problems = quick_check(samples, args.dataset, sample=args.sample)
        how = 'quick check (headers of every file, values of up to %d labels)' % args.sample
    for problem in problems:
        print(format_problem(problem))
    errors = count_errors(problems)
    print('%s: %d samples, %s in %.1f s: %d error(s), %d warning(s)'
          % (list_path, len(samples), how, time.time() - t0, errors, len(problems) - errors))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
