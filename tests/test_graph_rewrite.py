"""Inference-time rewriting (graphs/optimize.py), --fast_decode and --precision.

The rewritten graphs must give the file's vectors within 1e-4 on the real
MobileNet releases (float with unfolded batch norm, and 8-bit with Dequantize).
"""
import collections
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import need_asset
from tfgraft.graphs import registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.optimize import REWRITE_VERSION, optimize_for_inference
from tfgraft.graphs.precision import check_precision, cpu_flags
from tfgraft.records import extract
from tfgraft.records.decode import DCT_RATIOS, dct_scale, decode_rgb_scaled

tf1 = tf.compat.v1

REAL_GRAPHS = ('mobilenet_v1_0.25_128/frozen_graph.pb', 'mobilenet_v1_0.25_224/frozen_graph.pb',
               'mobilenet_v1_0.50_160/quantized_graph.pb', 'mobilenet_v1_0.75_224/quantized_graph.pb')


def real_card(name):
    """The card of a real MobileNet release, from its folder name (the 8-bit files' width
    cannot be read from a Const, so the card is given rather than matched)."""
    _, depth, size = os.path.dirname(name).rsplit('_', 2)
    return registry.mobilenet_v1_card(depth, int(size))


@pytest.fixture(scope='module')
def photos(cats_and_dogs):
    folder = os.path.join(cats_and_dogs, 'validation', 'cats')
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:12]]


def vectors(backbone, paths, **options):
    found = {}
    extract.compute_bottlenecks(paths, backbone, 6, found.__setitem__, progress=False, **options)
    return np.stack([found[i] for i in range(len(paths))])


@pytest.mark.parametrize('name', REAL_GRAPHS)
def test_rewritten_real_graph_gives_the_files_vectors(name, photos):
    path = need_asset(*name.split('/'))
    card = real_card(name)
    rewritten = load_frozen_backbone(path, card=card)
    exact = load_frozen_backbone(path, card=card, exact_graph=True)
    assert rewritten.rewrite_version == REWRITE_VERSION and exact.rewrite_version == 0
    ops = collections.Counter(node.op for node in rewritten.inference_graph_def.node)
    for gone in ('Identity', 'Rsqrt', 'Mul', 'Sub', 'Add', 'Dequantize'):
        assert ops[gone] == 0, (gone, ops)
    # every convolution is followed by one BiasAdd: what Grappler's remapper fuses with Relu6
    assert ops['BiasAdd'] == ops['Conv2D'] + ops['DepthwiseConv2dNative'] == 27
    want, got = vectors(exact, photos), vectors(rewritten, photos)
    assert want.shape == (len(photos), rewritten.card.bottleneck_size)
    assert np.abs(want).max() > 1.0       # real activations, not zeros
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    # the file's graph is what unfreezing sees: untouched
    original = collections.Counter(node.op for node in exact.graph_def.node)
    assert collections.Counter(node.op for node in rewritten.graph_def.node) == original


def _small_graph(kind):
    """input -> conv -> (batch norm as `kind`) -> Relu6 -> output, random constants."""
    rng = np.random.RandomState(3)
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [None, 9, 9, 3], name='input')
        if kind == 'depthwise':
            weights = tf.constant(rng.normal(size=[3, 3, 3, 2]).astype(np.float32))
            conv = tf.nn.depthwise_conv2d(images, weights, [1, 1, 1, 1], 'SAME')
        else:
            weights = tf.constant(rng.normal(size=[3, 3, 3, 6]).astype(np.float32))
            conv = tf.nn.conv2d(images, tf.identity(tf.identity(weights)), 1, 'SAME')
        gamma, beta, mean = (tf.constant(rng.normal(size=[6]).astype(np.float32)) for _ in range(3))
        variance = tf.constant(rng.uniform(0.5, 2, size=[6]).astype(np.float32))
        if kind == 'fused':
            normed = tf1.nn.fused_batch_norm(conv, gamma, beta, mean, variance, epsilon=1e-3,
                                             is_training=False)[0]
        else:      # TF-slim's unfolded form
            scale = tf.math.rsqrt(variance + 1e-3) * gamma
            normed = conv * scale + (beta - mean * scale)
        tf.nn.relu6(tf.identity(normed), name='output')
    return graph.as_graph_def()


