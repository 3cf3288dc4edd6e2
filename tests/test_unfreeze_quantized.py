"""Unfreezing an official 8-bit MobileNet v1 (quint8 Consts + Dequantize) and folding it back.

Real mobilenet_v1_0.50_160/quantized_graph.pb on four real photos: each Dequantize
of Consts becomes a float variable holding exactly what the graph computed, the
network gives the same vectors before training, trains, and folds back into one
frozen graph (float Consts where it trained) that computes what the trained
network did.
"""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from conftest import need_asset
from test_keras_convert import assert_close, photos, run_backbone, tfgraft_inputs  # noqa: F401
from tfgraft.graphs import registry
from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.safety import check_graph_ops
from tfgraft.graphs.unfreeze import (
    dequantized, fold_to_frozen, list_layers, trained_values, unfreeze)

tf1 = tf.compat.v1
SHA256 = '72e92a4b245384603dbad3359c72828fd1ed2ce76666b11b7f518d2a67b575b9'
FINE_TUNE_AT = 20
EXACT = tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewriter_config_pb2.RewriterConfig(
    constant_folding=rewriter_config_pb2.RewriterConfig.OFF)))


@pytest.fixture(scope='module')
def quantized():
    from tfgraft.graphs.frozen import sha256_file
    path = need_asset('mobilenet_v1_0.50_160', 'quantized_graph.pb')
    assert sha256_file(path) == SHA256
    # the file's graph as it is: unfreezing is compared against it at 1e-5
    return load_frozen_backbone(path, card=registry.mobilenet_v1_card('0.50', 160), exact_graph=True)


def _dequantize_names(graph_def):
    return {node.name for node in graph_def.node if node.op == 'Dequantize'}


def test_dequantize_becomes_the_float_const_it_computes(quantized):
    graph_def = quantized.graph_def
    names = _dequantize_names(graph_def)
    assert len(names) == 7             # the eighth is the logits layer, past the bottleneck
    floats = dequantized(graph_def)
    assert not _dequantize_names(floats)
    assert not any(node.attr['dtype'].type == tf.quint8.as_datatype_enum for node in floats.node)
    consts = {node.name: tf.make_ndarray(node.attr['value'].tensor) for node in floats.node
              if node.name in names}
    with tf.Graph().as_default():
        computed = dict(zip(sorted(names), tf1.Session().run(
            tf.import_graph_def(graph_def, return_elements=[n + ':0' for n in sorted(names)], name=''))))
    for name in names:
        assert consts[name].dtype == np.float32
        np.testing.assert_array_equal(consts[name], computed[name])
    layers = list_layers(graph_def, quantized.card)
    assert len(layers) == 27
    weights = {const for layer in layers for const, role in layer.params if role == 'weights'}
    assert names <= weights               # every 8-bit weight is a layer's weights


def test_quantized_layers_train_and_fold_back(quantized, photos):  # noqa: F811
    batch = tfgraft_inputs(photos, quantized.card)
    frozen = run_backbone(quantized, batch, EXACT)
    assert frozen.shape == (4, 512)
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 160, 160, 3])
        bottleneck, variables, tuned = unfreeze(quantized.graph_def, quantized.card, images,
                                                fine_tune_at=FINE_TUNE_AT)
        target = rng.normal(size=(len(batch), 512)).astype(np.float32)
        loss = tf.reduce_mean((bottleneck - target) ** 2)
        train = tf1.train.GradientDescentOptimizer(0.05).minimize(loss, var_list=variables)
        with tf1.Session(config=EXACT) as sess:
            sess.run(tf1.global_variables_initializer())
            unfrozen, start = sess.run([bottleneck, loss], {images: batch})
            for _ in range(3):
                sess.run(train, {images: batch})
            end, trained = sess.run([loss, bottleneck], {images: batch})
            values = trained_values(sess, variables)
    assert_close(unfrozen, frozen, 1e-5)        # nothing changes until training does
    assert end < start
    quantized_trained = _dequantize_names(quantized.graph_def) & set(values)
    assert quantized_trained                     # 8-bit weights became float variables
    assert all(layer.index >= FINE_TUNE_AT for layer in tuned)
    folded = fold_to_frozen(quantized.graph_def, values)
    check_graph_ops(folded)
    assert not quantized_trained & _dequantize_names(folded)
    assert _dequantize_names(folded) == _dequantize_names(quantized.graph_def) - quantized_trained
    with tf.Graph().as_default():
        output, = tf.import_graph_def(folded, input_map={'input:0': tf.constant(batch)},
                                      return_elements=[quantized.card.bottleneck_tensor], name='')
        with tf1.Session(config=EXACT) as sess:
            refolded = sess.run(output).reshape(len(batch), -1)
    assert_close(refolded, trained, 1e-5)
    assert np.abs(refolded - frozen).max() > 1e-3    # the fold holds the trained values


def test_quantized_layers_are_named_as_the_float_graphs_are(quantized):
    """The 8-bit graphs' weights are folded nodes (`.../weights/read/_82__cf__82`); their
    layers still take the float graph's names, so --fine_tune_from works on both."""
    from tfgraft.graphs.unfreeze import first_tuned_layer
    float_pb = load_frozen_backbone(need_asset('mobilenet_v1_0.25_224', 'frozen_graph.pb'))
    float_names = [layer.name for layer in list_layers(float_pb.graph_def, float_pb.card)]
    assert len(float_names) == 27 and float_names[0] == 'MobilenetV1/Conv2d_0'
    for backbone in (quantized, load_frozen_backbone(
            need_asset('mobilenet_v1_0.75_224', 'quantized_graph.pb'))):
        layers = list_layers(backbone.graph_def, backbone.card)
        assert [layer.name for layer in layers] == float_names
        assert first_tuned_layer(layers, fine_tune_from='MobilenetV1/Conv2d_11_pointwise') == 22
    assert first_tuned_layer(list_layers(float_pb.graph_def, float_pb.card),
                             fine_tune_from='MobilenetV1/Conv2d_11_pointwise') == 22
