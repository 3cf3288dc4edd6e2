"""Export a trained model_dir for deployment: a frozen graph, a SavedModel, a .tflite file.

--format lists the formats, comma-separated (default frozen); naming a
--saved_model_dir or an --output_tflite also asks for that format.

  frozen       one GraphDef, backbone + head: feed `DecodeJpeg/contents:0` one
               image file's bytes (or `input:0` a batch of preprocessed float
               images) and read `final_result:0`, as the retrain.py graphs were
               used; runs in plain TensorFlow, TensorFlow's label_image and
               TensorFlow for Poets' label_image.py. A sidecar
               <output_graph>.serving.json describes the tensors.
  saved_model  <saved_model_dir>/<version>/ for TF Serving and tf.saved_model.load
               (version: the next free number unless --saved_model_version):
               `serving_default` takes image_bytes (string [None]), `serving_images`
               takes images (float32 [None, h, w, 3]); both give probabilities,
               classes and scores. labels.txt is an asset.
  tflite       the float-image signature converted by tf.lite.TFLiteConverter,
               float weights or (--tflite_quantize) dynamic-range 8-bit; labels
               and normalisation in <output_tflite minus .tflite>.tflite.json.

examples:
  tfgraft export --model_dir /tmp/model --output_graph /tmp/output_graph.pb \\
      --output_labels /tmp/output_labels.txt
  tfgraft export --model_dir /tmp/model --format saved_model,tflite \\
      --saved_model_dir /tmp/serving/flowers --output_tflite /tmp/flowers.tflite
"""
from tfgraft.tools import flags

HELP = 'a frozen graph, a SavedModel and/or a .tflite file, with a labels file'

FORMATS = ('frozen', 'saved_model', 'tflite')


def format_list(text):
    import argparse
    formats = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError('%r: choose one or more of %s, comma-separated'
                                         % (text, ', '.join(FORMATS)))
    return formats


def add_format_arguments(parser):
    parser.add_argument('--format', type=format_list, default=None, metavar='FORMATS',
                        help='comma-separated, from %s (default frozen)' % ', '.join(FORMATS))
    parser.add_argument('--saved_model_dir',
                        help='SavedModel base folder: the model goes to <dir>/<version>/')
    parser.add_argument('--saved_model_version', type=int,
                        help='version folder number (default: one more than the highest there, or 1)')
    parser.add_argument('--output_tflite', help='where the .tflite file goes')
    parser.add_argument('--tflite_quantize', action='store_true',
                        help='dynamic-range 8-bit weights in the .tflite file (default float)')


def add_arguments(parser):
    parser.add_argument('--model_dir', required=True, help='a model_dir from `tfgraft train`')
    flags.add_export_arguments(parser)
    add_format_arguments(parser)


def chosen_formats(args):
    """--format, plus the formats whose output was named; without --format, frozen too
    when --output_graph is given or nothing else is asked for."""
    explicit = getattr(args, 'format', None)
    formats = list(explicit or [])
    if getattr(args, 'saved_model_dir', None) and 'saved_model' not in formats:
        formats.append('saved_model')
    if getattr(args, 'output_tflite', None) and 'tflite' not in formats:
        formats.append('tflite')
    if not explicit and (args.output_graph or not formats):
        formats.insert(0, 'frozen')
    return formats


def check_outputs(formats, args):
    from tfgraft.graphs.errors import GraftError
    needs = {'frozen': 'output_graph', 'saved_model': 'saved_model_dir', 'tflite': 'output_tflite'}
    for name in formats:
        if not getattr(args, needs[name], None):
            raise GraftError('--format %s needs --%s' % (name, needs[name]))


def export_settings(args):
    """engine.deploy.export_formats' keywords from the export flags (checked)."""
    formats = chosen_formats(args)
    check_outputs(formats, args)
    return dict(formats=formats, output_graph=args.output_graph, output_labels=args.output_labels,
                final_tensor_name=args.final_tensor_name,
                saved_model_dir=getattr(args, 'saved_model_dir', None),
                saved_model_version=getattr(args, 'saved_model_version', None),
                output_tflite=getattr(args, 'output_tflite', None),
                tflite_quantize=getattr(args, 'tflite_quantize', False))


def run(args):
    from tfgraft.engine.deploy import export_formats
    export_formats(args.model_dir, **export_settings(args))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('export'))
