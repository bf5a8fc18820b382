"""issegm/train_src.py: a few iterations of rna-tiny on a tiny generated GTA layout."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_model_weights
from issegm import train_src
from util.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'issegm', 'train_src.py')
MODEL = 'gta_rna-tiny_cls19_s8'
CLASSIFIER = 'ilsvrc-cls_rna-tiny_cls1000'


@pytest.fixture(scope='module')
def gta(tmp_path_factory):
    from issegm.make_demo_data import generate
    root = tmp_path_factory.mktemp('train_src_data')
    out = generate(str(root), seed=1, num_source=4, num_target_train=0, num_target_val=0,
                   source_size=(48, 96))
    return out['gta_root'], out['gta_train_list']


@pytest.fixture(scope='module')
def classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp('train_src_weights') / ('%s_ep-0001.params' % CLASSIFIER)
    return write_model_weights(path, CLASSIFIER, seed=5)


def _argv(gta, output, weights, *extra):
    root, lst = gta
    return ['--gpus', 'cpu', '--split', lst, '--data-root', root, '--output', str(output),
            '--model', MODEL, '--batch-images', '2', '--crop-size', '64',
            '--scale-rate-range', '0.7,1.3', '--weights', str(weights), '--base-lr', '0.001',
            '--prefetch-threads', '1', '--no-progress'] + \
        [str(e) for e in extra]


@pytest.mark.slow
def test_from_classifier_then_continue(gta, classifier, tmp_path):
    from util.symbol.resnet38 import parameter_shapes
    from util.weights import check_fit, load_weights
    out = tmp_path / 'run'
    assert train_src.main(_argv(gta, out, classifier, '--to-epoch', 1)) == 0
    first = out / ('%s_ep-0001.params' % MODEL)
    assert first.is_file()
    arg, aux = load_weights(str(first))
    report = check_fit(parameter_shapes(MODEL), arg, aux)
    assert not (report.missing or report.unexpected or report.wrong_shape)
    start_arg, start_aux = load_weights(classifier)
    # the trunk came from the classifier (BN statistics are frozen, so they stay equal)
    np.testing.assert_array_equal(aux['bn7_moving_mean'].asnumpy(),
                                  start_aux['bn7_moving_mean'].asnumpy())
    assert 'linear1000_weight' not in arg and 'linear19_weight' in arg
    with open(out / 'train_src.log') as f:
        logged = f.read()
    assert 'initialising' in logged and 'linear19_weight' in logged
    # crops at the default origin size (1914 for gta) hold labelled pixels: a real loss
    nll = [float(line.split('NLL ')[1].split()[0]) for line in logged.splitlines()
           if 'epoch 0: NLL' in line]
    assert nll and nll[0] > 0.1

    # the inspector accepts the checkpoint
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'issegm', 'inspect_params.py'),
                           '--model', MODEL, '--weights', str(first)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    # continuing from its own checkpoint infers from_epoch 1 and writes epoch 2 only
    assert train_src.main(_argv(gta, out, first, '--stop-epoch', 2)) == 0
    second = out / ('%s_ep-0002.params' % MODEL)
    assert second.is_file()
    with open(out / 'train_src.log') as f:
        logged = f.read()
    assert 'epochs 1..2' in logged
    arg2, _ = load_weights(str(second))
    assert not np.array_equal(arg2['linear19_weight'].asnumpy(), arg['linear19_weight'].asnumpy())


def test_resolve_start_rules():
    model, _, epoch, continuing = train_src.resolve_start(
        None, 'out/gta_rna-tiny_cls19_s8_ep-0004.params', None)
    assert (model, epoch, continuing) == (MODEL, 4, True)
    classifier = 'm/%s_ep-0001.params' % CLASSIFIER
    assert train_src.resolve_start(MODEL, classifier, None)[2:] == (0, False)
    assert train_src.resolve_start(MODEL, 'x/%s_ep-0003.params' % MODEL, 1)[2:] == (1, True)
    with pytest.raises(UserError, match='--model is required'):
        train_src.resolve_start(None, 'm/%s_ep-0001.params' % CLASSIFIER, None)
    with pytest.raises(UserError, match='ImageNet classifier'):
        train_src.resolve_start(CLASSIFIER, 'm/%s_ep-0001.params' % CLASSIFIER, None)


@pytest.mark.slow
def test_classifier_start_needs_epoch_zero(gta, classifier, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_src.main(_argv(gta, tmp_path / 'x', classifier, '--from-epoch', 1,
                             '--to-epoch', 2))
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ') and 'missing arg:conv6a' in err[0]
    assert 'only when starting at epoch 0' in err[0]


@pytest.mark.slow
def test_bad_inputs_give_one_error_line(gta, classifier, tmp_path):
    root, lst = gta
    cases = {
        "unknown --kvstore 'nonsense'": _argv(gta, tmp_path / 'a', classifier,
                                             '--kvstore', 'nonsense'),
        'data root not found': _argv((str(tmp_path / 'nowhere'), lst), tmp_path / 'b',
                                     classifier),
        'list file not found': _argv((root, str(tmp_path / 'none.lst')), tmp_path / 'c',
                                     classifier),
        'weight file not found': _argv(gta, tmp_path / 'd', tmp_path / 'missing.params'),
        'nothing to train': _argv(gta, tmp_path / 'e', classifier, '--to-epoch', 0),
        'has 19 classes but dataset synthia has 16': _argv(gta, tmp_path / 'f', classifier,
                                                           '--dataset', 'synthia'),
    }
    procs = {k: subprocess.Popen([sys.executable, SCRIPT] + v, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
             for k, v in cases.items()}
    for expected, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode != 0, expected
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: '), (expected, err)
        assert expected in lines[0], (expected, lines[0])


@pytest.mark.slow
def test_schedule_epochs_and_metric_as_upstream(gta, classifier, tmp_path, monkeypatch):
    """fit gets epochs from .. --stop-epoch, a schedule over --to-epoch with len(samples) //
    batch-images batches per epoch, train_src's NLL epsilon 1e-6 and --backward-do-mirror."""
    from issegm import training
    from test_training_schedule import upstream_lrs
    calls = []

    def fake_fit(symbol, train_iter, contexts, params, settings, kvstore=None):
        calls.append((settings.begin_epoch, settings.end_epoch, settings.lr, settings.nll_eps,
                      settings.mirror))
        return []
    monkeypatch.setattr(training, 'fit', fake_fit)
    monkeypatch.setenv('MXNET_BACKWARD_DO_MIRROR', '0')  # restored after the test
    argv = _argv(gta, tmp_path / 'o', classifier, '--lr-type', 'linear',
                 '--stop-epoch', 2, '--to-epoch', 3, '--backward-do-mirror')
    assert train_src.main(argv) == 0
    (begin, end, schedule, eps, mirror), = calls
    assert (begin, end, eps, mirror) == (0, 2, training.NLL_EPS_SOURCE, True)
    from issegm.datasets import read_list
    per_epoch = len(read_list(gta[1])) // 2  # the samples // --batch-images
    assert [schedule(n) for n in range(1, 10)] == upstream_lrs('linear', 0.001, '', 0,
                                                               3 * per_epoch, 9)


