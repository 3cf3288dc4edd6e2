"""Unfreezing frozen graphs from layer K and folding them back (graphs/unfreeze.py)."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.graphs.registry import GraphCard
from tfgraft.graphs.unfreeze import (
    FIXED_ROLES, TRAINABLE_SCOPE, UnfrozenBackbone, checkpoint_values, first_tuned_layer,
    fold_to_frozen, list_layers, trained_values, unfreeze)

from conftest import anonymized

tf1 = tf.compat.v1

MOBILENET_LAYERS = ['MobilenetV1/Conv2d_0'] + ['MobilenetV1/Conv2d_%d_%s' % (block, kind)
                                               for block in range(1, 14)
                                               for kind in ('depthwise', 'pointwise')]
BN_ROLES = {'weights', 'gamma', 'beta', 'moving_mean', 'moving_variance', 'epsilon'}


def no_constant_folding():
    """A session config under which a frozen graph runs exactly its own ops.

    By default grappler folds each batch norm's constant multiplier into the
    convolution weights of a frozen graph (it cannot when they are variables),
    which moves MobileNet bottlenecks by about 2e-5 (4e-6 relative).
    """
    rewrite = rewriter_config_pb2.RewriterConfig(constant_folding=rewriter_config_pb2.RewriterConfig.OFF)
    return tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))


@pytest.fixture(scope='module')
def mobilenet(mobilenet_pb):
    # The file's graph as it is: the unfreeze tests compare against it at 1e-5.
    return load_frozen_backbone(mobilenet_pb, exact_graph=True)


@pytest.fixture(scope='module')
def photos(mobilenet, cats_and_dogs):
    """Two cats and two dogs, preprocessed for MobileNet v1 0.25/128."""
    paths = []
    for label in ('cats', 'dogs'):
        paths += sorted(glob.glob(os.path.join(cats_and_dogs, 'train', label, '*.jpg')))[:2]
    decoded = [tf.io.decode_jpeg(tf.io.read_file(path), channels=3) for path in paths]
    return np.stack([preprocess_image(image, mobilenet.card).numpy() for image in decoded])


def test_mobilenet_layers_follow_the_network_table(mobilenet):
    layers = list_layers(mobilenet.graph_def, mobilenet.card)
    assert [layer.name for layer in layers] == MOBILENET_LAYERS
    assert [layer.index for layer in layers] == list(range(len(MOBILENET_LAYERS)))
    assert [layer.op for layer in layers[1:3]] == ['DepthwiseConv2dNative', 'Conv2D']
    for layer in layers:
        assert {role for _, role in layer.params} == BN_ROLES
        for const, role in layer.params:
            if role in ('weights', 'gamma', 'beta', 'moving_mean', 'moving_variance'):
                assert const.startswith(layer.name + '/') and const.endswith(role)
        assert all(c.endswith(('weights', 'gamma', 'beta')) for c in layer.trainable)


def test_batch_norm_roles_come_from_structure_without_names(mobilenet):
    named = list_layers(mobilenet.graph_def, mobilenet.card)
    anonymous = list_layers(anonymized(mobilenet.graph_def), mobilenet.card)
    roles = lambda layers: [[role for _, role in layer.params] for layer in layers]  # noqa: E731
    assert roles(anonymous) == roles(named)


def test_choosing_the_first_trained_layer(mobilenet):
    layers = list_layers(mobilenet.graph_def, mobilenet.card)
    assert first_tuned_layer(layers, fine_tune_from='MobilenetV1/Conv2d_11_pointwise') == 22
    assert first_tuned_layer(layers, fine_tune_from='MobilenetV1/Conv2d_12') == 23
    assert first_tuned_layer(layers, fine_tune_at=0) == 0
    for bad in (dict(), dict(fine_tune_at=1, fine_tune_from='MobilenetV1/Conv2d_1'),
                dict(fine_tune_at=27), dict(fine_tune_at=-1), dict(fine_tune_from='InceptionV3/')):
        with pytest.raises(GraftError):
            first_tuned_layer(layers, **bad)


@pytest.mark.parametrize('choice', [dict(fine_tune_at=0),
                                    dict(fine_tune_from='MobilenetV1/Conv2d_11_pointwise')])
def test_unfreezing_changes_nothing_before_training(mobilenet, photos, choice):
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 128, 128, 3])
        frozen = mobilenet.build(images, name='frozen')
        unfrozen, variables, tuned = unfreeze(mobilenet.graph_def, mobilenet.card, images, **choice)
        assert variables and len(variables) == sum(len(layer.trainable) for layer in tuned)
        for config, tolerance in ((no_constant_folding(), 1e-5), (None, 1e-4)):
            with tf1.Session(config=config) as sess:
                sess.run(tf1.global_variables_initializer())
                expected, actual = sess.run([frozen, unfrozen], {images: photos})
            assert expected.shape == (4, 256) and expected.std(axis=0).max() > 0.1
            assert np.abs(actual - expected).max() <= tolerance


def test_only_layers_from_k_become_variables(mobilenet):
    layers = list_layers(mobilenet.graph_def, mobilenet.card)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 128, 128, 3])
        _, variables, tuned = unfreeze(mobilenet.graph_def, mobilenet.card, images, fine_tune_at=23)
        assert [layer.name for layer in tuned] == MOBILENET_LAYERS[23:]
        expected = ['%s/%s' % (TRAINABLE_SCOPE, c) for layer in layers[23:] for c in layer.trainable]
        assert [v.op.name for v in variables] == expected
        assert len(variables) == 3 * 4
        assert tf1.trainable_variables(TRAINABLE_SCOPE) == variables
        assert not any('moving_' in v.op.name for v in variables)
        graph = tf1.get_default_graph()
        # Below K the imported graph still reads its Consts; from K on, variables.
        assert graph.get_operation_by_name('backbone/MobilenetV1/Conv2d_11_pointwise/weights').type == 'Const'
        conv = graph.get_operation_by_name('backbone/MobilenetV1/MobilenetV1/Conv2d_12_pointwise/convolution')
        assert conv.inputs[1].op.inputs[0].op.type == 'ReadVariableOp'


FOLDED_CHECK = '''
import sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2
graph_def = tf.compat.v1.GraphDef()
with open(sys.argv[1], 'rb') as handle:
    graph_def.ParseFromString(handle.read())
images = np.load(sys.argv[2])
rewrite = rewriter_config_pb2.RewriterConfig(constant_folding=rewriter_config_pb2.RewriterConfig.OFF)
for name, config in (('exact', tf.compat.v1.ConfigProto(graph_options=tf.compat.v1.GraphOptions(
        rewrite_options=rewrite))), ('default', None)):
    with tf.Graph().as_default():
        # The graph's own input placeholder is [1, 128, 128, 3]: feed a batch through input_map.
        batch = tf.compat.v1.placeholder(tf.float32, [None, 128, 128, 3])
        output, = tf.import_graph_def(graph_def, input_map={'input:0': batch},
                                      return_elements=['MobilenetV1/Logits/AvgPool_1a/AvgPool:0'], name='')
        with tf.compat.v1.Session(config=config) as sess:
            np.save('%s.%s.npy' % (sys.argv[3], name), sess.run(output, {batch: images}))
'''


@pytest.mark.slow
def test_training_moves_only_tuned_layers_and_folds_back(mobilenet, photos, tmp_path):
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 128, 128, 3])
        bottleneck, variables, tuned = unfreeze(mobilenet.graph_def, mobilenet.card, images,
                                                fine_tune_from='MobilenetV1/Conv2d_12')
        below = tf1.get_default_graph().get_tensor_by_name(
            'backbone/MobilenetV1/MobilenetV1/Conv2d_11_pointwise/Relu6:0')
        projection = tf.constant(rng.normal(size=(256, 3)).astype(np.float32))
        loss = tf.reduce_mean((tf.matmul(bottleneck, projection) - rng.normal(size=(4, 3))) ** 2)
        train = tf1.train.GradientDescentOptimizer(1e-6).minimize(loss, var_list=variables)
        saver = tf1.train.Saver(variables)
        with tf1.Session(config=no_constant_folding()) as sess:
            sess.run(tf1.global_variables_initializer())
            feed = {images: photos}
            start = sess.run([loss, below, bottleneck] + variables, feed)
            for _ in range(3):
                sess.run(train, feed)
            end = sess.run([loss, below, bottleneck] + variables, feed)
            values = trained_values(sess, variables)
            checkpoint = saver.save(sess, str(tmp_path / 'model.ckpt'))
    assert end[0] < start[0]
    np.testing.assert_array_equal(end[1], start[1])           # layers below K: untouched
    assert np.abs(end[2] - start[2]).max() > 1e-4              # the bottleneck moved
    assert all(np.any(after != before) for before, after in zip(start[3:], end[3:]))
    assert set(values) == {c for layer in tuned for c in layer.trainable}
    saved = checkpoint_values(checkpoint, mobilenet.graph_def)
    assert set(saved) == set(values) and all(np.array_equal(saved[c], values[c]) for c in values)

    folded = fold_to_frozen(mobilenet.graph_def, values)
    changed = {new.name for old, new in zip(mobilenet.graph_def.node, folded.node) if old != new}
    assert changed == set(values)
    graph_path, images_path = tmp_path / 'folded.pb', tmp_path / 'images.npy'
    graph_path.write_bytes(folded.SerializeToString())
    np.save(images_path, photos)
    check = subprocess.run([sys.executable, '-c', FOLDED_CHECK, str(graph_path), str(images_path),
                            str(tmp_path / 'out')], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-2000:]
    exact = np.load(tmp_path / 'out.exact.npy').reshape(4, 256)
    default = np.load(tmp_path / 'out.default.npy').reshape(4, 256)
    assert np.abs(exact - end[2]).max() <= 1e-5
    assert np.abs(default - end[2]).max() <= 1e-4


def test_fold_refuses_what_does_not_fit(mobilenet):
    name = 'MobilenetV1/Conv2d_0/BatchNorm/gamma'
    with pytest.raises(GraftError, match='shape'):
        fold_to_frozen(mobilenet.graph_def, {name: np.ones(9, np.float32)})
    with pytest.raises(GraftError, match='no Const'):
        fold_to_frozen(mobilenet.graph_def, {'MobilenetV1/MobilenetV1/Conv2d_0/Relu6': np.ones(8)})


def _fused_batch_norm_graph():
    """conv -> FusedBatchNormV3 -> relu -> conv + bias -> FusedBatchNormV3 -> mean, Consts named p0..p10."""
    rng = np.random.RandomState(3)
    params = iter('p%d' % i for i in range(11))

    def const(*shape, low=-1.0, high=1.0):
        return tf.constant(rng.uniform(low, high, shape).astype(np.float32), name=next(params))

    def batch_norm(x, channels):
        scale, offset = const(channels, low=0.5, high=1.5), const(channels)
        mean, variance = const(channels), const(channels, low=0.5, high=1.5)
        return tf.raw_ops.FusedBatchNormV3(x=x, scale=scale, offset=offset, mean=mean, variance=variance,
                                           epsilon=1e-3, is_training=False)[0]

    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [None, 8, 8, 3], name='input')
        x = tf.nn.conv2d(images, const(3, 3, 3, 4), 1, 'SAME')
        x = tf.nn.relu(batch_norm(x, 4))
        x = tf.nn.bias_add(tf.nn.conv2d(x, const(3, 3, 4, 5), 1, 'SAME'), const(5))
        tf.reduce_mean(batch_norm(x, 5), axis=[1, 2], name='bottleneck')
    card = GraphCard(name='fused', input_tensor='input:0', input_kind='image', input_size=(8, 8),
                     input_range=(-1, 1), bottleneck_tensor='bottleneck:0', bottleneck_size=5)
    return graph.as_graph_def(), card


def test_fused_batch_norm_graph_unfreezes_and_folds_back():
    graph_def, card = _fused_batch_norm_graph()
    layers = list_layers(graph_def, card)
    assert [[role for _, role in layer.params] for layer in layers] == [
        ['weights', 'gamma', 'beta', 'moving_mean', 'moving_variance'],
        ['weights', 'bias', 'gamma', 'beta', 'moving_mean', 'moving_variance']]

    class Frozen:   # what load_frozen_backbone returns, without a file
        pass
    frozen = Frozen()
    frozen.graph_def, frozen.card, frozen.sha256, frozen.path = graph_def, card, '', ''
    backbone = UnfrozenBackbone(frozen, fine_tune_at=0)
    batch = np.random.RandomState(4).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 8, 8, 3])
        reference, = tf.import_graph_def(graph_def, input_map={'input:0': images},
                                         return_elements=['bottleneck:0'], name='frozen')
        bottleneck = backbone.build(images)
        assert sorted(c for v in backbone.variables for c in [v.op.name.split('/', 1)[1]]) == sorted(
            c for layer in layers for c, r in layer.params if r not in FIXED_ROLES)
        train = tf1.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(bottleneck ** 2),
                                                                 var_list=backbone.variables)
        with tf1.Session(config=no_constant_folding()) as sess:
            sess.run(tf1.global_variables_initializer())
            before, expected = sess.run([bottleneck, reference], {images: batch})
            sess.run(train, {images: batch})
            after = sess.run(bottleneck, {images: batch})
            folded = backbone.fold(trained_values(sess, backbone.variables))
    assert np.abs(before - expected).max() <= 1e-6
    assert np.abs(after - before).max() > 1e-3
    with tf.Graph().as_default():
        output, = tf.import_graph_def(folded, return_elements=['bottleneck:0'], name='')
        with tf1.Session(config=no_constant_folding()) as sess:
            refolded = sess.run(output, {'input:0': batch})
    np.testing.assert_allclose(refolded, after, rtol=1e-6, atol=1e-6)
