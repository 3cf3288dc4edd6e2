"""Bottleneck extraction speed of the .npy-built networks, at full size, random weights.

For AlexNet (to relu7) and VGG16 (to relu6): graph construction time, the
first sess.run (session start: Grappler's passes over the weight constants),
then images/s fed as batches (--batch_size per sess.run) against one image per
sess.run, the way the tutorials fed them. Measured twice: in a default session
(as records/extract.py makes) and in one with Grappler off.

usage: python benchmarks/npy_extract.py [--batch_size 32] [--batches 2] [--single_images 16]
"""
import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402

from tfgraft.graphs.networks import get_network  # noqa: E402
from tfgraft.graphs.npy_standin import standin_weights  # noqa: E402

tf1 = tf.compat.v1
LAYERS = {'alexnet': 'relu7', 'vgg16': 'relu6'}


def session_config(grappler):
    rewrite = rewriter_config_pb2.RewriterConfig(disable_meta_optimizer=not grappler)
    return tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))


def images_per_second(sess, output, images, pixels, per_run, runs):
    started = time.time()
    for run in range(runs):
        start = (run * per_run) % (len(pixels) - per_run + 1)
        sess.run(output, {images: pixels[start:start + per_run]})
    return per_run * runs / (time.time() - started)


def measure(network, weights, args, grappler):
    spec = get_network(network)
    size = spec.input_size
    pixels = np.random.default_rng(0).uniform(-120, 135, (args.batch_size, size, size, 3))
    pixels = pixels.astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, size, size, 3], name='input')
        started = time.time()
        _, end_points = spec.builder(images, weights, last_layer=LAYERS[network])
        output = end_points[LAYERS[network]]
        build_seconds = time.time() - started
    with tf1.Session(graph=graph, config=session_config(grappler)) as sess:
        started = time.time()
        sess.run(output, {images: pixels[:1]})
        first_run_seconds = time.time() - started
        sess.run(output, {images: pixels})                       # warm the batch size too
        batched = images_per_second(sess, output, images, pixels, args.batch_size, args.batches)
        single = images_per_second(sess, output, images, pixels, 1, args.single_images)
    return build_seconds, first_run_seconds, batched, single


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch_size', type=int, default=32)
    parser.add_argument('--batches', type=int, default=2, help='batched runs timed')
    parser.add_argument('--single_images', type=int, default=16, help='one-image runs timed')
    parser.add_argument('--networks', nargs='+', default=['alexnet', 'vgg16'])
    args = parser.parse_args()
    print('cores: %d, batch %d' % (os.cpu_count(), args.batch_size))
    print('| network (layer) | Grappler | build s | first run s | batched img/s '
          '| one-per-run img/s | speed-up |')
    print('|' + '---|' * 7)
    for network in args.networks:
        weights = standin_weights(network)
        for grappler in (True, False):
            build, first, batched, single = measure(network, weights, args, grappler)
            print('| %s (%s) | %s | %.1f | %.1f | %.1f | %.1f | %.2fx |'
                  % (network, LAYERS[network], 'on' if grappler else 'off', build, first,
                     batched, single, batched / single), flush=True)


if __name__ == '__main__':
    main()
