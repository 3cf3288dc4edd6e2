"""Users' whole Keras model files -> backbone graphs (graphs/keras_model.py), SqueezeNet weights.

The real Teachable Machine export (Keras 2.4 .h5, nested Sequential around
MobileNetV2 0.35) is compared with Keras 3's own MobileNetV2 given the same
weights (read here with h5py, not through tfgraft); a Keras 3 .keras file the
test writes is compared with its own model.predict; SqueezeNet with a Keras
model the test builds from keras-squeezenet's layout. All on real photos.
"""
import json
import os
import warnings

import h5py
import keras
import numpy as np
import pytest

from conftest import need_asset
from test_keras_convert import assert_close, photos, run_backbone, tfgraft_inputs  # noqa: F401
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import load_frozen_backbone, read_card_file
from tfgraft.graphs.keras_model import convert_keras_model
from tfgraft.graphs.unfreeze import first_tuned_at, keras_numbered, list_layers
from tfgraft.tools.cli import main

TEACHABLE = ('keras_mobilenet_v2_0.35_224', 'keras_model.h5')
SQUEEZENET = ('keras_squeezenet_v1.1', 'squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5')


def _h5_weights_by_layer(path):
    """{layer: {weight: array}} straight from the file's groups (test's own reading)."""
    found = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            layer, weight = name.split('/')[-2:]
            found.setdefault(layer, {})[weight.split(':')[0]] = item[()]
    with h5py.File(path, 'r') as handle:
        handle['model_weights'].visititems(visit)
    return found


@pytest.fixture(scope='module')
def teachable(tmp_path_factory, photos):  # noqa: F811
    path = need_asset(*TEACHABLE)
    pb = str(tmp_path_factory.mktemp('teachable') / 'teachable.pb')
    card, cut = convert_keras_model(path, pb)
    # Keras 3's MobileNetV2 0.35/224, the file's weights set by layer name.
    reference = keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None,
                                               input_shape=(224, 224, 3), pooling='avg')
    stored = _h5_weights_by_layer(path)
    for layer in reference.layers:
        if layer.weights:
            arrays = stored[layer.name]
            layer.set_weights([arrays['depthwise_kernel' if 'depthwise_kernel' in arrays and v.name == 'kernel'
                                      else v.name] for v in layer.weights])
    batch = tfgraft_inputs(photos, card)
    return dict(pb=pb, card=card, cut=cut, batch=batch,
                expected=reference.predict(batch, verbose=0), reference=reference)


def test_teachable_machine_export_gives_mobilenet_v2_vectors(teachable):
    card = teachable['card']
    assert teachable['cut'] == 'global_average_pooling2d_GlobalAveragePooling2D3'
    assert card.input_size == (224, 224) and card.bottleneck_size == 1280
    assert card.input_range == (-1.0, 1.0) and card.channel_order == 'RGB'
    backbone = load_frozen_backbone(teachable['pb'])
    assert backbone.card == read_card_file(teachable['pb']) == card
    actual = run_backbone(backbone, teachable['batch'])
    assert actual.shape == (4, 1280)
    assert_close(actual, teachable['expected'])


def test_teachable_machine_layers_are_numbered_as_keras_does(teachable):
    card = teachable['card']
    with h5py.File(need_asset(*TEACHABLE), 'r') as handle:
        config = json.loads(handle.attrs['model_config'])
    application = config['config']['layers'][1]['config']['layers'][1]['config']['layers']
    assert list(card.keras_layers) == [layer['config']['name'] for layer in application]
    backbone = load_frozen_backbone(teachable['pb'])
    layers = list_layers(backbone.graph_def, backbone.card)
    numbered = keras_numbered(layers, card)
    assert [card.keras_layers[number] for number, _ in numbered] == [layer.name for layer in layers]
    first = layers[first_tuned_at(layers, card, fine_tune_at=100)]
    number = dict((layer.name, n) for n, layer in numbered)[first.name]
    assert number >= 100 and all(n < 100 for n, layer in numbered if layer.index < first.index)


@pytest.fixture(scope='module')
def keras3_file(tmp_path_factory, photos):  # noqa: F811
    """A Keras 3 .keras file as the MobileNetV2 tutorial builds it (application nested, then
    pooling, dropout, one logit), with distinct batch-norm statistics."""
    folder = tmp_path_factory.mktemp('keras3')
    keras.utils.set_random_seed(3)
    base = keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None,
                                          input_shape=(96, 96, 3))
    rng = np.random.RandomState(3)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.5, 0.5, n),
                               rng.uniform(-0.1, 0.1, n), rng.uniform(0.05, 0.2, n)])
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.GlobalAveragePooling2D(name='pool')(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.2)(x)))
    path = str(folder / 'tutorial.keras')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        model.save(path)
    pooled = keras.Model(base.inputs, keras.layers.GlobalAveragePooling2D()(base.outputs[0]))
    return dict(path=path, folder=folder, base=base, pooled=pooled)


