"""Write list files (`image<TAB>label`, relative to the data root) from a dataset folder.

Command: see the README, "Data, list files, weights and priors". By default the list goes to
issegm/data_list/DATASET/SPLIT.lst, where split names resolve.
"""
import glob
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.datasets import DATA_LIST_DIR, write_list  # noqa: E402
from util.errors import UserError, cli_entry, require_dir  # noqa: E402
from util.flags import FlagParser  # noqa: E402


def cityscapes_pairs(root, split):
    images = sorted(glob.glob(os.path.join(root, 'leftImg8bit', split, '*', '*_leftImg8bit.png')))
    for image in images:
        rel = os.path.relpath(image, root)
        city = os.path.basename(os.path.dirname(image))
        stem = os.path.basename(image)[:-len('_leftImg8bit.png')]
        yield rel, os.path.join('gtFine', split, city, stem + '_gtFine_labelIds.png')


def flat_pairs(root, image_dir, label_dir):
    for image in sorted(glob.glob(os.path.join(root, image_dir, '*.png'))):
        yield os.path.relpath(image, root), os.path.join(label_dir, os.path.basename(image))


# Layouts with one folder of images and one of labels of the same file names.
FLAT_LAYOUTS = {'gta': ('images', 'labels'), 'synthia': ('RGB', os.path.join('GT', 'labels'))}
LAYOUTS = ('cityscapes',) + tuple(FLAT_LAYOUTS)


def list_pairs(layout, root, split):
    """[(image, label)] relative to root for a dataset layout (docs/algorithm.md section 6); labels must exist."""
    if layout == 'cityscapes':
        pairs, where = list(cityscapes_pairs(root, split)), os.path.join(root, 'leftImg8bit', split)
    else:
        image_dir, label_dir = FLAT_LAYOUTS[layout]
        pairs, where = list(flat_pairs(root, image_dir, label_dir)), os.path.join(root, image_dir)
    if not pairs:
        raise UserError('no images found under %s' % where)
    missing = [label for _, label in pairs if not os.path.isfile(os.path.join(root, label))]
    if missing:
        raise UserError('%d image(s) have no label file, e.g. %s'
                        % (len(missing), os.path.join(root, missing[0])))
    return pairs


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
    output = args.output or os.path.join(DATA_LIST_DIR, args.layout, split + '.lst')
    write_list(output, pairs)
    print('wrote %d samples to %s' % (len(pairs), output))
    return 0


if __name__ == '__main__':
    sys.exit(main())
