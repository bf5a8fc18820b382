"""Test helper: per-class IoU from the official Cityscapes pixel-level evaluator.

Calls ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling.evaluateImgLists``
programmatically with an arguments object of our own, so none of its CLI or
environment-variable defaults apply: no CITYSCAPES_DATASET / CITYSCAPES_RESULTS
lookup, no JSON export, no instance-level (nIoU) files needed, no printing.
"""
import contextlib
import io
import os

_ENV_VARS = ('CITYSCAPES_DATASET', 'CITYSCAPES_RESULTS', 'CITYSCAPES_EXPORT_DIR')


def _import_evaluator():
    # The module reads CITYSCAPES_* at import time (and raises if
    # CITYSCAPES_EXPORT_DIR is not a directory): import it with them unset.
    saved = {k: os.environ.pop(k) for k in _ENV_VARS if k in os.environ}
    try:
        from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev
    finally:
        os.environ.update(saved)
    return ev


def official_class_iou(pred_label_id_pngs, gt_label_id_pngs):
    """{class name: IoU} from the official evaluator for paired label-id PNG lists.

    Both lists hold single-channel PNGs of Cityscapes *label ids* (not train
    ids), paired by position.  Returns the 19 evaluated classes; a class with
    neither ground truth nor predictions is NaN (as in the official script).
    Raises RuntimeError where the official script would call sys.exit.
    """
    ev = _import_evaluator()
    pred = [os.fspath(p) for p in pred_label_id_pngs]
    gt = [os.fspath(p) for p in gt_label_id_pngs]

    args = ev.CArgs()
    args.cityscapesPath = None
    args.exportFile = None
    args.groundTruthSearch = None
    args.evalInstLevelScore = False   # would need *_instanceIds.png files
    args.evalPixelAccuracy = False
    args.evalLabels = []
    args.printRow = 5
    args.normalized = True
    args.colorized = False
    args.bold = ''
    args.nocol = ''
    args.JSONOutput = False           # would write resultPixelLevelSemanticLabeling.json
    args.quiet = True
    args.avgClassSize = dict(ev.args.avgClassSize)
    args.predictionPath = None
    args.predictionWalk = None

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            result = ev.evaluateImgLists(pred, gt, args)
    except SystemExit:
        raise RuntimeError('official Cityscapes evaluator failed: %s' % out.getvalue().strip())

    return {ev.id2label[l].name: result['classScores'][ev.id2label[l].name]
            for l in args.evalLabels if not ev.id2label[l].ignoreInEval}
