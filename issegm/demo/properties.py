"""The demo task's measured properties (docs/demo.md, "The class balance"): the class shares of
both domains beside Cityscapes' and GTA-5's, and what the source-only model learnt: its IoU on
held-out source images and on the target, its mean confidence per class in both. Counting is
plain NumPy (image_counts, add_counts, split_summary); measure_split reads predict.py's files.
"""
import json
import os

import numpy as np
from PIL import Image

from issegm.datasets import sample_name
from util.metrics import confusion_matrix, scores

__all__ = ['REFERENCE_SHARES', 'LARGE', 'RARE', 'image_counts', 'add_counts', 'split_summary',
           'group_confidence', 'properties_table', 'measure_split', 'write_properties']

# Share of all pixels per class (%) in the real datasets, as counted by the public survey
# m-birke/automotive-segmentation-datasets (cityscapes.md: Cityscapes' fine annotations;
# playing_for_data.md: GTA-5), not by this project. The 19 classes, in trainId order.
REFERENCE_SHARES = {
    'Cityscapes': (32.7, 5.3, 20.1, 0.59, 0.77, 1.1243, 0.1823, 0.5015, 14.3, 0.98, 3.5, 1.1,
                   0.1295, 6.0, 0.2406, 0.2271, 0.1907, 0.0848, 0.4030),
    'GTA-5': (32.1046, 8.2764, 16.9, 1.8435, 0.6331, 1.06, 0.1342, 0.0807, 7.6, 2.2, 13.5, 0.362,
              0.031, 2.5154, 1.129, 0.3680, 0.0648, 0.0315, 0.0054),
}
# The classes the README compares: large and confident against rare and thin.
LARGE = ('road', 'building', 'vegetation', 'sky')
RARE = ('pole', 'traffic light', 'traffic sign', 'person', 'rider', 'motorcycle', 'bicycle')


def image_counts(gt, num_classes, pred=None, confidence=None):
    """One image's counts: {'pixels': all pixels, 'class_pixels': (C,) ground-truth pixels per
    class, and with a prediction 'confusion': (C, C), 'confidence': (C,) sums of the top
    probability per ground-truth class}. `gt`, `pred`: train-id maps (255 = void);
    `confidence`: the top probability, in [0, 1], of the same size."""
    gt = np.asarray(gt)
    valid = gt < num_classes
    out = {'pixels': int(gt.size),
           'class_pixels': np.bincount(gt[valid].ravel(), minlength=num_classes)[:num_classes]}
    if pred is not None:
        out['confusion'] = confusion_matrix(gt, np.asarray(pred), num_classes)
        out['confidence'] = np.bincount(gt[valid].ravel(), minlength=num_classes,
                                        weights=np.asarray(confidence, np.float64)[valid])
    return out


def add_counts(total, counts):
    """The sum of two image_counts results (`total` None: a copy of `counts`)."""
    if total is None:
        return {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in counts.items()}
    return {k: total[k] + v for k, v in counts.items()}


def split_summary(total, class_names):
    """{'share': {class: % of all pixels}, and with predictions 'iou': {class: fraction},
    'miou', 'confidence': {class: mean top probability of its pixels, None without pixels}}."""
    names = list(class_names)
    out = {'share': {n: 100.0 * float(v) / total['pixels']
                     for n, v in zip(names, total['class_pixels'])}}
    if 'confusion' in total:
        s = scores(total['confusion'])
        out['iou'] = {n: float(v) for n, v in zip(names, s['iou'])}
        out['miou'] = s['miou']
        out['confidence'] = {n: (float(c) / p if p else None) for n, c, p in
                             zip(names, total['confidence'], total['class_pixels'])}
    return out


def group_confidence(summary, classes):
    """Mean over `classes` of a split_summary's per-class confidence (classes without pixels
    left out), or None."""
    values = [summary['confidence'][c] for c in classes if summary['confidence'][c] is not None]
    return float(np.mean(values)) if values else None


def _cell(value, form):
    return '-' if value is None else form % value


def properties_table(source, target, class_names):
    """Markdown: per class the pixel shares (%) of Cityscapes, GTA-5 and the demo's two
    domains, the source-only model's IoU (%) and mean confidence on source val and target val;
    `source`, `target`: split_summary of each domain's held-out images with predictions."""
    lines = ['| class | Cityscapes share | GTA-5 share | demo source share | demo target share '
             '| IoU source | IoU target | confidence source | confidence target |',
             '|---|' + '---:|' * 8]
    for i, name in enumerate(class_names):
        cells = [_cell(REFERENCE_SHARES['Cityscapes'][i], '%.2f'),
                 _cell(REFERENCE_SHARES['GTA-5'][i], '%.2f'),
                 '%.2f' % source['share'][name], '%.2f' % target['share'][name],
                 '%.1f' % (100 * source['iou'][name]), '%.1f' % (100 * target['iou'][name]),
                 _cell(source['confidence'][name], '%.3f'),
                 _cell(target['confidence'][name], '%.3f')]
        lines.append('| %s | %s |' % (name, ' | '.join(cells)))
    lines.append('| mIoU | | | | | %.1f | %.1f | | |' % (100 * source['miou'],
                                                           100 * target['miou']))
    return '\n'.join(lines) + '\n'


def _read_png(path):
    with Image.open(path) as img:
        return np.asarray(img)


def measure_split(samples, predicted, info):
    """split_summary of the (image, label) `samples` with predict.py's trainIds/ and
    confidence/ PNGs in the folder `predicted`."""
    total, num_classes = None, len(info.class_names)
    for image, label in samples:
        gt = info.label_to_train[_read_png(label)]
        name = sample_name(image)
        pred = _read_png(os.path.join(predicted, 'trainIds', name + '.png'))
        confidence = _read_png(os.path.join(predicted, 'confidence', name + '.png')) / 255.0
        total = add_counts(total, image_counts(gt, num_classes, pred, confidence))
    return split_summary(total, info.class_names)


def write_properties(output, shares, source, target, class_names):
    """OUTPUT/properties.json and OUTPUT/properties.md; `shares`: {'source', 'target'}
    split_summary of the training labels (class shares), `source`/`target`: measure_split of
    the held-out images. Returns the markdown."""
    source = dict(source, share=shares['source']['share'])
    target = dict(target, share=shares['target']['share'])
    large, rare = group_confidence(target, LARGE), group_confidence(target, RARE)
    text = ('# Demo: the task\'s class balance and the source-only model\n\n'
            'Shares: %% of all pixels of the source train labels and of the target train and '
            'val labels (Cityscapes and GTA-5: see docs/demo.md); IoU (%%) and mean confidence '
            '(top softmax probability, averaged over the pixels of each ground-truth class) of '
            'the source-only model on held-out source images and on the target val split.\n\n'
            '%s\nMean target confidence of %s: %s; of %s: %s.\n'
            % (properties_table(source, target, class_names), ', '.join(LARGE),
               _cell(large, '%.3f'), ', '.join(RARE), _cell(rare, '%.3f')))
    with open(os.path.join(output, 'properties.md'), 'w') as f:
        f.write(text)
    with open(os.path.join(output, 'properties.json'), 'w') as f:
        json.dump({'source': source, 'target': target, 'target_confidence_large': large,
                   'target_confidence_rare': rare}, f, indent=1)
    return text
