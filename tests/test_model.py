"""ResNet-38 symbols against the published parameter lists, weight files, inspector, devices."""
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from conftest import reference_params, write_model_weights, write_weight_file
from util.devices import parse_devices
from util.errors import UserError
from issegm.datasets import get_dataset
from util.model_label import (check_num_classes, checkpoint_file, checkpoint_path,
                              checkpoint_prefix, is_classifier, parse_model_label,
                              split_weights_name)
from util.symbol.resnet38 import build_symbol, inference_symbol, parameter_shapes
from util.weights import check_fit, load_for_model, load_weights

PUBLISHED = [('gta_rna-a1_cls19_s8', 'gta_rna-a1_cls19_s8'),
             ('synthia_rna-a1_cls16_s8', 'synthia_rna-a1_cls16_s8'),
             ('cityscapes_rna-a1_cls19_s8', 'gta_rna-a1_cls19_s8'),
             ('ilsvrc-cls_rna-a1_cls1000', 'ilsvrc-cls_rna-a1_cls1000')]


def run_script(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True)


@pytest.mark.parametrize('model,fixture', PUBLISHED)
def test_names_and_shapes_equal_published_lists(model, fixture):
    assert parameter_shapes(model) == reference_params(fixture)


def test_model_labels():
    p = parse_model_label('cityscapes_rna-a1_cls19_s8')
    assert p == ('cityscapes', 'rna', 'a1', 19, 8)
    assert parse_model_label('ilsvrc-cls_rna-a1_cls1000').stride == 32
    assert is_classifier(parse_model_label('ilsvrc-cls_rna-a1_cls1000'))
    assert not is_classifier(p)
    assert parse_model_label('gta_rna-tiny_cls19_s16').net_name == 'tiny'
    for bad in ('cityscapes_rna-a2_cls19_s8', 'cityscapes_rna-a1_cls19_s4', 'nonsense', ''):
        with pytest.raises(UserError):
            parse_model_label(bad)
    assert split_weights_name('models/gta_rna-a1_cls19_s8_ep-0003.params') == ('gta_rna-a1_cls19_s8', 3)
    assert split_weights_name('models/foo.params') == (None, None)


def test_checkpoint_names_as_upstream():
    # yzou2/CBST: solve_ST.py saves with mx.callback.do_checkpoint(OUTPUT/R/MODEL_ep), i.e.
    # '%s-%04d.params' % (prefix, epoch); solve_AO.py starts round R + 1 from
    # args.output + '/' + str(R) + '/' + args.model + '_ep-%04d.params' % to_epoch.
    model = 'cityscapes_rna-a1_cls19_s8'
    for folder, epoch in (('out/0', 2), ('o', 12), ('/a/b/5', 1234)):
        upstream = folder + '/' + model + '_ep-%04d.params' % epoch
        prefix = checkpoint_prefix(folder, model)
        assert checkpoint_path(prefix, epoch) == checkpoint_file(folder, model, epoch) == upstream
        assert '%s-%04d.params' % (prefix, epoch) == upstream
        assert split_weights_name(upstream) == (model, epoch)


def test_class_count_check():
    assert check_num_classes('gta_rna-a1_cls19_s8', get_dataset('cityscapes')).num_classes == 19
    with pytest.raises(UserError, match='has 19 classes but dataset synthia has 16'):
        check_num_classes('gta_rna-a1_cls19_s8', get_dataset('synthia'))
    with pytest.raises(UserError, match='has 16 classes but the target cityscapes has 19'):
        check_num_classes('x_rna-a1_cls16_s8', get_dataset('cityscapes'), 'the target cityscapes')