@pytest.mark.parametrize('kind', ['fused', 'unfolded', 'depthwise'])
def test_batch_norm_is_folded_into_the_convolution(kind):
    graph_def = _small_graph(kind)
    rewritten = optimize_for_inference(graph_def, 'input', 'output')
    ops = collections.Counter(node.op for node in rewritten.node)
    assert not {'FusedBatchNormV3', 'Rsqrt', 'Mul', 'Add', 'AddV2', 'Sub', 'Identity'} & set(ops)
    assert ops['BiasAdd'] == 1
    x = np.random.RandomState(0).uniform(-1, 1, [2, 9, 9, 3]).astype(np.float32)
    results = []
    for definition in (graph_def, rewritten):
        with tf.Graph().as_default() as graph:
            output, = tf.import_graph_def(definition, return_elements=['output:0'], name='')
        with tf1.Session(graph=graph) as session:
            results.append(session.run(output, {graph.get_tensor_by_name('input:0'): x}))
    assert np.abs(results[0]).max() > 0.5
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-5)


def test_cache_key_keeps_ways_of_computing_apart(mobilenet_pb):
    rewritten = load_frozen_backbone(mobilenet_pb)
    exact = load_frozen_backbone(mobilenet_pb, exact_graph=True)
    keys = {extract.extraction_key(exact), extract.extraction_key(rewritten),
            extract.extraction_key(rewritten, fast_decode=True),
            extract.extraction_key(rewritten, precision='bfloat16')}
    assert len(keys) == 4
    # the file's graph at full size keeps the key of before these options existed
    assert extract.extraction_key(exact) == extract.backbone_key(exact.card)
    assert 'rewrite %d' % REWRITE_VERSION in extract.extraction_key(rewritten)


def test_dct_scale_is_the_largest_ratio_that_keeps_the_input_size():
    card = registry.mobilenet_v1_card('0.25', 128)
    assert DCT_RATIOS[dct_scale((400, 350), card)] == 2
    assert DCT_RATIOS[dct_scale((255, 400), card)] == 1      # under twice on one side
    assert DCT_RATIOS[dct_scale((3000, 2250), card)] == 8
    assert DCT_RATIOS[dct_scale((1024, 1023), card)] == 4
    assert dct_scale(None, card) == 0
    crop = registry.VGG16                                     # 224, centre square
    assert DCT_RATIOS[dct_scale((2000, 500), crop)] == 2