@pytest.mark.slow
def test_phase_val_evaluates_the_weights_on_the_split(gta, tmp_path):
    """--phase val runs issegm/evaluate.py on --split with the test flags translated."""
    import json
    from conftest import write_model_weights
    from issegm import evaluate
    root, lst = gta
    weights = write_model_weights(tmp_path / ('%s_ep-0003.params' % MODEL), MODEL, seed=7)
    common = ['--gpus', 'cpu', '--split', lst, '--data-root', root, '--weights', weights,
              '--test-scales', '96', '--test-flipping', '--no-progress']
    assert train_src.main(common + ['--phase', 'val', '--output', str(tmp_path / 'a'),
                                    '--batch-images', '4', '--lr-type', 'poly']) == 0
    assert evaluate.main(common + ['--output', str(tmp_path / 'b'), '--dataset', 'gta']) == 0
    a = json.loads((tmp_path / 'a' / 'metrics.json').read_text())
    b = json.loads((tmp_path / 'b' / 'metrics.json').read_text())
    assert a == b and 0 <= a['miou'] <= 1
    assert sorted(os.listdir(tmp_path / 'a' / 'labelId')) == \
        sorted(os.listdir(tmp_path / 'b' / 'labelId'))
    args = train_src.parse_args(common + ['--phase', 'val', '--output', 'o', '--save-predictions',
                                          '--no-save-results', '--no-cudnn', '--debug',
                                          '--test-steps', '2', '--cache-images', '1',
                                          '--skip-data-check'])
    translated = evaluate.parse_args(train_src.evaluate_argv(args))
    for name in ('test_flipping', 'save_predictions', 'no_save_results', 'no_cudnn', 'debug',
                 'no_progress', 'skip_data_check'):
        assert getattr(translated, name) is True, name
    assert (translated.split, translated.test_scales, translated.test_steps) == (lst, '96', 2)
    assert evaluate.dataset_of(translated) == 'gta' and translated.weights == weights