def test_strides_give_expected_output_sizes():
    for stride in (8, 16, 32):
        sym = build_symbol('gta_rna-tiny_cls19_s%d' % stride)
        _, out_shapes, _ = sym.infer_shape(data=(1, 3, 128, 128))
        assert out_shapes[0] == (1, 19, 128 // stride, 128 // stride)


def test_lr_and_wd_multipliers():
    attrs = build_symbol('gta_rna-tiny_cls19_s8').attr_dict()
    assert attrs['bn2a_branch2a_beta']['__lr_mult__'] == '2.0'
    assert attrs['bn2a_branch2a_beta']['__wd_mult__'] == '0.0'
    assert attrs['conv6a_bias']['__lr_mult__'] == '2.0'
    assert attrs['bn2a_branch2a_gamma']['__lr_mult__'] == '1.0'
    assert attrs['res2a_branch1_weight']['__wd_mult__'] == '1.0'
    assert attrs['bn2a_branch2a']['use_global_stats'] == 'True'


@pytest.mark.slow
def test_full_s8_forward_on_64x64_sums_to_one(gta_s8_weights):
    arg_params, aux_params = load_weights(gta_s8_weights)
    mod = mx.mod.Module(inference_symbol('gta_rna-a1_cls19_s8'), label_names=None,
                        context=mx.cpu())
    mod.bind(data_shapes=[('data', (1, 3, 64, 64))], for_training=False)
    mod.set_params(arg_params, aux_params)
    x = np.random.RandomState(0).randn(1, 3, 64, 64).astype(np.float32)
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    out = mod.get_outputs()[0].asnumpy()
    assert out.shape == (1, 19, 8, 8)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(out >= 0)


@pytest.mark.slow
def test_inspector_accepts_published_format(gta_s8_weights):
    res = run_script('issegm/inspect_params.py', '--model', 'gta_rna-a1_cls19_s8',
                     '--weights', gta_s8_weights)
    assert res.returncode == 0, res.stderr
    assert 'fits gta_rna-a1_cls19_s8' in res.stdout and len(res.stdout.strip().splitlines()) == 1


@pytest.mark.slow
def test_inspector_names_wrong_shape_missing_and_unexpected(tmp_path):
    params = reference_params('synthia_rna-a1_cls16_s8')
    params = [(k, n, (7,) if n == 'conv6a_bias' else s) for k, n, s in params
              if n != 'bn7_moving_var']
    params.append(('arg', 'extra_weight', (3,)))
    # Keep the file small: tiny shapes are enough to check that names and shapes are compared.
    small = [(k, n, s if n == 'conv6a_bias' else (2, 2)) for k, n, s in params]
    path = write_weight_file(tmp_path / 'bad.params', small)
    res = run_script('issegm/inspect_params.py', '--model', 'synthia_rna-a1_cls16_s8',
                     '--weights', path)
    assert res.returncode == 1
    assert 'wrong shape arg:conv6a_bias: model wants 512, file has 7' in res.stdout
    assert 'missing aux:bn7_moving_var' in res.stdout
    assert 'unexpected arg:extra_weight' in res.stdout
    assert 'wrong shape arg:conv1a_weight' in res.stdout
    assert 'Traceback' not in res.stderr and res.stderr.startswith('error:')


@pytest.mark.slow
def test_inspector_refuses_unreadable_file_and_bad_label(tmp_path):
    junk = tmp_path / 'junk.params'
    junk.write_bytes(b'not an ndarray file')
    res = run_script('issegm/inspect_params.py', '--model', 'gta_rna-a1_cls19_s8', '--weights', str(junk))
    assert res.returncode == 1 and 'cannot read weight file' in res.stderr and 'Traceback' not in res.stderr
    res = run_script('issegm/inspect_params.py', '--model', 'gta_rna-a1_cls19_s8',
                     '--weights', str(tmp_path / 'missing.params'))
    assert res.returncode == 1 and 'weight file not found' in res.stderr
    res = run_script('issegm/inspect_params.py', '--model', 'gta_resnet-a1', '--weights', str(junk))
    assert res.returncode == 1 and 'unknown model label' in res.stderr


def test_classifier_weights_load_into_segmentation_model_with_missing_head(tmp_path):
    path = write_model_weights(tmp_path / 'ilsvrc-cls_rna-tiny_cls1000_ep-0001.params',
                               'ilsvrc-cls_rna-tiny_cls1000')
    expected = parameter_shapes('gta_rna-tiny_cls19_s8')
    arg_params, aux_params = load_for_model(path, expected, allow_missing=True,
                                            allow_unexpected=True)
    assert 'linear1000_weight' not in arg_params and 'conv6a_weight' not in arg_params
    report = check_fit(expected, arg_params, aux_params)
    assert sorted(n for _, n in report.missing) == ['conv6a_bias', 'conv6a_weight',
                                                    'linear19_bias', 'linear19_weight']
    with pytest.raises(UserError, match='does not fit'):
        load_for_model(path, expected)


def test_devices():
    assert parse_devices('cpu') == [mx.cpu()]
    assert parse_devices('cpu:2') == [mx.cpu(0), mx.cpu(1)]
    with pytest.raises(UserError, match='--gpus cpu'):
        parse_devices('0')  # no GPU on these machines
    for bad in ('gpu', 'cpu:0', '0,x', ''):
        with pytest.raises(UserError):
            parse_devices(bad)
