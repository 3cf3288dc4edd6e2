"""Keras applications converted to frozen graphs (graphs/keras_convert.py).

No ImageNet weights can be downloaded: networks get random weights, or the
weights of a .weights.h5 file the test writes. Inputs stay small (MobileNetV2
0.35 at 96, InceptionV3 at its smallest 75, VGG16 at 32) to keep this fast.
"""
import glob
import os
import types
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from tfgraft.graphs import factory
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.keras_convert import build_application, convert_keras_application
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.graphs.unfreeze import list_layers, unfreeze
from conftest import anonymized

tf1 = tf.compat.v1

KERAS_PREPROCESS = {
    'MobileNetV2': keras.applications.mobilenet_v2.preprocess_input,
    'InceptionV3': keras.applications.inception_v3.preprocess_input,
    'ResNet50': keras.applications.resnet50.preprocess_input,
    'VGG16': keras.applications.vgg16.preprocess_input,
}
ROLE_OF_KERAS_WEIGHT = {'kernel': 'weights', 'bias': 'bias', 'gamma': 'gamma', 'beta': 'beta',
                        'moving_mean': 'moving_mean', 'moving_variance': 'moving_variance'}


@pytest.fixture(scope='session')
def photos(cats_and_dogs):
    """Two cats and two dogs, decoded (uint8, sizes vary)."""
    paths = []
    for label in ('cats', 'dogs'):
        paths += sorted(glob.glob(os.path.join(cats_and_dogs, 'validation', label, '*.jpg')))[:2]
    return [tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy() for path in paths]


def tfgraft_inputs(photos, card):
    return np.stack([preprocess_image(tf.constant(photo), card).numpy() for photo in photos])


def keras_inputs(photos, card, application):
    """The same resize, then Keras's own preprocess_input for the application."""
    resized = [tf.raw_ops.ResizeBilinear(images=photo[np.newaxis], size=list(card.input_size),
                                         align_corners=False, half_pixel_centers=False)[0].numpy()
               for photo in photos]
    return KERAS_PREPROCESS[application](np.stack(resized))


def randomize_batch_norms(model, seed):
    """Distinct gamma/beta/mean/variance everywhere, so no role mix-up goes unseen
    (Keras 3 or tf_keras models alike)."""
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if type(layer).__name__ == 'BatchNormalization':
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.5, 0.5, n),
                               rng.uniform(-0.1, 0.1, n), rng.uniform(0.05, 0.2, n)])


def converted(tmp_path_factory, photos, application, weights_seed=None, **options):
    """Convert `application`; the Keras model it must match gives `expected`."""
    folder = tmp_path_factory.mktemp(application)
    weights = None
    if weights_seed is not None:
        model, _ = build_application(application, seed=weights_seed, **options)
        randomize_batch_norms(model, weights_seed)
        weights = str(folder / 'trained.weights.h5')
        with warnings.catch_warnings():   # Keras's own NumPy 2 deprecation, once per weight
            warnings.simplefilter('ignore', DeprecationWarning)
            model.save_weights(weights)
    pb = str(folder / 'model.pb')
    card = convert_keras_application(application, pb, weights=weights, **options)
    if weights is None:
        model, _ = build_application(application, **options)   # the same seed: the same weights
    return types.SimpleNamespace(
        application=application, pb=pb, card=card,
        expected=model.predict(keras_inputs(photos, card, application), verbose=0),
        weight_paths=[v.path for v in model.weights],
        conv_layers=[layer.name for layer in model.layers
                     if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))])


@pytest.fixture(scope='session')
def mobilenet_v2(tmp_path_factory, photos):
    return converted(tmp_path_factory, photos, 'MobileNetV2', weights_seed=1, alpha=0.35, input_size=96)


@pytest.fixture(scope='session')
def inception_v3(tmp_path_factory, photos):
    return converted(tmp_path_factory, photos, 'InceptionV3', input_size=75)


@pytest.fixture(scope='session')
def vgg16(tmp_path_factory, photos):
    return converted(tmp_path_factory, photos, 'VGG16', input_size=32)


def run_backbone(backbone, batch, config=None):
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None] + list(backbone.card.input_size) + [3])
        bottleneck = backbone.build(images)
        with tf1.Session(config=config) as sess:
            return sess.run(bottleneck, {images: batch})


def assert_close(actual, expected, tolerance=1e-4):
    """Absolute and relative to the largest value (random deep nets can output ~1e-3)."""
    scale = np.abs(expected).max()
    assert scale > 0 and expected.std(axis=0).max() > 1e-3 * scale    # the photos differ
    assert np.abs(actual - expected).max() <= tolerance * min(1.0, scale)


@pytest.mark.slow
@pytest.mark.parametrize('name', ['mobilenet_v2', 'inception_v3', 'vgg16'])
def test_converted_graph_gives_the_keras_bottleneck(request, photos, name):
    conversion = request.getfixturevalue(name)
    backbone = load_frozen_backbone(conversion.pb)      # the card comes from the sidecar file
    assert backbone.card == conversion.card
    assert backbone.card.bottleneck_size == conversion.expected.shape[1]
    actual = run_backbone(backbone, tfgraft_inputs(photos, backbone.card))
    assert_close(actual, conversion.expected)


