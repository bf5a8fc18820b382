"""The datasets' layouts as downloaded: the (image, label) pairs of Cityscapes, GTA-5 and
SYNTHIA-RAND-CITYSCAPES under their root, and the list file prepare_data.py writes them to."""
import glob
import os

from issegm.datasets import DATA_LIST_DIR
from util.errors import UserError

CITYSCAPES_SPLITS = ('train', 'val', 'test')

# Layouts with one folder of images and one of labels of the same file names.
FLAT_LAYOUTS = {'gta': ('images', 'labels'), 'synthia': ('RGB', os.path.join('GT', 'labels'))}

LAYOUTS = ('cityscapes',) + tuple(FLAT_LAYOUTS)


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
