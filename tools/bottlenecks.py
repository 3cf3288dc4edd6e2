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
Both folders may be URLs that tf.io.gfile knows (gs://bucket/photos, hdfs://...).
"""
from tfgraft.tools import flags

HELP = 'images -> bottleneck TFRecord files (cached, resumable; on Apache Beam with --runner)'
# Options tfgraft does not know are left for Beam (tools/cli.py hands them to run as
# args.extra_args); without --runner they are an error.
PASSES_UNKNOWN_ARGS = True
BEAM_RUNNERS = ('DirectRunner', 'PrismRunner', 'FlinkRunner', 'SparkRunner', 'DataflowRunner',
                'PortableRunner')


def add_arguments(parser):
    parser.add_argument('--image_dir', required=True,
                        help='folder of class subfolders of images (a path, or a URL '
                             'tf.io.gfile reads: gs://..., hdfs://...)')
    parser.add_argument('--bottleneck_dir', required=True,
                        help='where the records go (a path or a tf.io.gfile URL)')
    parser.add_argument('--batch_size', type=int, default=64,
                        help='images per backbone run (default 64)')
    parser.add_argument('--runner', choices=BEAM_RUNNERS,
                        help='run the backbone as an Apache Beam pipeline on this runner; '
                             'further Beam options may follow (default: in this process)')
    flags.add_split_arguments(parser)
    flags.add_extraction_arguments(parser)
    flags.add_backbone_arguments(parser)


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
    from tfgraft.graphs.factory import load_backbone
    from tfgraft.records.extract import write_bottlenecks
    from tfgraft.graphs.precision import check_precision
    if args.batch_size < 1:
        raise GraftError('--batch_size must be at least 1')
    check_precision(args.precision)
    extra = list(getattr(args, 'extra_args', None) or [])
    if extra and not args.runner:
        raise GraftError('unrecognized arguments: %s (Beam pipeline options need --runner)'
                         % ' '.join(extra))
    write_on_beam = _beam_writer() if args.runner else None
    backbone = load_backbone(**flags.backbone_settings(args))
    common = dict(batch_size=args.batch_size, fast_decode=args.fast_decode,
                  precision=args.precision, **flags.listing_settings(args))
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
