"""Dataset facts (docs/algorithm.md section 6; yzou2/CBST solve_ST.py get_dataset_specs_tgt):
label maps, class names, palettes, max shapes, list files, loading.

`cityscapes` and `gta` use the official Cityscapes trainIds from `cityscapesscripts`;
`cityscapes16` (Cityscapes images for SYNTHIA models) and `synthia` use the 16-class tables.
In self-training, `target_dataset` picks the target's tables from the source/target pair.
"""
import collections
import functools
import os

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import id2label, labels as CITYSCAPES_LABELS, trainId2label
from PIL import Image

from util.errors import UserError, file_error, require_file
from util.files import write_atomically

IGNORE = 255
UNLABELED_ID = 0  # label id that maps to ignore; unselected pseudo-label pixels are stored as 0

DATA_LIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data_list')

DatasetInfo = collections.namedtuple(
    'DatasetInfo', 'name class_names label_to_train train_to_label palette max_shape list_dataset')

# Cityscapes label id -> 16-class train id (yzou2/CBST data/cityscapesscripts/helpers/
# labels_cityscapes_synthia.py).
CITYSCAPES16_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 23: 9, 24: 10,
                    25: 11, 26: 12, 28: 13, 32: 14, 33: 15}
# SYNTHIA class id -> 16-class train id; void, parking-slot, road-work, terrain, truck, train and
# lanemarking are ignored (yzou2/CBST data/cityscapesscripts/helpers/labels_synthia.py).
SYNTHIA_IDS = {1: 9, 2: 2, 3: 0, 4: 1, 5: 4, 6: 8, 7: 5, 8: 12, 9: 7, 10: 10, 11: 15, 12: 14,
               15: 6, 17: 11, 19: 13, 21: 3}

MAX_SHAPES = {'cityscapes': (1024, 2048), 'cityscapes16': (1024, 2048), 'gta': (1052, 1914),
              'synthia': (760, 1280)}
# QUIRK kept: the self-training iterator sizes GTA-5 source crops against 1024x2048, not
# GTA-5's 1052x1914 (yzou2/CBST issegm/solve_ST.py, get_dataset_specs_tgt, max_shape_src).
SELF_TRAINING_MAX_SHAPES = dict(MAX_SHAPES, gta=(1024, 2048))


def _lookup(mapping):
    table = np.full(256, IGNORE, np.uint8)
    for src, dst in mapping.items():
        table[src] = dst
    return table


def _inverse(label_to_train):
    """train id -> the smallest label id mapping to it; ignore -> the unlabeled id 0. QUIRK kept:
    unselected pseudo-label pixels are so stored as label id 0 (yzou2/CBST solve_ST.py,
    _val_impl), not 255."""
    table = np.full(256, UNLABELED_ID, np.uint8)
    for label_id in range(255, -1, -1):
        train_id = label_to_train[label_id]
        if train_id != IGNORE:
            table[train_id] = label_id
    return table


def _cityscapes_palette():
    palette = np.zeros((256, 3), np.uint8)
    for lab in CITYSCAPES_LABELS:
        if lab.id >= 0:
            palette[lab.id] = lab.color
    return palette


def _build():
    official = {lab.id: lab.trainId for lab in CITYSCAPES_LABELS
                if lab.id >= 0 and 0 <= lab.trainId < IGNORE}
    names19 = tuple(trainId2label[k].name for k in range(19))
    cs_palette = _cityscapes_palette()
    cs16 = _lookup(CITYSCAPES16_IDS)
    names16 = tuple(id2label[label_id].name for label_id, _ in
                    sorted(CITYSCAPES16_IDS.items(), key=lambda kv: kv[1]))
    synthia = _lookup(SYNTHIA_IDS)
    synthia_palette = np.zeros((256, 3), np.uint8)
    inverse16 = _inverse(cs16)
    for synthia_id, train_id in SYNTHIA_IDS.items():  # show SYNTHIA ids in Cityscapes colours
        synthia_palette[synthia_id] = cs_palette[inverse16[train_id]]
    infos = [
        DatasetInfo('cityscapes', names19, _lookup(official), _inverse(_lookup(official)),
                    cs_palette, MAX_SHAPES['cityscapes'], 'cityscapes'),
        DatasetInfo('gta', names19, _lookup(official), _inverse(_lookup(official)), cs_palette,
                    MAX_SHAPES['gta'], 'gta'),
        DatasetInfo('cityscapes16', names16, cs16, inverse16, cs_palette,
                    MAX_SHAPES['cityscapes16'], 'cityscapes'),
        DatasetInfo('synthia', names16, synthia, _inverse(synthia), synthia_palette,
                    MAX_SHAPES['synthia'], 'synthia'),
    ]
    return {info.name: info for info in infos}


DATASETS = _build()


