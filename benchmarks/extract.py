"""Bottleneck extraction speed on the real MobileNet v1 0.25/128 graph and cats_and_dogs_filtered.

Prints images/s, all measured in this one run, for:
  tutorial   decode and resize per image (one sess.run), then one sess.run per image
  cold       tfgraft write_bottlenecks into an empty folder (listing, hashing, records included)
  cached     tfgraft write_bottlenecks again (nothing new)
  model      the backbone alone on preloaded preprocessed batches
  decode     the tf.data read/decode/resize pipeline alone
and the ratios the targets are stated in. No assertion: the figures are the result.

usage: python benchmarks/extract.py [--tutorial_images 300] [--batch_size 64]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.records.decode import decode_rgb, load_rgb
from tfgraft.records.extract import write_bottlenecks
from tfgraft.records.listing import list_images

tf1 = tf.compat.v1


def assets_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(here, '..', '..', 'shared', 'assets')


def tutorial_way(backbone, paths):
    """label_image.py style: a decode/resize session run, then a model session run, per image."""
    card = backbone.card
    with tf.Graph().as_default() as graph:
        contents = tf1.placeholder(tf.string, [])
        image = preprocess_image(decode_rgb(contents), card)[tf.newaxis]
        images = tf1.placeholder(tf.float32, [None] + list(card.input_size) + [3])
        bottleneck = backbone.build(images)
    with tf1.Session(graph=graph) as sess:
        started = time.time()
        for path in paths:
            with open(path, 'rb') as handle:
                pixels = sess.run(image, {contents: handle.read()})
            sess.run(bottleneck, {images: pixels})
        return len(paths) / (time.time() - started)


def decode_only(card, paths, batch_size):
    with tf.Graph().as_default() as graph:
        dataset = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda p: preprocess_image(load_rgb(p), card), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False).batch(batch_size).prefetch(2)
        batch = tf1.data.make_one_shot_iterator(dataset).get_next()
        total = tf.reduce_sum(batch)
    with tf1.Session(graph=graph) as sess:
        started = time.time()
        while True:
            try:
                sess.run(total)
            except tf.errors.OutOfRangeError:
                break
        return len(paths) / (time.time() - started)


def model_only(backbone, count, batch_size):
    card = backbone.card
    rng = np.random.RandomState(0)
    batch = rng.uniform(-1, 1, [batch_size] + list(card.input_size) + [3]).astype(np.float32)
    with tf.Graph().as_default() as graph:
        # A variable, not a constant: Grappler would fold a constant input's whole network.
        images = tf1.Variable(batch, trainable=False)
        bottleneck = tf.reduce_sum(backbone.build(tf.identity(images)))
        initialize = tf1.global_variables_initializer()
    with tf1.Session(graph=graph) as sess:
        sess.run(initialize)
        sess.run(bottleneck)
        runs = max(1, count // batch_size)
        started = time.time()
        for _ in range(runs):
            sess.run(bottleneck)
        return runs * batch_size / (time.time() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tutorial_images', type=int, default=300)
    parser.add_argument('--batch_size', type=int, default=64)
    args = parser.parse_args()
    image_dir = os.path.join(assets_root(), 'cats_and_dogs_filtered')
    graph = os.path.join(assets_root(), 'mobilenet_v1_0.25_128', 'frozen_graph.pb')
    backbone = load_frozen_backbone(graph)
    images = list_images(image_dir)
    paths = [os.path.join(images.image_dir, e.path) for e in images.entries]
    print('%d images, %s, batch %d, %d cores' % (len(paths), backbone.card.name, args.batch_size,
                                                 os.cpu_count()), file=sys.stderr)

    figures = {}
    figures['decode'] = decode_only(backbone.card, paths, args.batch_size)
    figures['model'] = model_only(backbone, len(paths), args.batch_size)
    figures['tutorial'] = tutorial_way(backbone, paths[:args.tutorial_images])
    with tempfile.TemporaryDirectory() as out:
        started = time.time()
        write_bottlenecks(image_dir, backbone, out, batch_size=args.batch_size, progress=False)
        figures['cold'] = len(paths) / (time.time() - started)
        started = time.time()
        write_bottlenecks(image_dir, backbone, out, batch_size=args.batch_size, progress=False)
        figures['cached'] = len(paths) / (time.time() - started)
    bound = 1.0 / (1.0 / figures['decode'] + 1.0 / figures['model'])

    print('| way | images/s |')
    print('|---|---:|')
    for name in ('tutorial', 'cold', 'cached', 'model', 'decode'):
        print('| %s | %.1f |' % (name, figures[name]))
    print('| bound 1/(1/decode + 1/model) | %.1f |' % bound)
    print()
    print('| ratio | value | target |')
    print('|---|---:|---:|')
    print('| cold / tutorial | %.2f | >= 2.5 |' % (figures['cold'] / figures['tutorial']))
    print('| cold / bound | %.2f | >= 0.9 |' % (figures['cold'] / bound))
    print('| cached / cold | %.1f | >= 20 |' % (figures['cached'] / figures['cold']))


if __name__ == '__main__':
    main()
