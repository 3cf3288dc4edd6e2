"""The official MobileNet v1 releases in ../shared/assets: matched by measuring the graph,
the 8-bit ones included, and the default head reaching each file's reference probe.

The 0.50/160 8-bit graph was once matched by name to a 1024-d card (its real bottleneck
is 512-d): each batch of 64 vectors came back as 32 rows of 1024 floats, half the images
were reported "could not be decoded" and every record glued two images together. The
tests below reproduce that card and show it refused.
"""
import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import need_asset
from tfgraft.graphs import frozen, registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.factory import load_backbone
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.records.decode import load_rgb
from tfgraft.records.extract import ExtractionSession, write_bottlenecks
from tfgraft.tools.cli import main

tf1 = tf.compat.v1

# file, sha256, card name, input size, bottleneck width, least validation accuracy of the
# default head (the assets README's probe figure minus one point)
RELEASES = {
    '0.25_224': ('mobilenet_v1_0.25_224/frozen_graph.pb',
                 'bf56de7d43277493cbf251dc97e5ce3332725f2d134cf62418d666278f9b5ff7',
                 'mobilenet_v1_0.25_224', 224, 256, 0.935),
    '0.50_160': ('mobilenet_v1_0.50_160/quantized_graph.pb',
                 '72e92a4b245384603dbad3359c72828fd1ed2ce76666b11b7f518d2a67b575b9',
                 'mobilenet_v1_0.50_160', 160, 512, 0.954),
    '0.75_224': ('mobilenet_v1_0.75_224/quantized_graph.pb',
                 '5870f323860a793cce6a7d3a31b558535fe375528334ea0dfb23d5060b94a714',
                 'mobilenet_v1_0.75_224', 224, 768, 0.979),
}


def checked_release(key):
    """The release's path, once its bytes are the ones the references were measured on."""
    relative, sha256 = RELEASES[key][:2]
    path = need_asset(*relative.split('/'))
    with open(path, 'rb') as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sha256, path
    return path


@pytest.mark.parametrize('key', sorted(RELEASES))
def test_release_is_matched_by_its_measured_shapes(key):
    _, _, name, size, width, _ = RELEASES[key]
    card = frozen.load_frozen_backbone(checked_release(key)).card
    assert (card.name, card.input_size, card.bottleneck_size) == (name, (size, size), width)
    assert card.input_range == (-1.0, 1.0)


def test_the_8bit_graph_uses_dequantize_and_it_is_allowed():
    graph_def = frozen.load_graph_def(checked_release('0.50_160'))
    assert sum(node.op == 'Dequantize' for node in graph_def.node) == 8


def test_a_card_that_disagrees_with_the_graph_is_refused():
    """Today's corruption: the 0.50/160 graph under the 1.0/160 card (1024-d)."""
    path = checked_release('0.50_160')
    with pytest.raises(GraftError, match=r'says bottleneck_size 1024, but .* gives 512'):
        load_backbone(graph=path, network='mobilenet_v1_1.0_160')


def test_a_sidecar_card_that_disagrees_is_refused(tmp_path):
    pb = tmp_path / 'model.pb'
    pb.write_bytes(open(checked_release('0.50_160'), 'rb').read())
    frozen.write_card_file(registry.mobilenet_v1_card('0.50', 224), str(pb))
    with pytest.raises(GraftError, match=r'model.card.json: .* says input 224x224, .* is 160x160'):
        frozen.load_frozen_backbone(str(pb))


def test_flags_that_disagree_are_refused():
    with pytest.raises(GraftError, match=r'--input_size 224, but .* declares 160x160'):
        load_backbone(graph=checked_release('0.50_160'), input_tensor='input:0',
                      bottleneck_tensor=frozen.MOBILENET_V1_BOTTLENECK, input_size=224)


def test_flags_may_leave_the_input_size_to_the_graph():
    backbone = load_backbone(graph=checked_release('0.50_160'), input_tensor='input:0',
                             bottleneck_tensor='MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6:0')
    assert backbone.card.input_size == (160, 160)
    assert backbone.card.bottleneck_size == 5 * 5 * 512


