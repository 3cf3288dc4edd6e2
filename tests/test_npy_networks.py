"""AlexNet and VGG16 built from stand-in weight dicts of the real layout."""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from tfgraft.graphs import factory
from tfgraft.graphs.alexnet import alexnet
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import sha256_file
from tfgraft.graphs.npy_backbone import load_npy_backbone
from tfgraft.graphs.npy_standin import standin_weights
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.graphs.vgg16 import vgg16

tf1 = tf.compat.v1

ALEXNET_NAMES = ['conv1', 'norm1', 'pool1', 'conv2', 'norm2', 'pool2', 'conv3', 'conv4', 'conv5',
                 'pool5', 'fc6', 'relu6', 'drop6', 'fc7', 'relu7', 'drop7', 'fc8']


def session(graph):
    """A session without Grappler: its passes over 200 MB of constants take half a minute."""
    rewrite = rewriter_config_pb2.RewriterConfig(disable_meta_optimizer=True)
    config = tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))
    return tf1.Session(graph=graph, config=config)


def images_like(size, count=2, seed=0):
    """Float images as preprocessing leaves them: BGR pixels minus the means."""
    return np.random.default_rng(seed).uniform(-120, 135, (count, size, size, 3)).astype(np.float32)


@pytest.fixture(scope='session')
def alexnet_weights():
    return standin_weights('alexnet')


@pytest.fixture(scope='session')
def small_vgg_weights():
    return standin_weights('vgg16', width_divisor=8)


@pytest.fixture(scope='session')
def small_vgg_npy(tmp_path_factory, small_vgg_weights):
    path = str(tmp_path_factory.mktemp('vgg') / 'vgg16_small.npy')
    np.save(path, {layer: list(pair) for layer, pair in small_vgg_weights.items()},
            allow_pickle=True)
    return path


@pytest.mark.slow
def test_alexnet_full_size_end_points(alexnet_weights):
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 227, 227, 3])
        logits, end_points = alexnet(images, alexnet_weights)
    assert list(end_points) == ALEXNET_NAMES
    expected = {'conv1': [55, 55, 96], 'pool1': [27, 27, 96], 'conv2': [27, 27, 256],
                'pool2': [13, 13, 256], 'conv4': [13, 13, 384], 'pool5': [6, 6, 256],
                'fc6': [4096], 'relu7': [4096], 'fc8': [1000]}
    for layer, shape in expected.items():
        assert end_points[layer].shape.as_list() == [None] + shape, layer
    assert logits is end_points['fc8']
    with session(graph) as sess:
        pool5, fc7, relu7 = sess.run([end_points[name] for name in ('pool5', 'fc7', 'relu7')],
                                     {images: images_like(227)})
    assert pool5.shape == (2, 6, 6, 256) and fc7.shape == (2, 4096)
    np.testing.assert_allclose(relu7, np.maximum(fc7, 0), rtol=1e-6)
    assert (fc7 < 0).any() and (relu7 > 0).any()


def lrn_reference(inputs, radius=2, alpha=2e-5, beta=0.75, bias=1.0):
    squares = np.pad(inputs.astype(np.float64) ** 2, [(0, 0)] * 3 + [(radius, radius)])
    window = sum(squares[..., offset:offset + inputs.shape[-1]] for offset in range(2 * radius + 1))
    return inputs / (bias + alpha * window) ** beta


def test_alexnet_lrn_and_grouped_convolution_numbers(alexnet_weights):
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 227, 227, 3])
        _, end_points = alexnet(images, alexnet_weights, last_layer='conv2')
    with session(graph) as sess:
        conv1, norm1, pool1, conv2 = sess.run(
            [end_points[name] for name in ('conv1', 'norm1', 'pool1', 'conv2')],
            {images: images_like(227, count=1)})
    assert np.abs(norm1 - conv1).max() > 1.0          # the normalisation matters here
    np.testing.assert_allclose(norm1, lrn_reference(conv1), rtol=1e-4, atol=1e-4)
    # Two groups == one convolution with a block-diagonal kernel.
    weights, biases = alexnet_weights['conv2']
    full = np.zeros((5, 5, 96, 256), np.float32)
    full[:, :, :48, :128] = weights[..., :128]
    full[:, :, 48:, 128:] = weights[..., 128:]
    expected = tf.nn.relu(tf.nn.conv2d(pool1, full, 1, 'SAME') + biases).numpy()
    np.testing.assert_allclose(conv2, expected, rtol=1e-4, atol=1e-3)


def test_wrong_shape_names_layer_and_shapes_before_building(alexnet_weights):
    bad = dict(alexnet_weights)
    bad['conv2'] = (np.zeros((5, 5, 96, 256), np.float32), alexnet_weights['conv2'][1])
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 227, 227, 3])
        with pytest.raises(GraftError) as error:
            alexnet(images, bad)
    message = str(error.value)
    assert 'conv2' in message and '[5, 5, 48, 256]' in message and '[5, 5, 96, 256]' in message
    assert '\n' not in message
    assert [op.name for op in graph.get_operations()] == ['Placeholder']


def test_missing_layer_is_named_unless_not_needed(alexnet_weights):
    without_fc7 = {layer: pair for layer, pair in alexnet_weights.items() if layer != 'fc7'}
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 227, 227, 3])
        with pytest.raises(GraftError, match='no layer fc7.*4096, 4096'):
            alexnet(images, without_fc7)
        output, _ = alexnet(images, without_fc7, last_layer='pool5')
        assert output.shape.as_list() == [None, 6, 6, 256]


