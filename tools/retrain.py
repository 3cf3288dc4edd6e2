"""All in one, as retrain.py did it: bottlenecks, training, test accuracy, frozen graph.

Every flag of TensorFlow Hub's retrain.py is taken with the same meaning or
refused with one line naming what to use instead (README: "retrain.py flags");
the backbone is chosen with --graph (a frozen .pb) or --backbone
(alexnet|vgg16 with --weights). --split_rule retrain_py puts the same images in
the test split as retrain.py on the same --image_dir. Each
stage is also a command of its own: bottlenecks, train, evaluate, export.
A re-run reuses the cached bottlenecks and trains a new model, unless
--model_dir names one to resume.

example:
  tfgraft retrain --image_dir flower_photos --graph mobilenet_v1_0.25_128/frozen_graph.pb \\
      --bottleneck_dir /tmp/bottleneck --output_graph /tmp/output_graph.pb \\
      --output_labels /tmp/output_labels.txt
"""
from tfgraft.tools import flags

HELP = 'retrain.py in one command: bottlenecks, train, evaluate, export'


def add_arguments(parser):
    from tfgraft.tools.retrain_flags import add_retrain_py_arguments
    parser.add_argument('--image_dir', required=True, help='folder of class subfolders of images')
    parser.add_argument('--bottleneck_dir', default='/tmp/bottleneck',
                        help='where the bottleneck records are cached (default %(default)s)')
    parser.add_argument('--model_dir', help='checkpoints and params (default: a new temporary folder)')
    parser.add_argument('--print_misclassified_test_images', action='store_true',
                        help='list every misclassified test image')
    flags.add_export_arguments(parser, defaults=True)
    flags.add_split_arguments(parser)
    flags.add_extraction_arguments(parser)
    flags.add_training_arguments(parser)
    flags.add_backbone_arguments(parser)
    add_retrain_py_arguments(parser)


def run(args):
    from tfgraft.engine.retrain import retrain
    from tfgraft.graphs.precision import check_precision
    from tfgraft.tools.retrain_flags import (
        check_retrain_py_flags, set_logging_verbosity, write_retrain_py_saved_model)
    from tfgraft.engine.cluster import task_from_env
    from tfgraft.graphs.errors import GraftError
    if task_from_env() is not None:
        raise GraftError('retrain runs in one process; on a TF_CONFIG cluster run `tfgraft '
                         'bottlenecks` once, then `tfgraft train` in every task')
    check_retrain_py_flags(args)
    set_logging_verbosity(args.logging_verbosity)
    check_precision(args.precision)
    settings, training_run = flags.training_settings(args)
    listing = dict(flags.listing_settings(args), fast_decode=args.fast_decode,
                   precision=args.precision)
    result = retrain(args.image_dir, flags.backbone_settings(args), args.bottleneck_dir, settings,
                     training_run, args.output_graph, args.output_labels, args.final_tensor_name,
                     model_dir=args.model_dir, listing_settings=listing,
                     misclassified_report=args.print_misclassified_test_images,
                     intermediate_store_frequency=args.intermediate_store_frequency,
                     intermediate_output_graphs_dir=args.intermediate_output_graphs_dir)
    if args.saved_model_dir:      # retrain.py's meaning: this folder, not <dir>/<version>/
        print('wrote SavedModel %s (signatures serving_default: image bytes, serving_images: '
              'float images)' % write_retrain_py_saved_model(result['model_dir'], args.saved_model_dir,
                                                             args.final_tensor_name))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('retrain'))