def _photos(cats_and_dogs, count):
    folder = os.path.join(cats_and_dogs, 'validation', 'cats')
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:count]]


def test_extraction_stops_on_vectors_of_the_wrong_width(cats_and_dogs, tmp_path):
    """Even a card that got past loading cannot write glued vectors: the batch check stops
    the run, and it is not reported as images that failed to decode."""
    path = checked_release('0.50_160')
    graph_def = frozen.load_graph_def(path)
    wrong = frozen.FrozenGraphBackbone(graph_def, registry.mobilenet_v1_card('1.0', 160),
                                       frozen.sha256_file(path), path)
    image_dir = tmp_path / 'images'
    for label in ('cats', 'dogs'):
        (image_dir / label).mkdir(parents=True)
        folder = os.path.join(cats_and_dogs, 'validation', label)
        for name in sorted(os.listdir(folder))[:6]:
            os.symlink(os.path.join(folder, name), image_dir / label / name)
    out = tmp_path / 'records'
    with pytest.raises(GraftError, match='gave vectors of shape|failed to run'):
        write_bottlenecks(str(image_dir), wrong, str(out), batch_size=4, progress=False)
    assert not (out / 'manifest.json').exists()
    assert not list(out.glob('*.tfrecord'))
    failed = out / '.cache' / 'failed.json'
    assert not failed.exists() or json.loads(failed.read_text()) == {}


def test_batch_check_refuses_a_count_mismatch():
    from tfgraft.records.extract import check_batch
    card = registry.mobilenet_v1_card('0.50', 160)
    check_batch(np.arange(4), np.zeros((4, 512), np.float32), card)
    with pytest.raises(GraftError, match=r'shape \[2, 1024\] for 4 images'):
        check_batch(np.arange(4), np.zeros((2, 1024), np.float32), card)


@pytest.mark.parametrize('key', ['0.50_160', '0.75_224'])
def test_batches_equal_one_image_per_run(key, cats_and_dogs):
    """The graph's input declares a batch of one; batches go in through input_map and give
    the vectors its own placeholder gives one image at a time."""
    path = checked_release(key)
    backbone = frozen.load_frozen_backbone(path)
    paths = _photos(cats_and_dogs, 5)
    vectors = {}
    session = ExtractionSession(backbone, batch_size=5)
    try:
        session.run(paths, vectors.__setitem__)
    finally:
        session.close()
    batched = np.stack([vectors[i] for i in range(len(paths))])

    with tf.Graph().as_default() as graph:
        file_path = tf1.placeholder(tf.string, [])
        pixels = tf.expand_dims(preprocess_image(load_rgb(file_path), backbone.card), 0)
        graph_input, output = tf.import_graph_def(
            frozen.load_graph_def(path), return_elements=['input:0', frozen.MOBILENET_V1_BOTTLENECK],
            name='file')
        with tf1.Session(graph=graph) as sess:
            singles = []
            for photo in paths:
                value = sess.run(pixels, {file_path: photo})
                singles.append(sess.run(output, {graph_input: value}).reshape(-1))
    singles = np.stack(singles)
    assert singles.shape == batched.shape == (5, RELEASES[key][4])
    assert np.abs(singles).max() > 1e-3
    assert np.abs(batched - singles).max() <= 1e-4


@pytest.fixture(scope='module')
def release_records(tmp_path_factory, cats_and_dogs):
    """Bottleneck records of the whole real cats/dogs set for each release, made once."""
    made = {}

    def records(key):
        if key not in made:
            out = str(tmp_path_factory.mktemp('records_' + key))
            write_bottlenecks(cats_and_dogs, frozen.load_frozen_backbone(checked_release(key)), out,
                              progress=False)
            made[key] = out
        return made[key]
    return records


