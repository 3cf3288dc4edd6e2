"""All in one, as retrain.py did it: bottlenecks, training, test accuracy, frozen graph.

Same flag names as TensorFlow's retrain.py; the backbone is chosen with
--graph (a frozen .pb) or --backbone (alexnet|vgg16 with --weights). Each
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


def run(args):
    import tempfile
    from tfgraft.records.extract import write_bottlenecks
    from tfgraft.tools import evaluate, export, train
    from tfgraft.tools.bottlenecks import backbone_from_args
    backbone = backbone_from_args(args)
    write_bottlenecks(args.image_dir, backbone, args.bottleneck_dir,
                      validation_percentage=args.validation_percentage,
                      testing_percentage=args.testing_percentage, max_pixels=args.max_pixels,
                      skip_empty_classes=args.skip_empty_classes)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix='tfgraft-retrain-')
    result = train.train_model(args, args.bottleneck_dir, model_dir)
    if result['test'] and args.print_misclassified_test_images:
        report = evaluate.evaluate_model(model_dir, args.bottleneck_dir, 'test')
        evaluate.print_report(report, misclassified=True)
    export.export_model(model_dir, args)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('retrain'))
