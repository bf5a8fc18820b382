"""Write list files (`image<TAB>label`, relative to the data root) from a dataset folder.

A wrapper of issegm/prepare_data.py's listing, kept for its command line; prepare_data.py
also converts, checks and reports (see the README, "Data, list files, weights and priors").
By default the list goes to issegm/data_list/DATASET/SPLIT.lst, where split names resolve.
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.datasets import write_list  # noqa: E402
from issegm.preparation.layouts import LAYOUTS, default_list, list_pairs  # noqa: E402
from util.errors import cli_entry, require_dir  # noqa: E402
from util.flags import FlagParser  # noqa: E402


@cli_entry
def main(argv=None):
    parser = FlagParser(description='Write a list file from a dataset folder.')
    parser.add_argument('--layout', required=True, choices=LAYOUTS)
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--split', default=None, help='cityscapes: train/val/test (default train)')
    parser.add_argument('--output', help='list file (default issegm/data_list/LAYOUT/SPLIT.lst)')
    args = parser.parse_args(argv)
    require_dir(args.data_root, 'data root')
    split = args.split or 'train'
    pairs = list_pairs(args.layout, args.data_root, split)
    output = args.output or default_list(args.layout, split)
    write_list(output, pairs)
    print('wrote %d samples to %s' % (len(pairs), output))
    return 0


if __name__ == '__main__':
    sys.exit(main())