@pytest.mark.slow
@pytest.mark.parametrize('key', sorted(RELEASES))
def test_default_head_reaches_the_reference_probe(key, release_records, tmp_path):
    records = release_records(key)
    manifest = json.load(open(os.path.join(records, 'manifest.json')))
    assert manifest['bottleneck_size'] == RELEASES[key][4]
    assert manifest['skipped'] == []
    assert {split: manifest['splits'][split]['count'] for split in ('train', 'validation')} == \
        {'train': 2000, 'validation': 1000}
    model_dir, report_dir = str(tmp_path / 'model'), str(tmp_path / 'report')
    assert main(['train', '--bottleneck_dir', records, '--model_dir', model_dir]) == 0
    assert main(['evaluate', '--model_dir', model_dir, '--bottleneck_dir', records,
                 '--split', 'validation', '--output_dir', report_dir]) == 0
    report = json.load(open(os.path.join(report_dir, 'report.json')))
    print('%s: validation accuracy %.4f (reference %.3f)' % (key, report['accuracy'], RELEASES[key][5]))
    assert report['count'] == 1000
    assert report['accuracy'] >= RELEASES[key][5]


def _mobilenet_shaped_graph(depth, size, quantized):
    """A small graph with an official MobileNet v1 release's names and shapes: input
    [1, size, size, 3], weights as float constants or quint8 constants + Dequantize,
    the bottleneck AvgPool with 1024 * depth channels."""
    channels = int(round(1024 * float(depth)))
    rng = np.random.default_rng(size + channels)
    weights = rng.uniform(0.0, 1.0, (1, 1, 3, channels)).astype(np.float32)
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [1, size, size, 3], name='input')
        if quantized:
            levels = tf.constant(np.round(weights * 255).astype(np.uint8), dtype=tf.quint8,
                                 name='MobilenetV1/Conv2d_13_pointwise/weights_quantized_const')
            kernel = tf.raw_ops.Dequantize(input=levels, min_range=tf.constant(0.0),
                                           max_range=tf.constant(1.0), mode='MIN_FIRST')
        else:
            kernel = tf.constant(weights, name='MobilenetV1/Conv2d_13_pointwise/weights')
        features = tf.nn.relu6(tf.nn.conv2d(tf.nn.avg_pool2d(images, 32, 32, 'VALID'), kernel, 1, 'SAME'))
        with tf.name_scope('MobilenetV1/Logits/AvgPool_1a'):
            tf.nn.avg_pool2d(features, size // 32, 1, 'VALID', name='AvgPool')
    return graph.as_graph_def()


@pytest.mark.parametrize('quantized', [False, True], ids=['float', '8bit'])
@pytest.mark.parametrize('depth', registry.MOBILENET_V1_DEPTHS)
@pytest.mark.parametrize('size', registry.MOBILENET_V1_SIZES)
def test_every_release_layout_is_matched_without_flags(tmp_path, depth, size, quantized):
    pb = tmp_path / 'graph.pb'
    pb.write_bytes(_mobilenet_shaped_graph(depth, size, quantized).SerializeToString())
    backbone = frozen.load_frozen_backbone(str(pb))
    assert backbone.card.name == 'mobilenet_v1_%s_%d' % (depth, size)
    assert backbone.card.input_size == (size, size)
    assert backbone.card.bottleneck_size == int(round(1024 * float(depth)))
    with tf.Graph().as_default():
        batch = backbone.build(tf.zeros([3, size, size, 3]))
        assert batch.shape.as_list() == [3, backbone.card.bottleneck_size]
        with tf1.Session() as sess:
            assert sess.run(batch).shape == (3, backbone.card.bottleneck_size)


def test_a_bottleneck_that_is_not_2d_or_4d_is_refused(tmp_path):
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3], name='input')
        tf.expand_dims(images, 1, name='odd')
    pb = tmp_path / 'odd.pb'
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(GraftError, match='2-D .* or 4-D'):
        load_backbone(graph=str(pb), input_tensor='input:0', bottleneck_tensor='odd:0')


def test_a_bottleneck_with_a_fixed_batch_is_refused(tmp_path):
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3], name='input')
        tf.reshape(tf.reduce_mean(images, [1, 2]), [1, -1], name='glued')
    pb = tmp_path / 'glued.pb'
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(GraftError, match='fixed batch of 1|gave 1 rows for 2 images'):
        load_backbone(graph=str(pb), input_tensor='input:0', bottleneck_tensor='glued:0')
