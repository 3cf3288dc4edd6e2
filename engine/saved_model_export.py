"""A trained model_dir as a SavedModel, laid out for TF Serving: <export_dir>/<version>/.

Signatures (tag `serve`):
    serving_default   image_bytes: string [None], one image file's bytes each
                      (JPEG, PNG, GIF or BMP, any size), decoded and
                      preprocessed in the graph as `tfgraft predict` does
    serving_images    images: float32 [None, h, w, 3], already preprocessed
Both return probabilities [N, classes] (labels order), classes [N, classes]
(class names, best first) and scores [N, classes] (their probabilities).
labels.txt is an asset (assets/labels.txt). Fine-tuned backbone layers are
folded in as for the frozen graph; the head stays variables. Written to a
hidden partial folder then renamed, so TF Serving never sees half a version.
"""
import os
import shutil
import tempfile

import tensorflow as tf

from tfgraft.engine.export import build_classifier, restored_model, write_labels
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.records.decode import decode_rgb

tf1 = tf.compat.v1

DEFAULT_SIGNATURE = 'serving_default'
IMAGES_SIGNATURE = 'serving_images'
BYTES_INPUT = 'image_bytes'
IMAGES_INPUT = 'images'
LABELS_ASSET = 'labels.txt'


def versions_in(export_dir):
    """The numbered versions already in export_dir (TF Serving serves the highest)."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(name) for name in os.listdir(export_dir) if name.isdigit())


def choose_version(export_dir, version=None):
    """version, or one more than the highest there (1 in a new folder); never an existing one."""
    existing = versions_in(export_dir)
    if version is None:
        return existing[-1] + 1 if existing else 1
    if version < 1:
        raise GraftError('--saved_model_version must be at least 1')
    if version in existing:
        raise GraftError('%s already holds version %d; choose another --saved_model_version'
                         % (export_dir, version))
    return version


def ranked_outputs(probabilities, classes):
    """probabilities, classes (names best first) and scores (their probabilities)."""
    order = tf.argsort(probabilities, axis=1, direction='DESCENDING', stable=True)
    return {
        'probabilities': tf.identity(probabilities, name='probabilities'),
        'classes': tf.gather(tf.constant(classes), order, name='classes'),
        'scores': tf.gather(probabilities, order, batch_dims=1, name='scores'),
    }


def _build_signatures(backbone, params, labels_file, final_tensor_name):
    card = backbone.card
    height, width = card.input_size
    image_bytes = tf1.placeholder(tf.string, [None], name=BYTES_INPUT)
    decoded = tf.map_fn(lambda contents: preprocess_image(decode_rgb(contents), card), image_bytes,
                        fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32),
                        name='decode_images')
    images = tf1.placeholder_with_default(decoded, [None, height, width, 3], name=IMAGES_INPUT)
    probabilities = build_classifier(backbone, params, images, final_tensor_name)
    outputs = ranked_outputs(probabilities, params['classes'])
    tf1.add_to_collection(tf1.GraphKeys.ASSET_FILEPATHS, tf.constant(labels_file, name='labels_file'))
    signature = tf1.saved_model.signature_def_utils.predict_signature_def
    return {DEFAULT_SIGNATURE: signature({BYTES_INPUT: image_bytes}, outputs),
            IMAGES_SIGNATURE: signature({IMAGES_INPUT: images}, outputs)}


def write_saved_model(model_dir, target, checkpoint=None, final_tensor_name='final_result'):
    """Write the SavedModel to `target` (a folder that must not exist yet)."""
    params, checkpoint, backbone = restored_model(model_dir, checkpoint)
    with tempfile.TemporaryDirectory() as scratch:
        labels_file = os.path.join(scratch, LABELS_ASSET)
        write_labels(labels_file, params['classes'])
        with tf.Graph().as_default():
            signatures = _build_signatures(backbone, params, labels_file, final_tensor_name)
            saver = tf1.train.Saver()
            builder = tf1.saved_model.Builder(target)
            with tf1.Session() as session:
                saver.restore(session, checkpoint)
                builder.add_meta_graph_and_variables(
                    session, [tf1.saved_model.tag_constants.SERVING], signature_def_map=signatures,
                    assets_collection=tf1.get_collection(tf1.GraphKeys.ASSET_FILEPATHS),
                    strip_default_attrs=True)
            builder.save()
    return params


def export_saved_model(model_dir, export_dir, version=None, checkpoint=None,
                       final_tensor_name='final_result'):
    """Write <export_dir>/<version>/ (next free version by default); returns its path."""
    version = choose_version(export_dir, version)
    os.makedirs(export_dir, exist_ok=True)
    target = os.path.join(export_dir, str(version))
    partial = os.path.join(export_dir, '.%d.partial' % version)    # not a number: Serving skips it
    shutil.rmtree(partial, ignore_errors=True)
    write_saved_model(model_dir, partial, checkpoint, final_tensor_name)
    os.replace(partial, target)
    return target
