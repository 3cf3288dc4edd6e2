"""`tfgraft convert`: Keras .h5 -> .npz, .npy network -> frozen .pb, Keras application wiring."""
import dataclasses
import os
import sys
import types

import h5py
import numpy as np
import pytest
import tensorflow as tf

from tfgraft.graphs import registry
from tfgraft.graphs.factory import load_backbone
from tfgraft.graphs.frozen import card_file_for, load_frozen_backbone
from tfgraft.graphs.npy_backbone import load_npy_backbone
from tfgraft.graphs.npy_standin import standin_weights
from tfgraft.graphs.npy_weights import load_weights
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.graphs.vgg16 import KERAS_LAYER_NAMES, vgg16
from tfgraft.tools.cli import run_tool

tf1 = tf.compat.v1
KERAS_SIZE = 64     # Keras VGG16 without its top takes any input from 32 up


def convert(*argv):
    return run_tool('convert', list(argv))


@pytest.fixture(scope='session')
def keras_vgg16(tmp_path_factory):
    """A random-weight Keras VGG16 saved as .h5, some photos and its block5_pool on them."""
    import keras
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, include_top=False,
                                     input_shape=(KERAS_SIZE, KERAS_SIZE, 3))
    path = str(tmp_path_factory.mktemp('keras') / 'vgg16_notop.h5')
    model.save(path)
    photos = np.random.default_rng(0).integers(0, 256, (2, KERAS_SIZE, KERAS_SIZE, 3),
                                               dtype=np.uint8)
    pixels = keras.applications.vgg16.preprocess_input(photos.astype(np.float32))
    block5_pool = model.predict(pixels, verbose=0)
    return path, photos, block5_pool


def test_h5_to_npz_matches_keras_vgg16(tmp_path, keras_vgg16):
    h5_path, photos, block5_pool = keras_vgg16
    npz_path = str(tmp_path / 'vgg16_conv.npz')
    assert convert('h5-to-npz', '--h5', h5_path, '--output_weights', npz_path) == 0
    weights = load_weights(npz_path)
    assert sorted(weights) == sorted(name for name in KERAS_LAYER_NAMES.values()
                                     if name.startswith('conv'))
    # Our card's preprocessing (no resize at this size) against Keras' caffe mode.
    card = dataclasses.replace(registry.get_card('vgg16'), input_size=(KERAS_SIZE, KERAS_SIZE))
    graph = tf.Graph()
    with graph.as_default():
        batch = tf.stack([preprocess_image(tf.constant(photo), card) for photo in photos])
        pool5, _ = vgg16(batch, weights, last_layer='pool5')
    with tf1.Session(graph=graph) as sess:
        ours = sess.run(pool5)
    assert ours.shape == block5_pool.shape == (2, 2, 2, 512)
    assert np.abs(block5_pool).max() > 0.1
    assert np.abs(ours - block5_pool).max() <= 1e-3


def write_keras2_h5(path, weights):
    """A Keras 2 save_weights file: one group per layer, names in attributes."""
    keras_names = {ours: keras for keras, ours in KERAS_LAYER_NAMES.items()}
    with h5py.File(path, 'w') as handle:
        layer_names = ['input_1'] + [keras_names[layer] for layer in weights] + ['flatten']
        handle.attrs['layer_names'] = [name.encode() for name in layer_names]
        for name in ('input_1', 'flatten'):
            handle.create_group(name).attrs['weight_names'] = []
        for layer, (kernel, bias) in weights.items():
            name = keras_names[layer]
            group = handle.create_group(name)
            group.attrs['weight_names'] = [('%s/%s:0' % (name, part)).encode()
                                           for part in ('kernel', 'bias')]
            group.create_dataset('%s/kernel:0' % name, data=kernel)
            group.create_dataset('%s/bias:0' % name, data=bias)
        # Optimizer slots under the same layer names must not be taken for weights.
        handle.create_dataset('optimizer_weights/Adam/block1_conv1/kernel/m:0',
                              data=np.zeros((1, 1)))


