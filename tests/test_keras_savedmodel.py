"""SavedModel folders -> backbone graphs (graphs/keras_savedmodel.py through graphs/keras_model.py).

A Teachable-Machine-like model (a Sequential holding a Sequential around MobileNetV2
0.35/96 with random weights and distinct batch-norm statistics, then pooling and a
2-layer Dense head) is saved as a folder in each way this machine can write one:
Keras 2 `model.save('dir')` (tf_keras), Keras 3 `model.export('dir')` and
`tf.saved_model.save`. The converted graph must give the Keras model's own pooled
backbone output on real photos.
"""
import json
import os

import keras
import pytest
import tensorflow as tf

from test_keras_convert import (  # noqa: F401
    assert_close, photos, randomize_batch_norms, run_backbone, tfgraft_inputs)
from test_keras_model import assert_models_refused
from tfgraft.graphs.frozen import load_frozen_backbone, read_card_file, sha256_file
from tfgraft.graphs.keras_model import convert_keras_model
from tfgraft.graphs.unfreeze import keras_numbered, list_layers
from tfgraft.tools.cli import main

SIZE = 96


def _teachable_like(library, seed):
    """(whole model, the Keras model giving the backbone's pooled output) in `library`
    (keras or tf_keras), laid out as Teachable Machine exports are."""
    library.utils.set_random_seed(seed)
    base = library.applications.MobileNetV2(alpha=0.35, include_top=False, weights=None,
                                            input_shape=(SIZE, SIZE, 3))
    randomize_batch_norms(base, seed)
    pool = library.layers.GlobalAveragePooling2D()
    model = library.Sequential([
        library.Sequential([base, pool]),
        library.Sequential([library.layers.Dense(8, activation='relu'),
                            library.layers.Dense(2, activation='softmax')])])
    model.build((None, SIZE, SIZE, 3))
    pooled = library.Model(base.inputs, library.layers.GlobalAveragePooling2D()(base.outputs[0]))
    return model, base, pooled


@pytest.fixture(scope='module')
def saved_model(tmp_path_factory):
    """kind -> (SavedModel folder, the backbone application, its pooled-output model), each
    written once for the module."""
    made = {}

    def write(kind):
        if kind not in made:
            folder = str(tmp_path_factory.mktemp(kind) / 'saved_model')
            if kind == 'keras2':
                tf_keras = pytest.importorskip('tf_keras')
                model, base, pooled = _teachable_like(tf_keras, 5)
                model.save(folder, save_format='tf')
            else:
                model, base, pooled = _teachable_like(keras, 6)
                if kind == 'keras3_export':
                    model.export(folder, verbose=False)
                else:
                    tf.saved_model.save(model, folder)
            made[kind] = folder, base, pooled
        return made[kind]
    return write


@pytest.mark.parametrize('kind', ['keras2', 'keras3_export',
                                  pytest.param('tf_saved_model', marks=pytest.mark.slow)])
def test_saved_model_folder_gives_the_keras_backbone_vectors(saved_model, tmp_path, photos, kind):  # noqa: F811
    folder, base, pooled = saved_model(kind)
    names = [layer.name for layer in base.layers]
    before = sorted(os.listdir(folder))
    pb = str(tmp_path / 'backbone.pb')
    assert main(['convert', 'keras', '--model', folder, '--output_graph', pb]) == 0
    assert sorted(os.listdir(folder)) == before           # nothing written beside the user's files
    card = read_card_file(pb)
    assert card.input_size == (SIZE, SIZE) and card.bottleneck_size == 1280
    assert card.input_range == (-1.0, 1.0) and card.channel_order == 'RGB'
    assert list(card.keras_layers) == names               # Keras's own layer order
    batch = tfgraft_inputs(photos, card)
    backbone = load_frozen_backbone(pb)
    assert_close(run_backbone(backbone, batch), pooled.predict(batch, verbose=0))
    numbered = dict((layer.name, number)
                    for number, layer in keras_numbered(list_layers(backbone.graph_def, card), card))
    assert numbered['block_11_expand'] == names.index('block_11_expand')


def test_inspect_a_saved_model_folder(saved_model, tmp_path, capsys):
    """`tfgraft inspect DIR` converts in memory: the graph convert writes, same sha256."""
    folder, base, _ = saved_model('keras2')
    pb = str(tmp_path / 'backbone.pb')
    assert main(['convert', 'keras', '--model', folder, '--output_graph', pb]) == 0
    capsys.readouterr()
    assert main(['inspect', folder, '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['sha256'] == sha256_file(pb)
    assert info['card']['name'] == 'keras_mobilenetv2' and info['bottleneck']['width'] == 1280
    printed = {layer['index']: layer['name'] for layer in info['layers']}
    assert len(printed) == 52 and all(base.layers[i].name == name for i, name in printed.items())
    assert main(['inspect', folder]) == 0       # the text says whose sha256 it is
    assert 'sha256:      %s (of the graph' % sha256_file(pb) in capsys.readouterr().out


@pytest.mark.slow
def test_layer_flag_cuts_a_saved_model_earlier(saved_model, tmp_path, photos):  # noqa: F811
    folder, base, _ = saved_model('keras3_export')
    pb = str(tmp_path / 'block_13.pb')
    card, cut = convert_keras_model(folder, pb, layer='block_13_expand_relu')
    assert cut == 'block_13_expand_relu'
    inner = base.get_layer('block_13_expand_relu').output
    expected = keras.Model(base.inputs, keras.layers.GlobalAveragePooling2D()(inner))
    assert card.bottleneck_size == inner.shape[-1]
    batch = tfgraft_inputs(photos, card)
    assert_close(run_backbone(load_frozen_backbone(pb), batch), expected.predict(batch, verbose=0))


class _ReadsFiles(tf.Module):
    """A serving function that reads a file: its ReadFile op must refuse the folder."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(tf.ones([3, 3, 3, 4]), name='Conv1/kernel')

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    def serve(self, images):
        leak = tf.cast(tf.strings.length(tf.io.read_file('/etc/hostname')), tf.float32)
        return tf.nn.conv2d(images, self.kernel, 1, 'SAME') + leak


def test_bad_saved_models_are_refused_in_one_line(tmp_path, capsys):
    reads_files = str(tmp_path / 'reads_files')
    module = _ReadsFiles()
    tf.saved_model.save(module, reads_files, signatures={'serving_default': module.serve})
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name='c')(inputs))
    plain = str(tmp_path / 'plain_cnn')
    keras.Model(inputs, keras.layers.Dense(2)(x)).export(plain, verbose=False)
    not_saved_model = str(tmp_path / 'empty')
    os.makedirs(not_saved_model)
    broken = str(tmp_path / 'broken')
    os.makedirs(broken)
    with open(os.path.join(broken, 'saved_model.pb'), 'wb') as handle:
        handle.write(b'\x01 not a protocol buffer')
    out = str(tmp_path / 'out.pb')
    cases = (
        (reads_files, 'ReadFile'),
        (plain, 'no recognisable backbone'),
        (not_saved_model, 'is a folder without saved_model.pb'),
        (broken, 'is not a SavedModel'),
    )
    assert_models_refused(capsys, cases, out)
