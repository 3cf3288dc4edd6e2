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
HELP = 'retrain.py in one command: bottlenecks, train, evaluate, export'


def add_arguments(parser):
    from tfgraft.tools import bottlenecks, export, train
    from tfgraft.tools.retrain_flags import add_retrain_py_arguments
    parser.add_argument('--image_dir', required=True, help='folder of class subfolders of images')
    parser.add_argument('--bottleneck_dir', default='/tmp/bottleneck',
                        help='where the bottleneck records are cached (default %(default)s)')
    parser.add_argument('--model_dir', help='checkpoints and params (default: a new temporary folder)')
    parser.add_argument('--print_misclassified_test_images', action='store_true',
                        help='list every misclassified test image')
    export.add_export_arguments(parser, defaults=True)
    bottlenecks.add_split_arguments(parser)
    train.add_training_arguments(parser)
    bottlenecks.add_backbone_arguments(parser)
    add_retrain_py_arguments(parser)


def _train_with_intermediate_graphs(args, model_dir):
    """retrain.py's --intermediate_store_frequency: train to each multiple of it, export
    <intermediate_output_graphs_dir>intermediate_<step>.pb, go on; then train to the end."""
    import argparse
    import os
    from tfgraft.engine.export import export_frozen_graph
    from tfgraft.tools import train
    from tfgraft.tools.retrain_flags import intermediate_steps
    for step in intermediate_steps(args.how_many_training_steps, args.intermediate_store_frequency):
        chunk = argparse.Namespace(**dict(vars(args), how_many_training_steps=step))
        train.train_model(chunk, args.bottleneck_dir, model_dir)
        path = args.intermediate_output_graphs_dir + 'intermediate_%d.pb' % step
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        export_frozen_graph(model_dir, path, None, args.final_tensor_name)
        print('intermediate graph after step %d: %s' % (step, path))
    return train.train_model(args, args.bottleneck_dir, model_dir)


def run(args):
    import argparse
    import tempfile
    from tfgraft.records.extract import write_bottlenecks
    from tfgraft.tools import evaluate, export
    from tfgraft.tools.bottlenecks import backbone_from_args
    from tfgraft.tools.retrain_flags import check_retrain_py_flags, set_logging_verbosity
    from tfgraft.engine.cluster import task_from_env
    from tfgraft.graphs.errors import GraftError
    if task_from_env() is not None:
        raise GraftError('retrain runs in one process; on a TF_CONFIG cluster run `tfgraft '
                         'bottlenecks` once, then `tfgraft train` in every task')
    check_retrain_py_flags(args)
    set_logging_verbosity(args.logging_verbosity)
    backbone = backbone_from_args(args)
    write_bottlenecks(args.image_dir, backbone, args.bottleneck_dir,
                      validation_percentage=args.validation_percentage,
                      testing_percentage=args.testing_percentage, max_pixels=args.max_pixels,
                      skip_empty_classes=args.skip_empty_classes, split_rule=args.split_rule)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix='tfgraft-retrain-')
    result = _train_with_intermediate_graphs(args, model_dir)
    from tfgraft.engine.curves import save_training_curves
    print('learning curves: %s' % save_training_curves(model_dir, args.summaries_dir))
    if result['test'] and args.print_misclassified_test_images:
        report = evaluate.evaluate_model(model_dir, args.bottleneck_dir, 'test')
        evaluate.print_report(report, misclassified=True)
    export.export_model(model_dir, argparse.Namespace(**dict(vars(args), saved_model_dir=None)))
    if args.saved_model_dir:      # retrain.py's meaning: this folder, not <dir>/<version>/
        from tfgraft.tools.retrain_flags import write_retrain_py_saved_model
        print('wrote SavedModel %s (signatures serving_default: image bytes, serving_images: '
              'float images)' % write_retrain_py_saved_model(model_dir, args.saved_model_dir,
                                                             args.final_tensor_name))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('retrain'))