def get_dataset(name):
    """Facts of a dataset by name; an unknown name is a UserError listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError('unknown dataset %r (known: %s)' % (name, ', '.join(sorted(DATASETS))))


def target_dataset(source, target):
    """The dataset whose tables a self-training target uses: `cityscapes` under a `synthia`
    source is the 16-class `cityscapes16`, as upstream's get_dataset_specs_tgt chose
    labels_cityscapes_synthia for that pair (yzou2/CBST issegm/solve_ST.py); anything else,
    `cityscapes16` included, stays as given. QUIRK kept: the pair's name does not say 16
    classes."""
    if source == 'synthia' and target == 'cityscapes':
        return 'cityscapes16'
    return target


def resolve_split(dataset, split):
    """A split name -> `issegm/data_list/DATASET/SPLIT.lst`; a path to a `.lst` file stays."""
    if split is None:
        raise UserError('no split given for dataset %s' % dataset)
    if split.endswith('.lst') or os.sep in split or os.path.lexists(split):
        path = split
    else:
        path = os.path.join(DATA_LIST_DIR, get_dataset(dataset).list_dataset, split + '.lst')
    if not os.path.isfile(path):
        error = file_error(path, 'list file')
        raise UserError('%s (split %r of dataset %s)' % (error, split, dataset))
    return path


IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.tif', '.tiff')


def _space_separated_pair(text):
    """True for a line like `images/1.png labels/1.png`: two image paths separated by spaces
    where the format wants a TAB (a path that merely contains spaces does not look like it)."""
    fields = text.split()
    return len(fields) == 2 and all(f.lower().endswith(IMAGE_EXTENSIONS) for f in fields)


def read_list(path):
    """Lines `image<TAB>label` (label optional) -> [(image, label or None)], paths as written.

    Accepted: CRLF line ends, blank lines (a trailing one too), a UTF-8 byte-order mark, spaces
    inside paths. A line of two image paths separated by spaces instead of a TAB is an error
    that says so."""
    require_file(path, 'list file')
    samples = []
    with open(path, encoding='utf-8-sig') as f:  # text mode: \r\n reads as \n
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip('\r\n').split('\t')
            if not fields[0].strip():
                continue
            if len(fields) > 2:
                raise UserError('%s line %d: expected image<TAB>label, got %d fields'
                                % (path, lineno, len(fields)))
            if len(fields) == 1 and _space_separated_pair(fields[0]):
                raise UserError('%s line %d: image and label are separated by spaces; the list '
                                'format is image<TAB>label (one TAB character)' % (path, lineno))
            label = fields[1].strip() if len(fields) == 2 else ''
            samples.append((fields[0].strip(), label or None))
    if not samples:
        raise UserError('list file %s is empty' % path)
    return samples


def write_list(path, samples):
    """Write [(image, label)] as a list file (atomically, so a reader never sees half of it)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        for image, label in samples:
            f.write(image if label is None else '%s\t%s' % (image, label))
            f.write('\n')
    os.replace(tmp, path)


def load_samples(data_root, split_or_list, dataset, require_labels=True):
    """Resolve a split and return absolute [(image, label)] paths under `data_root`."""
    if not data_root or not os.path.isdir(data_root):
        raise UserError('data root not found: %s' % data_root)
    path = resolve_split(dataset, split_or_list)
    samples = []
    for image, label in read_list(path):
        if label is None and require_labels:
            raise UserError('list file %s has no label for %s' % (path, image))
        samples.append((os.path.join(data_root, image),
                        None if label is None else os.path.join(data_root, label)))
    return samples


def sample_name(image_path):
    """Output file stem of a sample: the image file name without its extension."""
    return os.path.splitext(os.path.basename(image_path))[0]


def read_image(path):
    """RGB uint8 (H, W, 3); a missing or corrupt file is a UserError naming it."""
    require_file(path, 'image')
    try:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error as e:  # e.g. a header over OpenCV's size limit (CV_IO_MAX_IMAGE_PIXELS)
        raise UserError('cannot decode image %s: %s' % (path, str(e).strip().splitlines()[-1]))
    if bgr is None:
        raise UserError('cannot decode image %s (corrupt or not an image)' % path)
    return bgr[:, :, ::-1]


def read_label(path):
    """Label ids, uint8 (H, W), from a single-channel or palette PNG (an 8-bit grayscale PNG, as
    Cityscapes' and phase val's label ids are, decoded by OpenCV: the same pixels, 2-3x faster
    than Pillow)."""
    require_file(path, 'label')
    label = _read_gray8_png(path)
    if label is not None:
        return label
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ('L', 'P', 'I', 'I;16'):
                raise UserError('label %s is a %s image; expected one channel of label ids'
                                % (path, img.mode))
            label = np.asarray(img)
    except UserError:
        raise
    except Exception:
        raise UserError('cannot decode label %s (corrupt or not an image)' % path)
    if label.dtype != np.uint8:
        if label.max() > 255:
            raise UserError('label %s holds ids above 255' % path)
        label = label.astype(np.uint8)
    return label


# PNG signature, then the IHDR chunk: length 13, 'IHDR', width, height, bit depth, colour type.
_PNG_HEAD = b'\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR'


def _read_gray8_png(path):
    """The pixels of an 8-bit grayscale PNG (bit depth 8, colour type 0) by OpenCV; None for any
    other file (read_label's Pillow path then reads it or says what is wrong)."""
    with open(path, 'rb') as f:
        head = f.read(26)
    if len(head) < 26 or head[:16] != _PNG_HEAD or head[24:26] != b'\x08\x00':
        return None
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return label if label is not None and label.ndim == 2 and label.dtype == np.uint8 else None


def read_sample(image_path, label_path):
    """Image and label ids of one sample, checked to be the same size."""
    image = read_image(image_path)
    if label_path is None:
        return image, None
    label = read_label(label_path)
    if label.shape != image.shape[:2]:
        raise UserError('image %s is %dx%d but its label %s is %dx%d'
                        % ((image_path,) + image.shape[:2] + (label_path,) + label.shape))
    return image, label


def write_png(path, array, palette=None):
    """Write a uint8 array as PNG (a palette image when a (256, 3) palette is given), atomically
    (util.files.write_atomically: a PNG that exists is whole)."""
    img = Image.fromarray(np.ascontiguousarray(array))
    if palette is not None:  # an L image becomes P, keeping the ids as palette indices
        img.putpalette(np.asarray(palette, np.uint8).ravel().tolist())
    # compress_level 1 is fast: phase val writes several PNGs per image
    write_atomically(path, functools.partial(img.save, format='PNG', compress_level=1))
