"""Two ways of computing bottlenecks on stock TensorFlow, as baselines for tfgraft.

  tutorial     retrain.py (MobileNet mode) per image: read the JPEG, one session.run
               for decode_jpeg -> float -> resize_bilinear -> (x - mean) / std, then
               one session.run of the imported frozen graph on that single image.
  handwritten  what a user who knows TensorFlow would write: a tf.data pipeline (read,
               decode_jpeg, resize_bilinear, scale; parallel map, batch, prefetch) fed
               into the frozen graph through input_map, one session.run per batch,
               vectors kept in memory (nothing written to disk).

Nothing of tfgraft is imported, so TensorFlow runs with its own default settings.
Prints one number: images/s, from reading the graph (tutorial: from the first image)
to the last vector.

    python benchmarks/stock_ways.py handwritten --graph frozen_graph.pb --input_size 224 IMAGE ...
"""
import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def read_graph_def(tf1, path):
    graph_def = tf1.GraphDef()
    with open(path, 'rb') as handle:
        graph_def.ParseFromString(handle.read())
    return graph_def


def tutorial(tf, args):
    tf1 = tf.compat.v1
    graph_def = read_graph_def(tf1, args.graph)
    with tf.Graph().as_default() as graph:
        bottleneck, resized_input = tf.import_graph_def(
            graph_def, name='', return_elements=[args.bottleneck_tensor, args.input_tensor])
        jpeg_data = tf1.placeholder(tf.string, name='DecodeJPGInput')
        decoded = tf.cast(tf.io.decode_jpeg(jpeg_data, channels=3), tf.float32)
        resized = tf1.image.resize_bilinear(decoded[tf.newaxis], [args.input_size, args.input_size])
        decoded_image = (resized - args.input_mean) * (1.0 / args.input_std)
    with tf1.Session(graph=graph) as sess:
        started = time.time()
        for path in args.images:
            with open(path, 'rb') as handle:
                image = sess.run(decoded_image, {jpeg_data: handle.read()})
            sess.run(bottleneck, {resized_input: image})
        return len(args.images) / (time.time() - started)


def handwritten(tf, args):
    import numpy as np
    tf1 = tf.compat.v1
    started = time.time()      # as tfgraft's cold run is timed: after TensorFlow's import
    graph_def = read_graph_def(tf1, args.graph)
    size = args.input_size

    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf1.image.resize_bilinear(image[tf.newaxis], [size, size])[0]
        return (image - args.input_mean) * (1.0 / args.input_std)

    with tf.Graph().as_default() as graph:
        dataset = tf.data.Dataset.from_tensor_slices(args.images).map(
            load, num_parallel_calls=tf.data.AUTOTUNE).batch(args.batch_size).prefetch(2)
        images = tf1.data.make_one_shot_iterator(dataset).get_next()
        images.set_shape([None, size, size, 3])
        bottleneck, = tf.import_graph_def(graph_def, input_map={args.input_tensor: images},
                                          return_elements=[args.bottleneck_tensor], name='')
    vectors = []
    with tf1.Session(graph=graph) as sess:
        while True:
            try:
                vectors.append(sess.run(bottleneck))
            except tf.errors.OutOfRangeError:
                break
    return len(np.concatenate(vectors)) / (time.time() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('way', choices=['tutorial', 'handwritten'])
    parser.add_argument('--graph', required=True)
    parser.add_argument('--input_tensor', default='input:0')
    parser.add_argument('--bottleneck_tensor', default='MobilenetV1/Logits/AvgPool_1a/AvgPool:0')
    parser.add_argument('--input_size', type=int, default=224)
    parser.add_argument('--input_mean', type=float, default=127.5)
    parser.add_argument('--input_std', type=float, default=127.5)
    parser.add_argument('--batch_size', type=int, default=64, help='handwritten only')
    parser.add_argument('images', nargs='+')
    args = parser.parse_args()

    import tensorflow as tf
    way = tutorial if args.way == 'tutorial' else handwritten
    print('%.3f' % way(tf, args))


if __name__ == '__main__':
    main()