def test_h5_with_top_gives_fc_layers(tmp_path):
    weights = standin_weights('vgg16', width_divisor=8, num_classes=7)
    h5_path, npz_path = str(tmp_path / 'vgg16.h5'), str(tmp_path / 'vgg16.npz')
    write_keras2_h5(h5_path, weights)
    assert convert('h5-to-npz', '--h5', h5_path, '--output_weights', npz_path) == 0
    loaded = load_weights(npz_path)
    assert sorted(loaded) == sorted(weights)
    for layer in ('conv1_1', 'fc6', 'fc8'):
        for got, expected in zip(loaded[layer], weights[layer]):
            np.testing.assert_array_equal(got, expected)
    backbone = load_npy_backbone('vgg16', npz_path, 'fc8')
    assert backbone.card.bottleneck_size == 7


def test_h5_errors_are_one_line(tmp_path, capsys):
    numbered = str(tmp_path / 'keras3.weights.h5')
    with h5py.File(numbered, 'w') as handle:
        handle.create_dataset('layers/conv2d/vars/0', data=np.zeros((3, 3, 3, 64)))
    noise = tmp_path / 'noise.h5'
    noise.write_bytes(os.urandom(2048))
    wrong = str(tmp_path / 'wrong.h5')
    write_keras2_h5(wrong, {'conv1_1': (np.zeros((3, 3, 3, 64), np.float32),
                                        np.zeros(60, np.float32))})
    for path, expected in ((numbered, "model.save('model.h5')"), (str(noise), 'not an HDF5'),
                           (wrong, 'conv1_1: expected weights [3, 3, 3, 64], biases [64]')):
        assert convert('h5-to-npz', '--h5', path, '--output_weights',
                       str(tmp_path / 'out.npz')) == 2
        error = capsys.readouterr().err
        assert error.startswith('tfgraft: error:') and expected in error
        assert error.count('\n') == 1
    assert not os.path.exists(tmp_path / 'out.npz')


def test_npy_to_pb_matches_the_direct_build(tmp_path):
    weights = standin_weights('alexnet', width_divisor=4, seed=1)
    npy_path, pb_path = str(tmp_path / 'alexnet.npy'), str(tmp_path / 'alexnet_relu7.pb')
    np.save(npy_path, {layer: list(pair) for layer, pair in weights.items()}, allow_pickle=True)
    assert convert('npy-to-pb', '--backbone', 'alexnet', '--weights', npy_path,
                   '--output_graph', pb_path) == 0
    assert os.path.isfile(card_file_for(pb_path))
    frozen = load_frozen_backbone(pb_path)
    direct = load_npy_backbone('alexnet', npy_path)
    card = frozen.card
    assert (card.input_tensor, card.bottleneck_tensor, card.bottleneck_size, card.network) == \
        ('input:0', 'relu7:0', 1024, '')
    assert card.preprocessing_key() == direct.card.preprocessing_key()
    assert load_backbone(graph=pb_path).card == card
    images = np.random.default_rng(2).uniform(-120, 135, (2, 227, 227, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        batch = tf.constant(images)
        from_pb, from_npy = frozen.build(batch, 'frozen'), direct.build(batch, 'direct')
    with tf1.Session(graph=graph) as sess:
        from_pb, from_npy = sess.run([from_pb, from_npy])
    assert from_pb.shape == (2, 1024) and np.abs(from_npy).max() > 0.1
    assert np.abs(from_pb - from_npy).max() <= 1e-3


def test_keras_mode_delegates_to_keras_convert(tmp_path, monkeypatch):
    calls = []

    def convert_keras_application(application, output_pb, **options):
        calls.append((application, output_pb, options))
        return registry.mobilenet_v1_card('0.25', 128)

    fake = types.ModuleType('tfgraft.graphs.keras_convert')
    fake.convert_keras_application = convert_keras_application
    monkeypatch.setitem(sys.modules, 'tfgraft.graphs.keras_convert', fake)
    pb_path = str(tmp_path / 'mobilenet_v2.pb')
    assert convert('keras', '--application', 'MobileNetV2', '--alpha', '0.35',
                   '--input_size', '128', '--output_graph', pb_path) == 0
    assert calls == [('MobileNetV2', pb_path,
                      {'weights': None, 'alpha': 0.35, 'input_size': 128})]
