"""Compute bottleneck vectors for a folder of labelled photos and write TFRecord files.

One class per subfolder of --image_dir. With train/ validation/ test/
subfolders those are the splits; otherwise each file's split comes from a
stable hash (--validation_percentage, --testing_percentage): of its file name
by default, or of the path as retrain.py hashes it with --split_rule retrain_py
(then only *.jpg, *.jpeg, *.JPG, *.JPEG directly in each class folder are read,
as retrain.py reads them).
Re-runs compute only new or changed images; an interrupted run resumes.

examples:
  tfgraft bottlenecks --image_dir flower_photos --graph mobilenet_v1_0.25_128/frozen_graph.pb \\
      --bottleneck_dir /tmp/bottlenecks
  tfgraft bottlenecks --image_dir photos --backbone vgg16 --weights vgg16.npz --layer relu6 \\
      --bottleneck_dir /tmp/vgg_codes
  tfgraft bottlenecks --image_dir photos --graph model.pb --bottleneck_dir /tmp/bottlenecks \\
      --runner DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing

With --runner the backbone runs in an Apache Beam pipeline (pip install 'tfgraft[beam]');
every option after the tfgraft flags that tfgraft does not know is a Beam pipeline
option (--flink_master=..., --project=..., ...). Same records, same cache.
"""
HELP = 'images -> bottleneck TFRecord files (cached, resumable; on Apache Beam with --runner)'
# Options tfgraft does not know are left for Beam (tools/cli.py hands them to run as
# args.extra_args); without --runner they are an error.
PASSES_UNKNOWN_ARGS = True
BEAM_RUNNERS = ('DirectRunner', 'PrismRunner', 'FlinkRunner', 'SparkRunner', 'DataflowRunner',
                'PortableRunner')


def add_backbone_arguments(parser):
    group = parser.add_argument_group('backbone')
    group.add_argument('--graph', help='frozen GraphDef (.pb) to use as the backbone')
    group.add_argument('--backbone', help='backbone name: alexnet or vgg16 (with --weights), '
                       'or a known frozen graph\'s card name (with --graph)')
    group.add_argument('--weights', help='.npy or .npz weight file for --backbone alexnet|vgg16')
    group.add_argument('--layer', help='bottleneck layer of an .npy-built backbone (e.g. relu6)')
    group.add_argument('--input_tensor', help='for an unknown graph: the float image input tensor')
    group.add_argument('--bottleneck_tensor', help='for an unknown graph: the bottleneck tensor')
    group.add_argument('--input_size', type=int, help='for an unknown graph: input height = width')
    group.add_argument('--input_range', type=float, nargs=2, metavar=('LOW', 'HIGH'),
                       help='for an unknown graph: values of pixels 0 and 255 (default -1 1)')
    group.add_argument('--allow_op', action='append', default=[], metavar='OP',
                       help='allow one more op type in the graph (repeatable; it runs!)')


def backbone_from_args(args):
    from tfgraft.graphs.factory import load_backbone
    return load_backbone(graph=args.graph, backbone=args.backbone, weights=args.weights,
                         layer=args.layer, allow_ops=args.allow_op,
                         input_tensor=args.input_tensor, bottleneck_tensor=args.bottleneck_tensor,
                         input_size=args.input_size, input_range=args.input_range)


def add_split_arguments(parser):
    parser.add_argument('--validation_percentage', type=float, default=10,
                        help='percent of images for validation when the folder has no '
                             'split subfolders (default 10)')
    parser.add_argument('--testing_percentage', type=float, default=10,
                        help='percent of images for test (default 10)')
    parser.add_argument('--split_rule', choices=('file_name', 'retrain_py'), default='file_name',
                        help='file_name (default): sha1 of the file name, the same wherever the '
                             'folder lives; retrain_py: sha1 of <image_dir as typed>/<class>/<file>, '
                             'retrain.py\'s split exactly (same test images)')
    parser.add_argument('--max_pixels', type=int, default=None,
                        help='refuse images whose header declares more pixels (default 90 MP)')
    parser.add_argument('--skip_empty_classes', action='store_true',
                        help='leave out class folders with no images instead of stopping')


def add_arguments(parser):
    parser.add_argument('--image_dir', required=True, help='folder of class subfolders of images')
    parser.add_argument('--bottleneck_dir', required=True, help='where the records go')
    parser.add_argument('--batch_size', type=int, default=64,
                        help='images per backbone run (default 64)')
    parser.add_argument('--runner', choices=BEAM_RUNNERS,
                        help='run the backbone as an Apache Beam pipeline on this runner; '
                             'further Beam options may follow (default: in this process)')
    add_split_arguments(parser)
    add_backbone_arguments(parser)


def _beam_writer():
    from tfgraft.graphs.errors import GraftError
    try:
        import apache_beam  # noqa: F401  (only to say what is missing)
    except ImportError:
        raise GraftError("--runner needs Apache Beam: pip install 'tfgraft[beam]'") from None
    from tfgraft.records.beam_pipeline import write_bottlenecks_on_beam
    return write_bottlenecks_on_beam


def run(args):
    from tfgraft.graphs.errors import GraftError
    from tfgraft.records.extract import write_bottlenecks
    if args.batch_size < 1:
        raise GraftError('--batch_size must be at least 1')
    extra = list(getattr(args, 'extra_args', None) or [])
    if extra and not args.runner:
        raise GraftError('unrecognized arguments: %s (Beam pipeline options need --runner)'
                         % ' '.join(extra))
    write_on_beam = _beam_writer() if args.runner else None
    backbone = backbone_from_args(args)
    common = dict(batch_size=args.batch_size, validation_percentage=args.validation_percentage,
                  testing_percentage=args.testing_percentage, max_pixels=args.max_pixels,
                  skip_empty_classes=args.skip_empty_classes, split_rule=args.split_rule)
    if write_on_beam:
        write_on_beam(args.image_dir, backbone, args.bottleneck_dir, args.runner, extra,
                      allow_ops=args.allow_op, **common)
    else:
        write_bottlenecks(args.image_dir, backbone, args.bottleneck_dir, **common)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('bottlenecks'))
