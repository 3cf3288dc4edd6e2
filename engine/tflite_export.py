"""A .tflite model converted by tf.lite.TFLiteConverter from the exported SavedModel.

It is the SavedModel's `serving_images` signature: input `images`, float32
[N, h, w, 3] already preprocessed (resize the batch with
Interpreter.resize_tensor_input); outputs probabilities, classes and scores as
the SavedModel's. Float weights, or with quantize=True dynamic-range 8-bit
weights (tf.lite.Optimize.DEFAULT without a representative dataset: weights
stored int8, activations float). A sidecar <model>.tflite.json, beside it,
holds what TFLite metadata would: labels, the input's size, channel order and
normalisation ((pixel - mean) / std per channel, pixel 0..255 after the resize).
"""
import os
import tempfile

import tensorflow as tf

from tfgraft.engine.client_inputs import normalisation
from tfgraft.engine.saved_model_export import IMAGES_INPUT, IMAGES_SIGNATURE, write_saved_model
from tfgraft.graphs.registry import GraphCard
from tfgraft.records.atomic import atomic_write_bytes, atomic_write_json


def tflite_sidecar_path(output_tflite):
    return os.path.splitext(output_tflite)[0] + '.tflite.json'


def tflite_description(params, quantize, labels_path=None):
    card = GraphCard.from_dict(params['graph']['card'])
    height, width = card.input_size
    return {
        'signature': IMAGES_SIGNATURE,
        'input': {'name': IMAGES_INPUT, 'dtype': 'float32', 'shape': [None, height, width, 3],
                  'channel_order': card.channel_order, 'resize': card.resize,
                  'resize_method': 'bilinear, align_corners=False, half_pixel_centers=False',
                  'normalisation': normalisation(card)},
        'outputs': {'probabilities': 'float32 [N, classes], in labels order',
                    'classes': 'string [N, classes], class names best first',
                    'scores': 'float32 [N, classes], the probabilities of `classes`'},
        'quantization': 'dynamic_range_int8' if quantize else 'none',
        'classes': params['classes'],
        'labels': os.path.basename(labels_path) if labels_path else None,
        'graph': {'name': card.name, 'sha256': params['graph']['sha256']},
    }


def convert_saved_model(saved_model_dir, quantize=False):
    """The .tflite bytes of the SavedModel's float-image signature."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[IMAGES_SIGNATURE])
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def export_tflite(model_dir, output_tflite, quantize=False, saved_model_dir=None,
                  labels_path=None, checkpoint=None):
    """Write output_tflite and its sidecar; converts saved_model_dir when given (a version
    folder just exported), else a SavedModel written to a scratch folder. Returns the sidecar."""
    if saved_model_dir is None:
        with tempfile.TemporaryDirectory() as scratch:
            source = os.path.join(scratch, 'saved_model')
            params = write_saved_model(model_dir, source, checkpoint)
            model = convert_saved_model(source, quantize)
    else:
        from tfgraft.engine import model_dir as model_dirs
        params = model_dirs.read_params(model_dir)
        model = convert_saved_model(saved_model_dir, quantize)
    if os.path.dirname(output_tflite):
        os.makedirs(os.path.dirname(output_tflite), exist_ok=True)
    atomic_write_bytes(output_tflite, model)
    description = tflite_description(params, quantize, labels_path)
    atomic_write_json(tflite_sidecar_path(output_tflite), description)
    return description
