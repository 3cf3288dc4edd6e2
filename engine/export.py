"""One deployable frozen graph: image bytes or an image batch in, backbone + head, final_result out.

Inputs of the exported GraphDef:
    DecodeJpeg/contents:0   string scalar: one image file's bytes (JPEG, PNG,
                            GIF, BMP), decoded and preprocessed in the graph
    input:0                 float32 [N, h, w, 3], already preprocessed (feed
                            it instead of the bytes for a batch)
    BottleneckInputPlaceholder:0   float32 [N, D] bottlenecks, to skip the backbone
Output: final_result:0 (or --final_tensor_name), per-class probabilities.
Only stock TensorFlow ops: it runs with plain TensorFlow, no tfgraft needed.
The GraphDef carries a current producer version (engine/graph_versions.py), so
TensorFlow reads the placeholders' declared shapes back (a scalar, not "unknown").
A sidecar <graph>.serving.json describes the tensors, the card and the classes.
SavedModel and TFLite exports: engine/saved_model_export.py, engine/tflite_export.py.
"""
import os

import tensorflow as tf

from tfgraft.engine import model_dir as model_dirs
from tfgraft.engine.estimator import ModeKeys
from tfgraft.engine.graph_versions import declare_current_producer
from tfgraft.engine.heads import model_fn
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.records.atomic import atomic_write_bytes, atomic_write_json
from tfgraft.records.decode import decode_rgb

tf1 = tf.compat.v1

IMAGE_BYTES_INPUT = 'DecodeJpeg/contents'
IMAGE_BATCH_INPUT = 'input'
BOTTLENECK_INPUT = 'BottleneckInputPlaceholder'


def build_serving_graph(backbone, params, final_tensor_name='final_result'):
    """Add inputs, backbone and head to the default graph; returns the output tensor."""
    card = backbone.card
    height, width = card.input_size
    contents = tf1.placeholder(tf.string, [], name=IMAGE_BYTES_INPUT)
    one_image = preprocess_image(decode_rgb(contents), card)[tf.newaxis]
    images = tf1.placeholder_with_default(one_image, [None, height, width, 3], name=IMAGE_BATCH_INPUT)
    return build_classifier(backbone, params, images, final_tensor_name)


def build_classifier(backbone, params, images, final_tensor_name='final_result'):
    """Backbone + head on a float image batch [N, h, w, 3]; returns the probabilities."""
    bottlenecks = backbone.build(images, 'backbone')
    spec = model_fn({'bottleneck': bottlenecks}, None, ModeKeys.PREDICT, params)
    output = spec.predictions['probabilities']
    if output.op.name != final_tensor_name:
        output = tf.identity(output, name=final_tensor_name)
    return output


def serving_description(params, final_tensor_name, labels_path):
    card = params['graph']['card']
    height, width = card['input_size']
    return {
        'inputs': {
            IMAGE_BYTES_INPUT + ':0': {'dtype': 'string', 'shape': [],
                                       'holds': 'one image file\'s bytes (JPEG, PNG, GIF or BMP)'},
            IMAGE_BATCH_INPUT + ':0': {'dtype': 'float32', 'shape': [None, height, width, 3],
                                       'holds': 'preprocessed images: %s, resized (%s) to %dx%d, '
                                                'pixel 0 -> %g, 255 -> %g, mean %s subtracted'
                                                % (card['channel_order'], card['resize'], height,
                                                   width, card['input_range'][0],
                                                   card['input_range'][1], card['channel_mean'] or 'none')},
            BOTTLENECK_INPUT + ':0': {'dtype': 'float32', 'shape': [None, params['bottleneck_size']],
                                      'holds': 'bottleneck vectors of %s' % card['name']},
        },
        'outputs': {final_tensor_name + ':0': {'dtype': 'float32', 'shape': [None, len(params['classes'])],
                                               'holds': 'probability of each class, in labels order'}},
        'classes': params['classes'],
        'labels': os.path.basename(labels_path) if labels_path else None,
        'head': params['head'],
        'graph': params['graph'],
    }


def sidecar_path(output_graph):
    return os.path.splitext(output_graph)[0] + '.serving.json'


def restored_model(model_dir, checkpoint=None):
    """(params, checkpoint, backbone) of a model_dir, fine-tuned layers folded in."""
    params = model_dirs.read_params(model_dir)
    if checkpoint is None:
        checkpoint = tf1.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
        if checkpoint is None:
            raise GraftError('%s holds no checkpoint; run `tfgraft train` first' % model_dir)
    from tfgraft.engine.finetune import restored_backbone   # fine-tuned layers folded in
    return params, checkpoint, restored_backbone(params, checkpoint)


def write_labels(path, classes):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_bytes(path, ''.join(c + '\n' for c in classes).encode('utf-8'))


def export_frozen_graph(model_dir, output_graph, output_labels=None,
                        final_tensor_name='final_result', checkpoint=None):
    """Write the frozen graph (+ labels file + sidecar); returns the sidecar dict."""
    params, checkpoint, backbone = restored_model(model_dir, checkpoint)
    with tf.Graph().as_default() as graph:
        output = build_serving_graph(backbone, params, final_tensor_name)
        saver = tf1.train.Saver()
        with tf1.Session() as session:
            saver.restore(session, checkpoint)
            frozen = tf1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [output.op.name])
    declare_current_producer(frozen)
    if os.path.dirname(output_graph):
        os.makedirs(os.path.dirname(output_graph), exist_ok=True)
    atomic_write_bytes(output_graph, frozen.SerializeToString())
    if output_labels:
        write_labels(output_labels, params['classes'])
    description = serving_description(params, final_tensor_name, output_labels)
    atomic_write_json(sidecar_path(output_graph), description)
    return description
