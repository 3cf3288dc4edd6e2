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