def test_scaled_decode_sizes(tmp_path):
    import skimage.data
    image = skimage.data.astronaut()[:301, :403]     # a photo: smooth enough to average
    jpeg = tf.io.encode_jpeg(image).numpy()
    for ratio in DCT_RATIOS:
        decoded = decode_rgb_scaled(tf.constant(jpeg), ratio).numpy()
        assert decoded.shape == (-(-301 // ratio), -(-403 // ratio), 3)
        if ratio == 2:   # about the image's average over 2x2 blocks
            blocks = tf.io.decode_jpeg(jpeg).numpy()[:300, :402].reshape(150, 2, 201, 2, 3)
            assert np.abs(decoded[:150, :201].astype(float) - blocks.mean(axis=(1, 3))).mean() < 4


def test_fast_decode_vectors_are_close(mobilenet_backbone, photos):
    # the photos are about 500x375: ratio 2 at 128
    from tfgraft.records.image_check import inspect_image
    full = vectors(mobilenet_backbone, photos, sizes=None)
    sizes = [(inspect_image(p).width, inspect_image(p).height) for p in photos]
    fast = vectors(mobilenet_backbone, photos, sizes=sizes, fast_decode=True)
    assert not np.array_equal(full, fast)
    cosine = (full * fast).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(fast, axis=1)
    assert cosine.min() > 0.95, cosine


def test_fast_decode_run_keeps_other_formats_and_its_own_cache(tmp_path, mobilenet_backbone):
    import skimage.data
    photo = skimage.data.astronaut()          # 512x512: ratio 4 at 128
    for label in ('a', 'b'):
        os.makedirs(str(tmp_path / 'images' / label))
        with open(str(tmp_path / 'images' / label / 'photo.jpg'), 'wb') as handle:
            handle.write(tf.io.encode_jpeg(photo[:, ::-1] if label == 'a' else photo).numpy())
        with open(str(tmp_path / 'images' / label / 'picture.png'), 'wb') as handle:
            handle.write(tf.io.encode_png(photo[::-1] if label == 'a' else photo[::2]).numpy())
    out = str(tmp_path / 'records')
    full = extract.write_bottlenecks(str(tmp_path / 'images'), mobilenet_backbone, out,
                                     batch_size=2, progress=False)
    fast = extract.write_bottlenecks(str(tmp_path / 'images'), mobilenet_backbone, out,
                                     batch_size=2, progress=False, fast_decode=True)
    for manifest in (full, fast):
        assert sum(s['count'] for s in manifest['splits'].values()) == 4 and not manifest['skipped']
    assert fast['fast_decode'] and not full['fast_decode']
    assert fast['fingerprint'] != full['fingerprint']
    caches = [name for name in os.listdir(os.path.join(out, '.cache')) if name.startswith('vectors-')]
    assert len(caches) == 2


def test_bfloat16_refused_without_the_instructions(tmp_path):
    plain = tmp_path / 'cpuinfo'
    plain.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n')
    with pytest.raises(GraftError, match='AVX-512 BF16 or AMX'):
        check_precision('bfloat16', str(plain))
    check_precision('float32', str(plain))
    capable = tmp_path / 'cpuinfo_bf16'
    capable.write_text('flags\t\t: fpu avx512f avx512_bf16\n')
    check_precision('bfloat16', str(capable))
    rewrite = extract.session_config('bfloat16').graph_options.rewrite_options
    assert rewrite.auto_mixed_precision_onednn_bfloat16 == rewrite.ON
    assert extract.session_config().graph_options.rewrite_options \
        .auto_mixed_precision_onednn_bfloat16 != rewrite.ON


@pytest.mark.skipif(bool(cpu_flags() & {'avx512_bf16', 'amx_bf16'}),
                    reason='this CPU runs bfloat16: the refusal cannot be seen here')
def test_bottlenecks_command_refuses_bfloat16_in_one_line(tmp_path, mobilenet_pb):
    result = subprocess.run(
        [sys.executable, '-m', 'tfgraft.tools.cli', 'bottlenecks', '--image_dir', str(tmp_path),
         '--bottleneck_dir', str(tmp_path / 'out'), '--graph', mobilenet_pb,
         '--precision', 'bfloat16'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith('tfgraft: error:')]
    assert len(errors) == 1 and 'AVX-512 BF16 or AMX' in errors[0], result.stderr
    assert 'Traceback' not in result.stderr


def test_described_backbone_runs_the_graph_as_the_vectors_were_made(mobilenet_pb):
    from tfgraft.graphs.factory import describe, load_described
    rewritten = describe(load_frozen_backbone(mobilenet_pb))
    exact = describe(load_frozen_backbone(mobilenet_pb, exact_graph=True))
    assert rewritten['rewrite'] == REWRITE_VERSION and exact['rewrite'] == 0
    assert load_described(rewritten).rewrite_version == REWRITE_VERSION
    assert load_described(exact).rewrite_version == 0
    assert load_described(rewritten, exact_graph=True).rewrite_version == 0
    before = {key: value for key, value in rewritten.items() if key != 'rewrite'}
    assert load_described(before).rewrite_version == 0     # made before rewriting existed