def test_keras3_file_gives_its_own_vectors(keras3_file, photos):  # noqa: F811
    pb = str(keras3_file['folder'] / 'tutorial.pb')
    card, cut = convert_keras_model(keras3_file['path'], pb)
    assert cut == 'pool' and card.input_size == (96, 96)
    assert list(card.keras_layers) == [layer.name for layer in keras3_file['base'].layers]
    batch = tfgraft_inputs(photos, card)
    actual = run_backbone(load_frozen_backbone(pb), batch)
    assert_close(actual, keras3_file['pooled'].predict(batch, verbose=0))


def test_layer_flag_cuts_earlier(keras3_file, photos):  # noqa: F811
    pb = str(keras3_file['folder'] / 'block_13.pb')
    card, cut = convert_keras_model(keras3_file['path'], pb, layer='block_13_expand_relu')
    base = keras3_file['base']
    inner = base.get_layer('block_13_expand_relu').output
    expected_model = keras.Model(base.inputs, keras.layers.GlobalAveragePooling2D()(inner))
    assert card.bottleneck_size == inner.shape[-1]
    batch = tfgraft_inputs(photos, card)
    assert_close(run_backbone(load_frozen_backbone(pb), batch), expected_model.predict(batch, verbose=0))


def _write_keras2_h5(path, layers, weights=None):
    """A Keras 2-style full-model .h5: a Sequential model_config and (optional) weights."""
    config = {'class_name': 'Sequential', 'config': {'name': 'user_model', 'layers': layers}}
    with h5py.File(path, 'w') as handle:
        handle.attrs['model_config'] = json.dumps(config)
        handle.attrs['keras_version'] = '2.4.0'
        group = handle.create_group('model_weights')
        group.attrs['layer_names'] = [name.encode() for name in (weights or {})]
        for name, arrays in (weights or {}).items():
            layer = group.create_group(name)
            layer.attrs['weight_names'] = [('%s/%s:0' % (name, key)).encode() for key in arrays]
            for key, array in arrays.items():
                layer.create_dataset('%s/%s:0' % (name, key), data=array)


def assert_models_refused(capsys, cases, out):
    """Each (model path, message): `convert keras --model` fails in one line naming it."""
    for path, message in cases:
        assert main(['convert', 'keras', '--model', path, '--output_graph', out]) == 2, path
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and err.startswith('tfgraft: error: ') and message in err, err
    assert not os.path.exists(out)


INPUT = {'class_name': 'InputLayer', 'config': {'batch_input_shape': [None, 32, 32, 3], 'name': 'in'}}


def test_bad_model_files_are_refused_in_one_line(tmp_path, capsys):
    lambda_h5 = str(tmp_path / 'lambda.h5')
    _write_keras2_h5(lambda_h5, [INPUT, {'class_name': 'Lambda', 'config': {
        'name': 'evil', 'function': ['4wEAAAAAAAAA', None, None]}}])
    custom_h5 = str(tmp_path / 'custom.h5')
    _write_keras2_h5(custom_h5, [INPUT, {'class_name': 'MyLayer', 'config': {'name': 'mine'}}])
    headless = str(tmp_path / 'dense_only.h5')
    _write_keras2_h5(headless, [
        {'class_name': 'InputLayer', 'config': {'batch_input_shape': [None, 32, 32, 3], 'name': 'in'}},
        {'class_name': 'GlobalAveragePooling2D', 'config': {'name': 'pool'}},
        {'class_name': 'Dense', 'config': {'name': 'fc', 'units': 2, 'activation': 'softmax'}}],
        {'fc': {'kernel': np.zeros((3, 2), np.float32), 'bias': np.zeros(2, np.float32)}})
    unknown = str(tmp_path / 'plain_cnn.h5')
    _write_keras2_h5(unknown, [INPUT, {'class_name': 'Conv2D', 'config': {
        'name': 'c', 'filters': 4, 'kernel_size': [3, 3], 'activation': 'relu'}},
        {'class_name': 'GlobalAveragePooling2D', 'config': {'name': 'pool'}}],
        {'c': {'kernel': np.zeros((3, 3, 3, 4), np.float32), 'bias': np.zeros(4, np.float32)}})
    weights_only = need_asset(*SQUEEZENET)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2)(keras.layers.Conv2D(4, 3)(inputs))
    lambda_keras = str(tmp_path / 'lambda.keras')
    keras.Model(inputs, outputs).save(lambda_keras)
    out = str(tmp_path / 'out.pb')
    cases = (
        (lambda_h5, 'holds Python code'),
        (custom_h5, 'MyLayer) is a custom or unsupported layer class'),
        (headless, 'no recognisable backbone'),
        (unknown, 'give --preprocessing'),
        (weights_only, 'holds weights only'),
        (lambda_keras, 'holds Python code'),
        (str(tmp_path), 'is a folder'),
        (str(tmp_path / 'missing.h5'), 'not found'),
    )
    assert_models_refused(capsys, cases, out)
    # With the preprocessing given, the unknown CNN converts.
    assert main(['convert', 'keras', '--model', unknown, '--preprocessing', 'caffe',
                 '--output_graph', out]) == 0
    assert read_card_file(out).channel_order == 'BGR'


