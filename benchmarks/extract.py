"""Bottleneck extraction speed on the real MobileNet v1 0.25/128 graph and cats_and_dogs_filtered.

Prints images/s, all measured in this one run, for:
  tutorial   retrain.py's way on stock TensorFlow (benchmarks/tutorial_way.py, run in a
             child process): decode and resize per image (one sess.run), then one
             sess.run of the model per image
  cold       tfgraft write_bottlenecks into an empty folder (listing, hashing, records included)
  cached     tfgraft write_bottlenecks again (nothing new)
  model      the backbone alone on preloaded preprocessed batches
  decode     tfgraft's own tf.data read/decode/resize pipeline (image_batches) alone
and the ratios the targets are stated in. No assertion: the figures are the result.

usage: python benchmarks/extract.py [--tutorial_images 300] [--batch_size 64] [--repeats 5]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from tfgraft.tools.cli import configure_tensorflow

STOCK_ENVIRONMENT = dict(os.environ)      # before tfgraft's settings: the tutorial's baseline
configure_tensorflow()                    # what `tfgraft bottlenecks` runs with

import numpy as np  # noqa: E402  (TensorFlow reads its settings when first imported)
import tensorflow as tf  # noqa: E402

from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.records.extract import image_batches, session_config, write_bottlenecks
from tfgraft.records.listing import list_images

tf1 = tf.compat.v1


def assets_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(here, '..', '..', 'shared', 'assets')


def tutorial_way(graph, card, paths):
    """retrain.py's per-image loop on stock TensorFlow, in a child process."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tutorial_way.py')
    low, high = card.input_range
    command = [sys.executable, script, '--graph', graph, '--input_tensor', card.input_tensor,
               '--bottleneck_tensor', card.bottleneck_tensor, '--input_size', str(card.input_size[0]),
               '--input_mean', str(-low * 255.0 / (high - low)), '--input_std', str(255.0 / (high - low))]
    output = subprocess.run(command + list(paths), env=STOCK_ENVIRONMENT, check=True,
                            stdout=subprocess.PIPE, universal_newlines=True).stdout
    return float(output.split()[-1])


def decode_only(card, paths, batch_size):
    with tf.Graph().as_default() as graph:
        dataset = image_batches(np.arange(len(paths)), paths, card, batch_size)
        _, batch = tf1.data.make_one_shot_iterator(dataset).get_next()
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
    with tf1.Session(graph=graph, config=session_config()) as sess:    # as extraction runs it
        sess.run(initialize)
        sess.run(bottleneck)
        runs = max(1, count // batch_size)
        started = time.time()
        for _ in range(runs):
            sess.run(bottleneck)
        return runs * batch_size / (time.time() - started)


def bound(decode, model):
    """Images/s of decoding then running the model, one after the other."""
    return 1.0 / (1.0 / decode + 1.0 / model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tutorial_images', type=int, default=300)
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5, help='runs of each way; the best is kept')
    args = parser.parse_args()
    image_dir = os.path.join(assets_root(), 'cats_and_dogs_filtered')
    graph = os.path.join(assets_root(), 'mobilenet_v1_0.25_128', 'frozen_graph.pb')
    backbone = load_frozen_backbone(graph)
    images = list_images(image_dir)
    paths = [os.path.join(images.image_dir, e.path) for e in images.entries]
    print('%d images, %s, batch %d, %d cores' % (len(paths), backbone.card.name, args.batch_size,
                                                 os.cpu_count()), file=sys.stderr)

    def cold_and_cached():
        with tempfile.TemporaryDirectory() as out:
            started = time.time()
            write_bottlenecks(image_dir, backbone, out, batch_size=args.batch_size, progress=False)
            cold = len(paths) / (time.time() - started)
            started = time.time()
            write_bottlenecks(image_dir, backbone, out, batch_size=args.batch_size, progress=False)
            return cold, len(paths) / (time.time() - started)

    # Each way is measured --repeats times, interleaved, and its best run kept: on a
    # shared 2-core machine a single run can lose a third of its speed to the neighbours.
    runs = {name: [] for name in ('tutorial', 'cold', 'cached', 'model', 'decode')}
    for _ in range(args.repeats):
        runs['decode'].append(decode_only(backbone.card, paths, args.batch_size))
        runs['model'].append(model_only(backbone, len(paths), args.batch_size))
        runs['tutorial'].append(tutorial_way(graph, backbone.card, paths[:args.tutorial_images]))
        cold, cached = cold_and_cached()
        runs['cold'].append(cold)
        runs['cached'].append(cached)
    figures = {name: max(values) for name, values in runs.items()}
    both = bound(figures['decode'], figures['model'])

    print('| way | images/s (best) | every run |')
    print('|---|---:|---|')
    for name in ('tutorial', 'cold', 'cached', 'model', 'decode'):
        print('| %s | %.1f | %s |' % (name, figures[name], ' '.join('%.0f' % v for v in runs[name])))
    print('| bound 1/(1/decode + 1/model) | %.1f | |' % both)
    print()
    print('| ratio | value | target |')
    print('|---|---:|---:|')
    print('| cold / tutorial | %.2f | >= 2.5 |' % (figures['cold'] / figures['tutorial']))
    print('| cold / bound | %.2f | >= 0.9 |' % (figures['cold'] / both))
    print('| cached / cold | %.1f | >= 20 |' % (figures['cached'] / figures['cold']))
    # The bests above can come from different moments of a shared machine; each round's
    # ways ran within seconds of each other, so a round's own ratio is the steadier figure.
    rounds = [cold / bound(decode, model)
              for cold, decode, model in zip(runs['cold'], runs['decode'], runs['model'])]
    print()
    print('cold / bound in each round: %s (median %.2f)'
          % (' '.join('%.2f' % r for r in rounds), float(np.median(rounds))))


if __name__ == '__main__':
    main()
