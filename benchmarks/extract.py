"""Bottleneck extraction speed on the real MobileNet v1 graphs and cats_and_dogs_filtered.

Every way runs once a round, the ways of a round one after the other, for --rounds
rounds; the figures are medians of rounds, and each ratio is taken inside its
round (its median printed). At least --images images a way (the 3000 photos,
repeated if fewer), images/s throughout.

For each graph of --graphs (default the 0.25/224 float and 0.75/224 8-bit releases):
  model file         the file's graph alone (--exact_graph) on a batch held in a variable
  model rewritten    the graph as tfgraft rewrites it at load (graphs/optimize.py), likewise
  handwritten        benchmarks/stock_ways.py handwritten: tf.data + input_map on stock
                     TensorFlow, in a child process, vectors kept in memory
  cold               tfgraft write_bottlenecks into an empty folder (defaults)
  cold exact         ... with --exact_graph
  cold fast          ... with --fast_decode
  cold bfloat16      ... with --precision bfloat16, where the CPU has it
Decoding alone (tfgraft's image_batches), at full size and with DCT scaling:
  on the cats/dogs photos at 128 input, and on --phone_images of them upscaled to
  3000x2250 (made here, in a temporary folder) at 224 input.
With --tutorial_images N > 0, also retrain.py's per-image way on the 0.25/128
graph (benchmarks/stock_ways.py tutorial) and tfgraft cold and cached on it.
No assertion: the figures are the result.

usage: python benchmarks/extract.py [--rounds 5] [--images 3000] [--phone_images 300]
           [--batch_size 64] [--graphs DIR ...] [--tutorial_images 0]
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

from tfgraft.graphs import registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.precision import check_precision
from tfgraft.records.decode import DCT_RATIOS, dct_scale
from tfgraft.records.extract import image_batches, session_config, write_bottlenecks
from tfgraft.records.image_check import inspect_image
from tfgraft.records.listing import list_images

GRAPHS = ('mobilenet_v1_0.25_224/frozen_graph.pb', 'mobilenet_v1_0.75_224/quantized_graph.pb')

tf1 = tf.compat.v1


def assets_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(here, '..', '..', 'shared', 'assets')


def stock_way(way, graph, card, paths, batch_size=1):
    """benchmarks/stock_ways.py (`tutorial` or `handwritten`) on stock TensorFlow, in a
    child process."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stock_ways.py')
    low, high = card.input_range
    command = [sys.executable, script, way, '--graph', graph, '--input_tensor', card.input_tensor,
               '--bottleneck_tensor', card.bottleneck_tensor, '--input_size', str(card.input_size[0]),
               '--input_mean', str(-low * 255.0 / (high - low)), '--input_std', str(255.0 / (high - low)),
               '--batch_size', str(batch_size)]
    output = subprocess.run(command + list(paths), env=STOCK_ENVIRONMENT, check=True,
                            stdout=subprocess.PIPE, universal_newlines=True).stdout
    return float(output.split()[-1])


def decode_only(card, paths, batch_size, sizes=None):
    """tfgraft's decoding pipeline alone; sizes (width, height) of each file: DCT scaling."""
    groups = [[] for _ in DCT_RATIOS]
    for i, size in enumerate(sizes or [None] * len(paths)):
        groups[dct_scale(size, card)].append(i)
    with tf.Graph().as_default() as graph:
        files = [(np.array(group, np.int64), tf.constant([paths[i] for i in group], tf.string))
                 for group in groups]
        dataset = image_batches(files[0][0], files[0][1], card, batch_size, scaled=files[1:])
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


def model_only(backbone, count, batch_size, config=None):
    """The backbone alone, images/s; config: the session's (default: extraction's)."""
    card = backbone.card
    rng = np.random.RandomState(0)
    batch = rng.uniform(-1, 1, [batch_size] + list(card.input_size) + [3]).astype(np.float32)
    with tf.Graph().as_default() as graph:
        # A variable, not a constant: Grappler would fold a constant input's whole network.
        images = tf1.Variable(batch, trainable=False)
        bottleneck = tf.reduce_sum(backbone.build(tf.identity(images)))
        initialize = tf1.global_variables_initializer()
    with tf1.Session(graph=graph, config=config or session_config()) as sess:
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