def _reference_squeezenet(weights_path):
    """keras-squeezenet's v1.1 (include_top=False, pooling='avg'), written out here."""
    from keras import layers
    images = keras.Input((227, 227, 3))
    x = layers.Conv2D(64, 3, strides=2, activation='relu')(images)
    x = layers.MaxPooling2D(3, 2)(x)
    convs = [('conv1', None)]
    for spec in ((2, 16, 64), (3, 16, 64), 'pool', (4, 32, 128), (5, 32, 128),
                 'pool', (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256)):
        if spec == 'pool':
            x = layers.MaxPooling2D(3, 2)(x)
            continue
        fire, squeeze, expand = spec
        s = layers.Conv2D(squeeze, 1, activation='relu')
        e1 = layers.Conv2D(expand, 1, activation='relu')
        e3 = layers.Conv2D(expand, 3, padding='same', activation='relu')
        x = s(x)
        x = layers.concatenate([e1(x), e3(x)])
        convs += [('fire%d/squeeze1x1' % fire, s), ('fire%d/expand1x1' % fire, e1),
                  ('fire%d/expand3x3' % fire, e3)]
    model = keras.Model(images, layers.GlobalAveragePooling2D()(x))
    convs[0] = ('conv1', model.layers[1])
    with h5py.File(weights_path, 'r') as handle:
        for name, layer in convs:
            arrays = [handle[name][key][()] for key in handle[name].attrs['weight_names']]
            layer.set_weights(sorted(arrays, key=lambda a: -a.ndim))
    return model


def test_squeezenet_gives_the_keras_squeezenet_vectors(tmp_path, photos):  # noqa: F811
    weights = need_asset(*SQUEEZENET)
    pb = str(tmp_path / 'squeezenet.pb')
    assert main(['convert', 'squeezenet', '--weights', weights, '--output_graph', pb]) == 0
    card = read_card_file(pb)
    assert (card.channel_order, card.input_range, card.input_size, card.bottleneck_size) == (
        'BGR', (0.0, 255.0), (227, 227), 512)
    assert card.channel_mean == (103.939, 116.779, 123.68)
    batch = tfgraft_inputs(photos, card)
    # Caffe preprocessing by hand: resized RGB 0..255 -> BGR minus the means.
    rgb = tfgraft_inputs(photos, type(card)(**dict(card.to_dict(), channel_order='RGB', channel_mean=())))
    assert np.abs(batch - (rgb[..., ::-1] - np.array([103.939, 116.779, 123.68]))).max() < 1e-3
    actual = run_backbone(load_frozen_backbone(pb), batch)
    assert_close(actual, _reference_squeezenet(weights).predict(batch, verbose=0))
    layers = list_layers(load_frozen_backbone(pb).graph_def, card)
    assert [layer.name for layer in layers][:4] == [
        'conv1', 'fire2_squeeze1x1', 'fire2_expand1x1', 'fire2_expand3x3']
    assert len(layers) == 25
    numbered = keras_numbered(layers, card)       # keras-squeezenet's indices (ReLUs count)
    assert [number for number, _ in numbered][:5] == [1, 4, 6, 7, 11]


def test_squeezenet_refuses_other_weights(tmp_path, capsys):
    other = str(tmp_path / 'other.h5')
    _write_keras2_h5(other, [INPUT])
    assert main(['convert', 'squeezenet', '--weights', other, '--output_graph',
                 str(tmp_path / 'x.pb')]) == 2
    assert 'no SqueezeNet layer conv1' in capsys.readouterr().err


def test_inspect_and_list_layers_print_keras_numbers(teachable, capsys):
    card = teachable['card']
    for command in (['inspect', teachable['pb']], ['finetune', '--graph', teachable['pb'], '--list_layers']):
        assert main(command) == 0
        printed = {line.split()[1]: int(line.split()[0]) for line in capsys.readouterr().out.splitlines()
                   if line.strip() and line.split()[0].isdigit()}
        assert printed['block_11_expand'] == card.keras_layers.index('block_11_expand') == 99
        assert printed['Conv1'] == 2 and printed['Conv_1'] == len(card.keras_layers) - 3
