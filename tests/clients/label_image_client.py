"""A client that knows nothing of tfgraft: TensorFlow for Poets' label_image.py, written here.

It takes label_image.py's flags and does what that script does (import the
graph under the `import/` prefix, decode, cast to float, resize_bilinear to
--input_height x --input_width, (x - input_mean) / input_std, run
--output_layer), then also runs the graph the way a generic client does: it
reads the rank TensorFlow gives `DecodeJpeg/contents` and feeds one file's
bytes if it is a scalar, [bytes] otherwise. Prints one JSON line:
{"labels": [...], "float_input": [[...]...], "bytes_input": [[...]...], "contents_rank": r}.
"""
import argparse
import json
import sys

sys.modules['tfgraft'] = None      # tfgraft must not be importable here
import tensorflow as tf            # noqa: E402

tf1 = tf.compat.v1


def load_graph(model_file):
    graph = tf.Graph()
    graph_def = tf1.GraphDef()
    with open(model_file, 'rb') as handle:
        graph_def.ParseFromString(handle.read())
    with graph.as_default():
        tf.import_graph_def(graph_def)
    return graph


def read_tensor_from_image_file(file_name, input_height, input_width, input_mean, input_std):
    with tf.Graph().as_default():
        image = tf.image.decode_jpeg(tf.io.read_file(file_name), channels=3)
        batch = tf.expand_dims(tf.cast(image, tf.float32), 0)
        resized = tf1.image.resize_bilinear(batch, [input_height, input_width])
        normalized = tf.divide(tf.subtract(resized, [input_mean]), [input_std])
        with tf1.Session() as session:
            return session.run(normalized)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--image', action='append', required=True)
    parser.add_argument('--graph', required=True)
    parser.add_argument('--labels', required=True)
    parser.add_argument('--input_height', type=int, default=224)
    parser.add_argument('--input_width', type=int, default=224)
    parser.add_argument('--input_mean', type=float, default=128)
    parser.add_argument('--input_std', type=float, default=128)
    parser.add_argument('--input_layer', default='input')
    parser.add_argument('--output_layer', default='final_result')
    args = parser.parse_args()
    graph = load_graph(args.graph)
    input_tensor = graph.get_operation_by_name('import/' + args.input_layer).outputs[0]
    output_tensor = graph.get_operation_by_name('import/' + args.output_layer).outputs[0]
    contents = graph.get_tensor_by_name('import/DecodeJpeg/contents:0')
    rank = contents.shape.rank
    float_rows, bytes_rows = [], []
    with tf1.Session(graph=graph) as session:
        for path in args.image:
            tensor = read_tensor_from_image_file(path, args.input_height, args.input_width,
                                                 args.input_mean, args.input_std)
            float_rows.append(session.run(output_tensor, {input_tensor: tensor})[0].tolist())
            with open(path, 'rb') as handle:
                data = handle.read()
            fed = data if rank == 0 else [data]
            bytes_rows.append(session.run(output_tensor, {contents: fed})[0].tolist())
    labels = [line.rstrip() for line in open(args.labels, encoding='utf-8')]
    print(json.dumps({'labels': labels, 'float_input': float_rows, 'bytes_input': bytes_rows,
                      'contents_rank': rank}))


if __name__ == '__main__':
    main()