def jpeg_sizes(paths):
    """(width, height) of each JPEG, None for other files: what --fast_decode is given."""
    infos = map(inspect_image, paths)
    return [(i.width, i.height) if i.format == 'jpeg' else None for i in infos]


def median(values):
    return float(np.median(values))


def phone_photos(paths, folder, count, size=(2250, 3000)):
    """The first `count` photos upscaled to about phone size (3000x2250), as JPEGs."""
    made = []
    with tf.Graph().as_default() as graph:
        contents = tf1.placeholder(tf.string)
        image = tf.io.decode_jpeg(contents, channels=3)
        big = tf.cast(tf.clip_by_value(tf1.image.resize_bilinear(image[tf.newaxis], size)[0],
                                       0, 255), tf.uint8)
        encoded = tf.io.encode_jpeg(big, quality=90)
    with tf1.Session(graph=graph) as session:
        for i, path in enumerate(paths[:count]):
            target = os.path.join(folder, 'phone_%04d.jpg' % i)
            with open(path, 'rb') as handle:
                data = session.run(encoded, {contents: handle.read()})
            with open(target, 'wb') as handle:
                handle.write(data)
            made.append(target)
    return made


def at_least(paths, count):
    """`paths` repeated up to `count` entries."""
    return (paths * (-(-count // len(paths))))[:count]


def cold_run(image_dir, backbone, batch_size, count, **options):
    with tempfile.TemporaryDirectory() as out:
        started = time.time()
        write_bottlenecks(image_dir, backbone, out, batch_size=batch_size, progress=False, **options)
        return count / (time.time() - started)


def print_table(title, runs, ratios):
    print()
    print('### ' + title)
    print('| way | images/s (median) | every round |')
    print('|---|---:|---|')
    for name, values in runs.items():
        print('| %s | %.1f | %s |' % (name, median(values), ' '.join('%.0f' % v for v in values)))
    print()
    print('| ratio (inside each round) | median | every round |')
    print('|---|---:|---|')
    for name, (a, b) in ratios.items():
        values = [x / y for x, y in zip(runs[a], runs[b])]
        print('| %s | %.2f | %s |' % (name, median(values), ' '.join('%.2f' % v for v in values)))
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--images', type=int, default=3000, help='images a way (at least)')
    parser.add_argument('--phone_images', type=int, default=300,
                        help='photos upscaled to 3000x2250 for the phone-size decode')
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--graphs', nargs='+', default=list(GRAPHS))
    parser.add_argument('--tutorial_images', type=int, default=0,
                        help='also the tutorial way on 0.25/128, on this many images (0: not)')
    args = parser.parse_args()
    image_dir = os.path.join(assets_root(), 'cats_and_dogs_filtered')
    listing = list_images(image_dir)
    photos = [os.path.join(listing.image_dir, e.path) for e in listing.entries]
    # spread over the classes when fewer images than photos are asked for
    paths = at_least(photos[::max(1, len(photos) // args.images)], args.images)
    sizes = jpeg_sizes(paths)
    try:
        check_precision('bfloat16')
        bfloat16 = True
    except GraftError as error:
        print('cold bfloat16 not run: %s' % error, file=sys.stderr)
        bfloat16 = False
    print('%d images a way, %d rounds, batch %d, %d cores' % (
        len(paths), args.rounds, args.batch_size, os.cpu_count()), file=sys.stderr)

    # Decoding alone.
    card_128 = registry.mobilenet_v1_card('0.25', 128)
    card_224 = registry.mobilenet_v1_card('0.25', 224)
    with tempfile.TemporaryDirectory() as phone_dir:
        phones = phone_photos(photos, phone_dir, args.phone_images)
        phone_sizes = jpeg_sizes(phones)
        runs = {name: [] for name in ('decode full 128', 'decode dct 128',
                                      'decode full 224 phone', 'decode dct 224 phone')}
        for _ in range(args.rounds):
            runs['decode full 128'].append(decode_only(card_128, paths, args.batch_size))
            runs['decode dct 128'].append(decode_only(card_128, paths, args.batch_size, sizes))
            runs['decode full 224 phone'].append(decode_only(card_224, phones, args.batch_size))
            runs['decode dct 224 phone'].append(
                decode_only(card_224, phones, args.batch_size, phone_sizes))
        print_table('decode (%d photos at 128; %d photos of %dx%d at 224)' % (
            len(paths), len(phones), phone_sizes[0][0], phone_sizes[0][1]), runs, {
                'dct / full, 128 (>= 1.5)': ('decode dct 128', 'decode full 128'),
                'dct / full, 224 phone (>= 3)': ('decode dct 224 phone', 'decode full 224 phone')})

    # A folder of `paths` for the cold runs: links to the photos, repeated as needed.
    with tempfile.TemporaryDirectory() as linked:
        for i, path in enumerate(paths):
            label = os.path.basename(os.path.dirname(path))
            os.makedirs(os.path.join(linked, label), exist_ok=True)
            # a copy's bytes differ from its original, or the repeats would be duplicates
            target = os.path.join(linked, label, '%05d.jpg' % i)
            with open(path, 'rb') as source, open(target, 'wb') as handle:
                handle.write(source.read() + (b'' if i < len(photos) else str(i).encode()))
        for relative in args.graphs:
            graph = os.path.join(assets_root(), relative)
            _, depth, size = os.path.dirname(relative).rsplit('_', 2)
            card = registry.mobilenet_v1_card(depth, int(size))
            exact = load_frozen_backbone(graph, card=card, exact_graph=True)
            runs = {name: [] for name in ('model file', 'model rewritten', 'handwritten', 'cold',
                                          'cold exact', 'cold fast') + (('cold bfloat16',) if bfloat16 else ())}
            for _ in range(args.rounds):
                rewritten = load_frozen_backbone(graph, card=card)    # rewritten in each cold run
                runs['model file'].append(model_only(exact, len(paths), args.batch_size))
                runs['model rewritten'].append(model_only(rewritten, len(paths), args.batch_size))
                runs['handwritten'].append(stock_way('handwritten', graph, card, paths, args.batch_size))
                runs['cold'].append(cold_run(linked, load_frozen_backbone(graph, card=card),
                                             args.batch_size, len(paths)))
                runs['cold exact'].append(cold_run(linked, exact, args.batch_size, len(paths)))
                runs['cold fast'].append(cold_run(linked, load_frozen_backbone(graph, card=card),
                                                  args.batch_size, len(paths), fast_decode=True))
                if bfloat16:
                    runs['cold bfloat16'].append(cold_run(
                        linked, load_frozen_backbone(graph, card=card), args.batch_size,
                        len(paths), precision='bfloat16'))
            ratios = {'model rewritten / file (>= 1.3 on float)': ('model rewritten', 'model file'),
                      'cold / handwritten (>= 1.5 on 0.25/224)': ('cold', 'handwritten'),
                      'cold exact / handwritten': ('cold exact', 'handwritten'),
                      'cold fast / handwritten': ('cold fast', 'handwritten'),
                      'cold / cold exact': ('cold', 'cold exact')}
            if bfloat16:
                ratios['cold bfloat16 / cold'] = ('cold bfloat16', 'cold')
            print_table('%s, %d images at %s' % (card.name, len(paths), size), runs, ratios)

    if args.tutorial_images:
        tutorial_section(image_dir, args)


def tutorial_section(image_dir, args):
    """The former benchmark: tutorial, cold and cached on 0.25/128."""
    graph = os.path.join(assets_root(), 'mobilenet_v1_0.25_128', 'frozen_graph.pb')
    backbone = load_frozen_backbone(graph)
    images = list_images(image_dir)
    paths = [os.path.join(images.image_dir, e.path) for e in images.entries]
    runs = {name: [] for name in ('tutorial', 'cold', 'cached')}
    for _ in range(args.rounds):
        runs['tutorial'].append(stock_way('tutorial', graph, backbone.card, paths[:args.tutorial_images]))
        with tempfile.TemporaryDirectory() as out:
            started = time.time()
            write_bottlenecks(image_dir, backbone, out, batch_size=args.batch_size, progress=False)
            runs['cold'].append(len(paths) / (time.time() - started))
            started = time.time()
            write_bottlenecks(image_dir, backbone, out, batch_size=args.batch_size, progress=False)
            runs['cached'].append(len(paths) / (time.time() - started))
    print_table('mobilenet_v1_0.25_128: tutorial, cold, cached', runs, {
        'cold / tutorial (>= 2.5)': ('cold', 'tutorial'), 'cached / cold (>= 20)': ('cached', 'cold')})


if __name__ == '__main__':
    main()
