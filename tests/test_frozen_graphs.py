"""Frozen-graph backbones: matching, refusing unsafe graphs, batched = per-image."""
import os

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from tfgraft.graphs import frozen, registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.factory import load_backbone
from tfgraft.graphs.standin import write_inception_standin
from tfgraft.records.extract import compute_bottlenecks

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def inception_standin(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('standin') / 'tensorflow_inception_graph.pb')
    write_inception_standin(path, seed=1)
    return path


@pytest.fixture(scope='module')
def sample_jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('jpegs')
    paths = []
    for name in ('chelsea', 'astronaut', 'coffee', 'rocket'):
        path = str(folder / (name + '.jpg'))
        with open(path, 'wb') as handle:
            handle.write(tf.io.encode_jpeg(getattr(skimage.data, name)(), quality=90).numpy())
        paths.append(path)
    return paths


def tutorial_bottlenecks(graph_path, jpeg_paths):
    """The Inception tutorial's way: one JPEG's bytes per sess.run."""
    graph_def = frozen.load_graph_def(graph_path)
    with tf.Graph().as_default() as graph:
        contents, bottleneck = tf.import_graph_def(
            graph_def, return_elements=['DecodeJpeg/contents:0', 'pool_3/_reshape:0'], name='')
        with tf1.Session(graph=graph) as sess:
            return np.concatenate([
                sess.run(bottleneck, {contents: open(path, 'rb').read()}) for path in jpeg_paths])


def batched_bottlenecks(backbone, paths, batch_size=3):
    vectors = {}
    compute_bottlenecks(paths, backbone, batch_size, vectors.__setitem__, progress=False)
    return np.stack([vectors[i] for i in range(len(paths))])


def test_inception_standin_is_matched_to_its_card(inception_standin):
    backbone = frozen.load_frozen_backbone(inception_standin)
    assert backbone.card is registry.INCEPTION_V3
    assert backbone.sha256 == frozen.sha256_file(inception_standin)


def test_inception_jpeg_path_and_batched_path_agree(inception_standin, sample_jpegs):
    expected = tutorial_bottlenecks(inception_standin, sample_jpegs)
    assert expected.shape == (4, 2048)
    assert np.abs(expected).max() > 1e-3            # not all zero: the test can fail
    got = batched_bottlenecks(frozen.load_frozen_backbone(inception_standin), sample_jpegs)
    assert np.abs(got - expected).max() <= 1e-4


def test_real_mobilenet_is_matched(mobilenet_pb):
    backbone = frozen.load_frozen_backbone(mobilenet_pb)
    assert backbone.card.name == 'mobilenet_v1_0.25_128'
    assert backbone.card.bottleneck_size == 256
    assert backbone.card.input_range == (-1.0, 1.0)


def test_unknown_graph_with_flags(mobilenet_pb, sample_jpegs):
    backbone = load_backbone(graph=mobilenet_pb, input_tensor='input:0',
                             bottleneck_tensor='MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6:0',
                             input_size=128, input_range=(-1, 1))
    assert backbone.card.bottleneck_size == 4 * 4 * 256
    vectors = batched_bottlenecks(backbone, sample_jpegs[:2])
    assert vectors.shape == (2, 4096)


def test_wrong_tensor_name_is_one_clear_error(mobilenet_pb):
    with pytest.raises(GraftError, match='not in the graph'):
        load_backbone(graph=mobilenet_pb, input_tensor='input:0',
                      bottleneck_tensor='no_such_layer:0', input_size=128)


def _graph_that_writes(path):
    with tf.Graph().as_default() as graph:
        tf.io.write_file(path, tf.constant('pwned'), name='exfiltrate')
        tf.constant(1.0, name='input')
    return graph.as_graph_def()


def test_graph_with_file_ops_is_refused_and_never_run(tmp_path):
    target = tmp_path / 'written_by_graph.txt'
    pb = tmp_path / 'evil.pb'
    pb.write_bytes(_graph_that_writes(str(target)).SerializeToString())
    with pytest.raises(GraftError, match='WriteFile'):
        load_backbone(graph=str(pb), input_tensor='input:0', bottleneck_tensor='input:0',
                      input_size=8)
    assert not target.exists()


def test_allow_op_extends_the_allowlist(tmp_path):
    pb = tmp_path / 'writer.pb'
    pb.write_bytes(_graph_that_writes(str(tmp_path / 'x')).SerializeToString())
    graph_def = frozen.load_graph_def(str(pb), allow_ops=['WriteFile'])
    assert any(node.op == 'WriteFile' for node in graph_def.node)


@pytest.mark.parametrize('content', [b'', b'\x00\x01garbage' * 50, None])
def test_bad_pb_files_are_clear_errors(tmp_path, mobilenet_pb, content):
    pb = tmp_path / 'bad.pb'
    if content is None:   # truncated real graph
        content = open(mobilenet_pb, 'rb').read()[:100000]
    pb.write_bytes(content)
    with pytest.raises(GraftError):
        frozen.load_graph_def(str(pb))


def test_missing_graph_file(tmp_path):
    with pytest.raises(GraftError, match='not found'):
        frozen.load_graph_def(str(tmp_path / 'nope.pb'))


def test_sidecar_card_wins(tmp_path, mobilenet_pb):
    card = registry.GraphCard(
        name='custom', input_tensor='input:0', input_kind='image', input_size=(128, 128),
        input_range=(-1, 1), bottleneck_tensor='MobilenetV1/Logits/AvgPool_1a/AvgPool:0',
        bottleneck_size=256)
    pb = tmp_path / 'custom.pb'
    pb.write_bytes(open(mobilenet_pb, 'rb').read())
    frozen.write_card_file(card, str(pb))
    assert os.path.exists(tmp_path / 'custom.card.json')
    assert frozen.load_frozen_backbone(str(pb)).card == card
