"""Score a trained model_dir on one split of bottleneck records.

Prints the accuracy and each class's precision and recall, and writes to
--output_dir: report.json (accuracy, per-class figures, confusion matrix,
misclassified images), confusion.png (rows: true class, columns: predicted,
in labels.txt order; colour: share of the row, text: count) and per_class.png
(precision and recall bars). The two figures also go to TensorBoard (Images
tab) in <model_dir>/eval_<split>/. --projector also writes the split's
bottlenecks for TensorBoard's Embedding Projector (as `tfgraft projector`).

example:
  tfgraft evaluate --model_dir /tmp/model --bottleneck_dir /tmp/bottlenecks --split test
"""
HELP = 'accuracy, per-class precision/recall and confusion matrix of a model_dir'


def add_arguments(parser):
    parser.add_argument('--model_dir', required=True, help='a model_dir from `tfgraft train`')
    parser.add_argument('--bottleneck_dir', required=True, help='records of the same graph and classes')
    parser.add_argument('--split', default='test', choices=('train', 'validation', 'test'),
                        help='which records to score (default test)')
    parser.add_argument('--output_dir', help='where report.json, confusion.png and per_class.png go '
                        '(default: <model_dir>/eval_<split>)')
    parser.add_argument('--print_misclassified_test_images', action='store_true',
                        help='list every misclassified image')
    parser.add_argument('--projector', action='store_true',
                        help='also write the split for TensorBoard\'s Embedding Projector: vectors '
                             '(checkpoint), metadata.tsv (label, predicted, path), sprite.png')
    parser.add_argument('--projector_dir', help='where the projector files go (default: '
                        '<model_dir>/projector_<split>; `tensorboard --logdir <model_dir>` shows them)')
    parser.add_argument('--max_in_memory_mb', type=float, default=1024,
                        help='a split whose vectors take more than this many MiB is read in one '
                             'streamed pass instead of loaded, unless --projector wants them all '
                             '(default 1024)')


def evaluate_model(model_dir, bottleneck_dir, split, output_dir=None, projector_dir=None,
                   max_in_memory_mb=1024):
    """The report dict; also written as JSON and PNG (and projector files in projector_dir)."""
    import os
    import numpy as np
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.engine.figures import write_evaluation_figures
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.inputs import arrays_input_fn
    from tfgraft.engine.metrics import evaluation_report
    from tfgraft.engine.streaming import should_stream, stream_evaluation_report
    from tfgraft.graphs.errors import GraftError
    from tfgraft.records import reader
    from tfgraft.records.atomic import atomic_write_json
    params = model_dirs.read_params(model_dir)
    manifest = reader.read_manifest(bottleneck_dir)
    model_dirs.check_records_match(params, manifest, model_dir, bottleneck_dir)
    estimator = Estimator(model_fn, model_dir, params)
    checkpoint = estimator.latest_checkpoint()
    reader.split_files(bottleneck_dir, split, manifest)     # the split and its shards exist
    if not manifest['splits'][split]['count']:
        raise GraftError('%s: the %s split holds no records; choose another --split'
                         % (bottleneck_dir, split))
    if should_stream(manifest, split, max_in_memory_mb) and not projector_dir:
        report = stream_evaluation_report(estimator, bottleneck_dir, split, manifest, checkpoint)
    else:
        data = reader.load_split(bottleneck_dir, split, manifest)
        predictions = estimator.predict(arrays_input_fn(data['bottlenecks'], data['labels']),
                                        checkpoint)
        probabilities = np.stack([row['probabilities'] for row in predictions])
        report = evaluation_report(data['labels'], probabilities, params['classes'],
                                   data['image_paths'], split)
    report['checkpoint'] = os.path.basename(checkpoint)
    output_dir = output_dir or os.path.join(model_dir, 'eval_' + split)
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_json(os.path.join(output_dir, 'report.json'), report)
    step = int(checkpoint.rsplit('-', 1)[1]) if '-' in os.path.basename(checkpoint) else 0
    write_evaluation_figures(report, output_dir, os.path.join(model_dir, 'eval_' + split), step)
    report['output_dir'] = output_dir
    if projector_dir:
        from tfgraft.engine.projector import write_split_projector
        written = write_split_projector(projector_dir, data, np.argmax(probabilities, axis=1),
                                        params['classes'], manifest['image_dir'])
        report['projector'] = {'folder': projector_dir, 'missing_images': written['missing_images']}
    return report


def print_report(report, misclassified=False):
    print('%s accuracy = %.1f%% (N=%d, %s)' % (report['split'].capitalize(), report['accuracy'] * 100,
                                            report['count'], report['checkpoint']))
    width = max(len(row['class']) for row in report['per_class'])
    print('%-*s  precision  recall  count' % (width, 'class'))
    for row in report['per_class']:
        print('%-*s  %9.3f  %6.3f  %5d' % (width, row['class'], row['precision'], row['recall'],
                                          row['count']))
    if misclassified:
        print('=== MISCLASSIFIED IMAGES ===')
        for item in report['misclassified']:
            print('%s  true: %s  predicted: %s (%.3f)' % (item['image_path'], item['true'],
                                                          item['predicted'], item['score']))
    print('report.json, confusion.png and per_class.png written to %s' % report['output_dir'])
    if 'projector' in report:
        missing = report['projector']['missing_images']
        print('Embedding Projector files written to %s%s' % (report['projector']['folder'], (
            ' (%d images not found: grey in the sprite)' % len(missing)) if missing else ''))


def run(args):
    import os
    projector_dir = args.projector_dir or (
        os.path.join(args.model_dir, 'projector_' + args.split) if args.projector else None)
    report = evaluate_model(args.model_dir, args.bottleneck_dir, args.split, args.output_dir,
                            projector_dir, args.max_in_memory_mb)
    print_report(report, args.print_misclassified_test_images)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('evaluate'))
