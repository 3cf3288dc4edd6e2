"""The tutorials' way of computing bottlenecks, on stock TensorFlow, as a baseline.

retrain.py (MobileNet mode) per image: read the JPEG, one session.run for
decode_jpeg -> float -> resize_bilinear -> (x - mean) / std, then one
session.run of the imported frozen graph on that single image. Nothing of
tfgraft is imported, so TensorFlow runs with its own default settings.
Prints one number: images/s.

    python benchmarks/tutorial_way.py --graph frozen_graph.pb --input_size 128 IMAGE [IMAGE ...]
"""
import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--graph', required=True)
    parser.add_argument('--input_tensor', default='input:0')
    parser.add_argument('--bottleneck_tensor', default='MobilenetV1/Logits/AvgPool_1a/AvgPool:0')
    parser.add_argument('--input_size', type=int, default=128)
    parser.add_argument('--input_mean', type=float, default=127.5)
    parser.add_argument('--input_std', type=float, default=127.5)
    parser.add_argument('images', nargs='+')
    args = parser.parse_args()

    import tensorflow as tf
    tf1 = tf.compat.v1
    graph_def = tf1.GraphDef()
    with open(args.graph, 'rb') as handle:
        graph_def.ParseFromString(handle.read())
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
        print('%.3f' % (len(args.images) / (time.time() - started)))


if __name__ == '__main__':
    main()
