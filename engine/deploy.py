"""Export a trained model_dir in the formats asked for: the `tfgraft export` job.

frozen (engine/export.py), saved_model (engine/saved_model_export.py), tflite
(engine/tflite_export.py); each written file is printed, as the command shows it.
"""
import os


def export_formats(model_dir, formats, output_graph=None, output_labels=None,
                   final_tensor_name='final_result', saved_model_dir=None,
                   saved_model_version=None, output_tflite=None, tflite_quantize=False):
    """Write each of `formats` (frozen, saved_model, tflite) of model_dir, printing what was written."""
    saved_model = None
    if 'frozen' in formats:
        from tfgraft.engine.client_inputs import label_image_command
        from tfgraft.engine.export import export_frozen_graph, sidecar_path
        from tfgraft.graphs.registry import GraphCard
        description = export_frozen_graph(model_dir, output_graph, output_labels,
                                          final_tensor_name)
        print('wrote %s (%s) and %s' % (output_graph, sidecar_path(output_graph),
                                        output_labels or 'no labels file'))
        command = label_image_command(GraphCard.from_dict(description['graph']['card']),
                                      output_graph, output_labels or 'LABELS.txt',
                                      output_layer=final_tensor_name)
        if command:
            print('label_image.py reads it: %s' % command)
    elif output_labels:
        from tfgraft.engine import model_dir as model_dirs
        from tfgraft.engine.export import write_labels
        write_labels(output_labels, model_dirs.read_params(model_dir)['classes'])
    if 'saved_model' in formats:
        from tfgraft.engine.saved_model_export import export_saved_model
        saved_model = export_saved_model(model_dir, saved_model_dir,
                                         saved_model_version,
                                         final_tensor_name=final_tensor_name)
        print('wrote SavedModel %s (signatures serving_default: image bytes, serving_images: '
              'float images)' % saved_model)
    if 'tflite' in formats:
        from tfgraft.engine.tflite_export import export_tflite, tflite_sidecar_path
        quantize = tflite_quantize
        print('converting to TFLite with tf.lite.TFLiteConverter (%s weights)...'
              % ('8-bit' if quantize else 'float'), flush=True)
        export_tflite(model_dir, output_tflite, quantize, saved_model, output_labels)
        print('wrote %s (%s weights, %d bytes) and %s' % (
            output_tflite, '8-bit' if quantize else 'float', os.path.getsize(output_tflite),
            tflite_sidecar_path(output_tflite)))
