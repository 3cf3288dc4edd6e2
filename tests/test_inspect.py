"""`tfgraft inspect`: the card and how it was found, measured shapes, ops, sha256, layers."""
import json

import pytest

from conftest import need_asset
from tfgraft.graphs.frozen import sha256_file
from tfgraft.tools.cli import main


@pytest.fixture(scope='module')
def quantized_pb():
    return need_asset('mobilenet_v1_0.50_160', 'quantized_graph.pb')


def test_inspect_prints_what_was_measured(quantized_pb, capsys):
    assert main(['inspect', quantized_pb]) == 0
    lines = capsys.readouterr().out.splitlines()
    text = '\n'.join(lines)
    assert 'card:        mobilenet_v1_0.50_160 (matched by tensor names)' in lines
    assert 'sha256:      %s' % sha256_file(quantized_pb) in lines
    assert 'declares [1, 160, 160, 3]; fed [N, 160, 160, 3]' in text
    assert 'MobilenetV1/Logits/AvgPool_1a/AvgPool:0 [N, 1, 1, 512] -> 512-d vectors' in text
    assert 'Dequantize 8' in text
    layers = [line for line in lines if line.startswith('  ') and 'Conv' in line]
    assert len(layers) == 27 and layers[0].split()[0] == '0' and layers[-1].split()[0] == '26'


def test_inspect_json_of_a_graph(mobilenet_pb, capsys):
    assert main(['inspect', mobilenet_pb, '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['card']['name'] == 'mobilenet_v1_0.25_128'
    assert info['bottleneck'] == {'tensor': 'MobilenetV1/Logits/AvgPool_1a/AvgPool:0',
                                  'shape': [None, 1, 1, 256], 'width': 256}
    assert info['input']['declared_shape'] == [1, 128, 128, 3]
    assert info['nodes'] == 555 and sum(info['ops'].values()) == 555
    assert [layer['index'] for layer in info['layers']] == list(range(27))


def test_inspect_a_bottleneck_dir_and_a_model_dir(cats_dogs_records, tmp_path, capsys):
    assert main(['inspect', cats_dogs_records]) == 0
    out = capsys.readouterr().out
    assert 'card:        mobilenet_v1_0.25_128' in out
    assert 'records:' in out and '2 classes, 256-d vectors (test 0, train 2000, validation 1000)' in out
    model_dir = str(tmp_path / 'model')
    assert main(['train', '--bottleneck_dir', cats_dogs_records, '--model_dir', model_dir,
                 '--how_many_training_steps', '10']) == 0
    capsys.readouterr()
    assert main(['inspect', model_dir]) == 0
    assert 'model:       %s: head softmax, 2 classes (cats, dogs)' % model_dir in capsys.readouterr().out


def test_inspect_bad_path_is_one_line(tmp_path, capsys):
    (tmp_path / 'notes.txt').write_text('hello')
    assert main(['inspect', str(tmp_path / 'notes.txt')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('tfgraft: error: ') and 'not a frozen graph' in err[0]
    (tmp_path / 'custom.h5').write_bytes(b'not hdf5')
    assert main(['inspect', str(tmp_path / 'custom.h5')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'neither a Keras .h5 nor a .keras file' in err[0]


def _printed_layers(info):
    return {layer['index']: layer['name'] for layer in info['layers']}


def test_inspect_the_teachable_machine_h5_numbers_layers_as_keras(capsys):
    """The real Teachable Machine export, converted in memory: its card, width, and each
    layer under the index Keras gives it in the nested MobileNetV2."""
    import os
    path = need_asset('keras_mobilenet_v2_0.35_224', 'keras_model.h5')
    folder = sorted(os.listdir(os.path.dirname(path)))
    assert main(['inspect', path, '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert sorted(os.listdir(os.path.dirname(path))) == folder     # nothing written beside it
    assert info['card']['name'] == 'keras_mobilenetv2'
    assert info['card_found'].startswith('converted in memory from the Keras model')
    assert info['bottleneck'] == {'tensor': 'bottleneck:0', 'shape': [None, 1280], 'width': 1280}
    assert info['input']['fed_shape'] == [None, 224, 224, 3]
    assert info['card']['input_range'] == [-1.0, 1.0]
    import h5py
    with h5py.File(path, 'r') as handle:
        config = json.loads(handle.attrs['model_config'])
    application = config['config']['layers'][1]['config']['layers'][1]['config']['layers']
    keras_names = [layer['config']['name'] for layer in application]
    printed = _printed_layers(info)
    assert len(printed) == 52
    assert all(keras_names[index] == name for index, name in printed.items())
    assert printed[99] == 'block_11_expand' and printed[2] == 'Conv1'
    assert keras_names[100] == 'block_11_expand_BN' and 100 not in printed   # the BN shares 99


def test_inspect_a_keras_file_written_here(tmp_path, capsys):
    import os
    import warnings
    import keras
    keras.utils.set_random_seed(2)
    base = keras.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None,
                                          input_shape=(96, 96, 3))
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.GlobalAveragePooling2D(name='pool')(base(inputs, training=False))
    path = str(tmp_path / 'tutorial.keras')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        keras.Model(inputs, keras.layers.Dense(2)(x)).save(path)
    assert main(['inspect', path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert os.listdir(str(tmp_path)) == ['tutorial.keras']
    assert any(line.startswith('card:        keras_mobilenetv2 (converted in memory') for line in lines)
    assert 'bottleneck:  bottleneck:0 [N, 1280] -> 1280-d vectors' in lines
    printed = {int(line.split()[0]): line.split()[1] for line in lines
               if line.startswith('  ') and line.split()[0].isdigit()}
    assert printed and all(base.layers[index].name == name for index, name in printed.items())
    assert printed[base.layers.index(base.get_layer('block_11_expand'))] == 'block_11_expand'