def test_vgg16_reduced_width_through_the_same_builder(small_vgg_weights):
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        logits, end_points = vgg16(images, small_vgg_weights, width_divisor=8)
    with session(graph) as sess:
        pool5, relu6, fc8 = sess.run([end_points[name] for name in ('pool5', 'relu6', 'fc8')],
                                     {images: images_like(224)})
    assert pool5.shape == (2, 7, 7, 64) and relu6.shape == (2, 512) and fc8.shape == (2, 1000)
    assert end_points['conv5_3'].shape.as_list() == [None, 14, 14, 64]
    assert logits is end_points['fc8']
    with tf.Graph().as_default():   # the full-width table refuses the narrow weights
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        with pytest.raises(GraftError, match=r'conv1_1.*\[3, 3, 3, 64\].*\[3, 3, 3, 8\]'):
            vgg16(images, small_vgg_weights)


def test_load_npy_backbone_builds_and_runs(small_vgg_npy, small_vgg_weights):
    backbone = load_npy_backbone('vgg16', small_vgg_npy)
    card = backbone.card
    assert (card.network, card.bottleneck_tensor, card.bottleneck_size) == ('vgg16', 'relu6', 512)
    assert (card.input_size, card.channel_order, card.resize) == ((224, 224), 'BGR', 'center_crop')
    assert card.channel_mean == (103.939, 116.779, 123.68) and card.input_range == (0.0, 255.0)
    assert backbone.layer == 'relu6' and backbone.path == small_vgg_npy
    assert backbone.sha256 == sha256_file(small_vgg_npy)
    photo = np.random.default_rng(3).integers(0, 256, (300, 240, 3), dtype=np.uint8)
    graph = tf.Graph()
    with graph.as_default():
        batch = tf.stack([preprocess_image(tf.constant(photo), card)] * 2)
        vectors = backbone.build(batch)
        _, end_points = vgg16(batch, small_vgg_weights, width_divisor=8)
    with session(graph) as sess:
        got, expected = sess.run([vectors, end_points['relu6']])
    assert got.shape == (2, 512)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_backbone_layers_factory_and_description(small_vgg_npy):
    backbone = factory.load_backbone(network='vgg16', weights=small_vgg_npy, layer='pool5')
    assert backbone.card.bottleneck_size == 7 * 7 * 64
    assert 'fc6' not in backbone.weights            # layers past pool5 are not kept
    again = factory.load_described(factory.describe(backbone))
    assert (again.layer, again.card, again.sha256) == ('pool5', backbone.card, backbone.sha256)
    with pytest.raises(GraftError, match="no layer 'fc9'.*relu6"):
        load_npy_backbone('vgg16', small_vgg_npy, 'fc9')
    with pytest.raises(GraftError, match='alexnet weights have no layer conv1'):
        load_npy_backbone('alexnet', small_vgg_npy)


def test_train_layers_are_the_only_variables(small_vgg_weights):
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        trained, _ = vgg16(images, small_vgg_weights, width_divisor=8, train_layers={'fc8'})
        frozen, _ = vgg16(images, small_vgg_weights, width_divisor=8, scope='constants')
        names = sorted(variable.op.name for variable in tf1.trainable_variables())
        assert names == ['vgg16/fc8/biases', 'vgg16/fc8/weights']
        assert len(tf1.global_variables()) == 2
        assert graph.get_operation_by_name('vgg16/fc7/weights').type == 'Const'
        assert graph.get_operation_by_name('vgg16/conv1_1/weights').type == 'Const'
        init = tf1.global_variables_initializer()
    with session(graph) as sess:
        sess.run(init)
        got, expected = sess.run([trained, frozen], {images: images_like(224, count=1)})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_skip_layers_are_new_for_new_classes(small_vgg_weights):
    without_fc8 = {layer: pair for layer, pair in small_vgg_weights.items() if layer != 'fc8'}
    keep_prob_values = {}
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        keep_prob = tf1.placeholder_with_default(1.0, [])
        logits, end_points = vgg16(images, without_fc8, num_classes=5, keep_prob=keep_prob,
                                   train_layers={'fc7'}, skip_layers={'fc8'}, width_divisor=8)
        names = sorted(variable.op.name for variable in tf1.trainable_variables())
        assert names == ['vgg16/fc7/biases', 'vgg16/fc7/weights', 'vgg16/fc8/biases',
                         'vgg16/fc8/weights']
        assert logits.shape.as_list() == [None, 5]
        init = tf1.global_variables_initializer()
        with pytest.raises(GraftError, match='train_layers names fc9'):
            vgg16(images, without_fc8, train_layers={'fc9'}, width_divisor=8)
    with session(graph) as sess:
        sess.run(init)
        for value in (1.0, 0.5):
            keep_prob_values[value] = sess.run(
                [end_points['relu6'], end_points['drop6']],
                {images: images_like(224, count=1), keep_prob: value})
    relu6, drop6 = keep_prob_values[1.0]
    np.testing.assert_array_equal(relu6, drop6)
    relu6, drop6 = keep_prob_values[0.5]
    assert (drop6[relu6 > 0] == 0).any() and np.allclose(drop6[drop6 > 0], 2 * relu6[drop6 > 0])