def test_cards_say_what_keras_preprocess_input_does(mobilenet_v2, inception_v3, vgg16):
    resnet_card = build_application('ResNet50', input_size=32)[1]
    cards = {'MobileNetV2': mobilenet_v2.card, 'InceptionV3': inception_v3.card,
             'ResNet50': resnet_card, 'VGG16': vgg16.card}
    assert mobilenet_v2.card.input_range == inception_v3.card.input_range == (-1.0, 1.0)
    assert resnet_card.channel_order == 'BGR' and resnet_card.input_range == (0.0, 255.0)
    for application, card in cards.items():
        pixels = np.random.RandomState(0).randint(0, 256, card.input_size + (3,)).astype(np.uint8)
        ours = preprocess_image(tf.constant(pixels), card).numpy()
        theirs = KERAS_PREPROCESS[application](pixels.astype(np.float32)[np.newaxis])[0]
        assert np.abs(ours - theirs).max() <= 1e-4, application


def test_converted_graph_goes_through_the_pipeline(mobilenet_v2):
    backbone = factory.load_backbone(graph=mobilenet_v2.pb)
    assert backbone.card.name == 'keras_mobilenetv2_0.35_96'
    again = factory.load_described(factory.describe(backbone))
    assert again.card == backbone.card and again.sha256 == backbone.sha256
    nodes = {node.name: node for node in backbone.graph_def.node}
    assert [d.size for d in nodes['input'].attr['shape'].shape.dim] == [-1, 96, 96, 3]
    consts = {name for name, node in nodes.items() if node.op == 'Const'}
    assert set(mobilenet_v2.weight_paths) <= consts       # weights named by their Keras paths


def test_unfreeze_reads_keras_layers(mobilenet_v2, photos):
    backbone = load_frozen_backbone(mobilenet_v2.pb, exact_graph=True)   # compared at 1e-5
    layers = list_layers(backbone.graph_def, backbone.card)
    assert [layer.name for layer in layers] == mobilenet_v2.conv_layers
    for layer in layers:
        for const, role in layer.params:
            if role != 'epsilon':
                assert ROLE_OF_KERAS_WEIGHT[const.rsplit('/', 1)[1]] == role, const
    structural = list_layers(anonymized(backbone.graph_def), backbone.card)
    roles = lambda layers: [[role for _, role in layer.params] for layer in layers]  # noqa: E731
    assert roles(structural) == roles(layers)

    batch = tfgraft_inputs(photos, backbone.card)
    rewrite = rewriter_config_pb2.RewriterConfig(constant_folding=rewriter_config_pb2.RewriterConfig.OFF)
    exact = tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))
    frozen = run_backbone(backbone, batch, exact)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 96, 96, 3])
        bottleneck, variables, tuned = unfreeze(backbone.graph_def, backbone.card, images,
                                                fine_tune_from='block_16')
        with tf1.Session(config=exact) as sess:
            sess.run(tf1.global_variables_initializer())
            unfrozen = sess.run(bottleneck, {images: batch})
    assert [layer.name for layer in tuned] == [
        'block_16_expand', 'block_16_depthwise', 'block_16_project', 'Conv_1']
    assert len(variables) == 3 * 4
    assert all(v.op.name.split('/')[1].startswith(('block_16_', 'Conv_1')) for v in variables)
    assert_close(unfrozen, frozen, 1e-5)


def test_keras_layers_train_and_fold_back(mobilenet_v2, photos):
    """Stage 2 on a converted graph (Keras 3 writes batch norm as Mul/Add/Rsqrt): gamma and
    beta train, the moving statistics stay, and the folded graph computes what the trained
    network did."""
    from tfgraft.graphs.unfreeze import FIXED_ROLES, fold_to_frozen, trained_values
    backbone = load_frozen_backbone(mobilenet_v2.pb)
    batch = tfgraft_inputs(photos, backbone.card)
    rewrite = rewriter_config_pb2.RewriterConfig(constant_folding=rewriter_config_pb2.RewriterConfig.OFF)
    exact = tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 96, 96, 3])
        bottleneck, variables, tuned = unfreeze(backbone.graph_def, backbone.card, images,
                                                fine_tune_from='block_16')
        target = rng.normal(size=(len(batch), bottleneck.shape[-1])).astype(np.float32)
        loss = tf.reduce_mean((bottleneck - target) ** 2)
        train = tf1.train.GradientDescentOptimizer(0.05).minimize(loss, var_list=variables)
        with tf1.Session(config=exact) as sess:
            sess.run(tf1.global_variables_initializer())
            start = sess.run(loss, {images: batch})
            for _ in range(3):
                sess.run(train, {images: batch})
            end, trained = sess.run([loss, bottleneck], {images: batch})
            values = trained_values(sess, variables)
    assert end < start
    fixed = {const for layer in tuned for const, role in layer.params if role in FIXED_ROLES}
    assert fixed and not fixed & set(values)              # moving mean and variance stay constant
    roles = {const: role for layer in tuned for const, role in layer.params}
    assert {'gamma', 'beta'} <= {roles[const] for const in values}
    folded = fold_to_frozen(backbone.graph_def, values)
    with tf.Graph().as_default():
        output, = tf.import_graph_def(folded, return_elements=[backbone.card.bottleneck_tensor], name='')
        with tf1.Session(config=exact) as sess:
            refolded = sess.run(output, {backbone.card.input_tensor: batch})
    assert_close(refolded, trained, 1e-5)


def test_bad_requests_are_refused(tmp_path):
    pb = str(tmp_path / 'model.pb')
    for application, options, message in (
            ('EfficientNetB0', {}, 'unknown Keras application'),
            ('VGG16', dict(alpha=0.5), 'alpha'),
            ('InceptionV3', dict(input_size=74), 'at least 75x75'),
            ('MobileNetV2', dict(weights=str(tmp_path / 'missing.weights.h5')), 'not found')):
        with pytest.raises(GraftError, match=message):
            convert_keras_application(application, pb, **options)
    assert not os.path.exists(pb)
