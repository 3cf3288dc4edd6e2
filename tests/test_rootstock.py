"""The rootstock `tfgraft demo` trains itself, and the demo's bundled pictures.

Builds run with few steps to stay quick; the code path is the one the demo
takes with its default steps.
"""
import os

import numpy as np
import pytest
import skimage.data
import skimage.io
import skimage.transform
import tensorflow as tf

from tfgraft.graphs import rootstock
from tfgraft.records import demo_images as demo_data
from tfgraft.graphs.frozen import load_frozen_backbone, load_graph_def, sha256_file
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.graphs.safety import ALLOWED_OPS
from tfgraft.records.listing import list_images

tf1 = tf.compat.v1

TEST_STEPS = 40


def build(folder, name, seed):
    path = os.path.join(str(folder), name, 'rootstock.pb')
    card = rootstock.build_rootstock(path, seed=seed, steps=TEST_STEPS, progress=False)
    return path, card


@pytest.fixture(scope='module')
def builds(tmp_path_factory):
    folder = tmp_path_factory.mktemp('rootstock')
    return {'seed0': build(folder, 'seed0', 0), 'seed0_again': build(folder, 'seed0_again', 0),
            'seed1': build(folder, 'seed1', 1)}


@pytest.fixture(scope='module')
def demo_image_dir(tmp_path_factory):
    return demo_data.write_demo_images(str(tmp_path_factory.mktemp('demo')))


def run_graph(graph_def, tensor_name, images):
    with tf.Graph().as_default():
        batch = tf1.placeholder(tf.float32, [None, rootstock.INPUT_SIZE, rootstock.INPUT_SIZE, 3])
        output, = tf.import_graph_def(graph_def, input_map={'input:0': batch},
                                      return_elements=[tensor_name], name='')
        with tf1.Session() as session:
            return session.run(output, {batch: images})


def test_rootstock_loads_as_a_frozen_backbone(builds):
    path, card = builds['seed0']
    backbone = load_frozen_backbone(path)
    assert backbone.card == card == rootstock.rootstock_card()
    assert backbone.sha256 == sha256_file(path)
    ops = {node.op for node in backbone.graph_def.node}
    assert ops <= ALLOWED_OPS
    assert 'Placeholder' in ops and 'Conv2D' in ops
    nodes = {node.name: node for node in backbone.graph_def.node}
    shape = [dim.size for dim in nodes['input'].attr['shape'].shape.dim]
    assert shape == [-1, rootstock.INPUT_SIZE, rootstock.INPUT_SIZE, 3]


def test_bottlenecks_of_demo_images_have_the_declared_size(builds, demo_image_dir):
    backbone = load_frozen_backbone(builds['seed0'][0])
    paths = [os.path.join(demo_image_dir, 'faces', 'faces_000.png'),
             os.path.join(demo_image_dir, 'non_faces', 'non_faces_100.png')]
    with tf.Graph().as_default():
        images = tf.stack([preprocess_image(tf.io.decode_png(tf.io.read_file(path), channels=3),
                                            backbone.card) for path in paths])
        bottlenecks = backbone.build(images)
        with tf1.Session() as session:
            vectors = session.run(bottlenecks)
    assert vectors.shape == (2, rootstock.BOTTLENECK_SIZE) == (2, backbone.card.bottleneck_size)
    assert np.all(np.isfinite(vectors))
    assert np.abs(vectors[0] - vectors[1]).max() > 1e-3     # a face and a non-face differ


def test_frozen_rootstock_holds_its_trained_weights(builds):
    graph_def = load_graph_def(builds['seed0'][0])
    patches, labels, class_names = demo_data.texture_patches(
        rootstock.INPUT_SIZE, patches_per_class=20, seed=5)
    predictions = run_graph(graph_def, 'rootstock/predictions:0', rootstock.to_input_range(patches))
    accuracy = np.mean(predictions.argmax(axis=1) == labels)
    assert accuracy > 3.0 / len(class_names), accuracy      # chance is 1 / classes
    frozen = {node.name: tf.make_ndarray(node.attr['value'].tensor) for node in graph_def.node
              if node.op == 'Const' and node.name.endswith('/weights')}
    initial = rootstock.initial_params(len(class_names), seed=0)
    assert set(frozen) == {'rootstock/' + name for name in initial if name.endswith('/weights')}
    assert not np.allclose(frozen['rootstock/conv1/weights'], initial['conv1/weights'])


def test_same_seed_gives_the_same_file_and_another_seed_does_not(builds):
    assert sha256_file(builds['seed0'][0]) == sha256_file(builds['seed0_again'][0])
    assert sha256_file(builds['seed0'][0]) != sha256_file(builds['seed1'][0])


def test_texture_patches_are_labelled_and_repeatable():
    images, labels, class_names = demo_data.texture_patches(24, patches_per_class=3, seed=2)
    assert images.shape == (3 * len(class_names), 24, 24, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [3] * len(class_names)
    assert class_names == list(demo_data.TEXTURE_SOURCES)
    again, _, _ = demo_data.texture_patches(24, patches_per_class=3, seed=2)
    other, _, _ = demo_data.texture_patches(24, patches_per_class=3, seed=3)
    assert np.array_equal(images, again) and not np.array_equal(images, other)


def test_demo_images_are_faces_then_non_faces_in_class_folders(demo_image_dir):
    assert sorted(os.listdir(demo_image_dir)) == ['faces', 'non_faces']
    listing = list_images(demo_image_dir, 10, 10)
    assert listing.classes == ['faces', 'non_faces']
    assert np.bincount([entry.label for entry in listing.entries]).tolist() == [100, 100]
    assert all(entry.path.endswith('.png') for entry in listing.entries)
    lfw = demo_data.as_uint8(skimage.data.lfw_subset()) / 255.0
    for class_name, index in (('faces', 0), ('non_faces', 150)):
        written = skimage.io.imread(os.path.join(demo_image_dir, class_name,
                                                 '%s_%03d.png' % (class_name, index)))
        assert written.shape == (demo_data.DEMO_IMAGE_SIZE, demo_data.DEMO_IMAGE_SIZE)
        back = skimage.transform.resize(written / 255.0, lfw.shape[1:], anti_aliasing=True)
        assert np.abs(back - lfw[index]).mean() < 0.03
        assert np.abs(back - lfw[index + 1 if index == 0 else index - 100]).mean() > 0.03
