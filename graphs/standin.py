"""Stand-in frozen graphs: the real graphs' node names and shapes, random weights.

The 95 MB Inception-v3 2015 graph cannot be had here, so tests build one with
the same JPEG front end (DecodeJpeg/contents -> DecodeJpeg -> Cast ->
ExpandDims -> ResizeBilinear -> Sub -> Mul), the same bottleneck (pool_3 8x8
average pool -> pool_3/_reshape [1, 2048]) and softmax head, and a few
strided convolutions in between instead of the Inception towers.
"""
import numpy as np
import tensorflow as tf

from tfgraft.graphs import registry
from tfgraft.records.atomic import atomic_write_bytes

tf1 = tf.compat.v1

# (name, kernel, stride, output channels, then max-pool 3x3/2?): 299 -> 8x8
INCEPTION_STANDIN_LAYERS = (
    ('conv', 3, 2, 16, True),      # 149 -> 74
    ('conv_1', 3, 2, 32, True),    # 36 -> 17
    ('conv_2', 3, 2, 2048, False),  # 8
)


def _conv_const(rng, name, kernel, in_channels, out_channels):
    scale = np.sqrt(2.0 / (kernel * kernel * in_channels))
    weights = rng.normal(0.0, scale, (kernel, kernel, in_channels, out_channels))
    return tf.constant(weights.astype(np.float32), name=name + '/conv2d_params')


def build_inception_standin_graph_def(seed=0, num_classes=1008):
    rng = np.random.RandomState(seed)
    graph = tf.Graph()
    with graph.as_default():
        contents = tf1.placeholder(tf.string, [], name='DecodeJpeg/contents')
        image = tf.io.decode_jpeg(contents, channels=3, name='DecodeJpeg')
        pixels = tf.cast(image, tf.float32, name='Cast')
        batch = tf.expand_dims(pixels, 0, name='ExpandDims')
        resized = tf.raw_ops.ResizeBilinear(
            images=batch, size=tf.constant([299, 299], name='ResizeBilinear/size'),
            align_corners=False, half_pixel_centers=False, name='ResizeBilinear')
        centred = tf.subtract(resized, tf.constant(128.0, name='Sub/y'), name='Sub')
        net = tf.multiply(centred, tf.constant(1.0 / 128.0, name='Mul/y'), name='Mul')
        channels = 3
        for name, kernel, stride, out_channels, pool in INCEPTION_STANDIN_LAYERS:
            weights = _conv_const(rng, name, kernel, channels, out_channels)
            net = tf.nn.conv2d(net, weights, stride, 'VALID', name=name + '/Conv2D')
            net = tf.nn.relu(net, name=name)
            if pool:
                net = tf.nn.max_pool2d(net, 3, 2, 'VALID', name=name.replace('conv', 'pool'))
            channels = out_channels
        pool_3 = tf.nn.avg_pool2d(net, 8, 1, 'VALID', name='pool_3')
        flat = tf.reshape(pool_3, tf.constant([1, 2048], name='pool_3/_reshape/shape'),
                          name='pool_3/_reshape')
        softmax_weights = tf.constant(
            rng.normal(0, 0.01, (2048, num_classes)).astype(np.float32), name='softmax/weights')
        softmax_biases = tf.constant(np.zeros(num_classes, np.float32), name='softmax/biases')
        logits = tf.nn.bias_add(tf.matmul(flat, softmax_weights, name='softmax/logits/MatMul'),
                                softmax_biases, name='softmax/logits')
        tf.nn.softmax(logits, name='softmax')
    return graph.as_graph_def()


def write_inception_standin(path, seed=0):
    atomic_write_bytes(path, build_inception_standin_graph_def(seed).SerializeToString())
    return registry.INCEPTION_V3
