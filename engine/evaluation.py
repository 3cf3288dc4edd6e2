"""Score a trained model_dir on one split of bottleneck records: the `tfgraft evaluate` job.

The report (accuracy, per-class precision and recall, confusion matrix,
misclassified images) is returned and written to <output_dir>/report.json,
with confusion.png and per_class.png beside it (and to TensorBoard), and
with projector_dir the split's Embedding Projector files.
"""
import os

import numpy as np

from tfgraft.engine import model_dir as model_dirs
from tfgraft.graphs.errors import GraftError


def evaluate_model(model_dir, bottleneck_dir, split, output_dir=None, projector_dir=None,
                   max_in_memory_mb=1024):
    """The report dict; also written as JSON and PNG (default folder <model_dir>/eval_<split>),
    and projector files in projector_dir. A split over max_in_memory_mb is scored in one
    streamed pass (engine/streaming.py) unless the projector needs its vectors."""
    from tfgraft.engine.figures import write_evaluation_figures
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.inputs import arrays_input_fn
    from tfgraft.engine.metrics import evaluation_report
    from tfgraft.engine.streaming import should_stream, stream_evaluation_report
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


def report_lines(report, misclassified=False):
    """The report as the evaluate command prints it."""
    lines = ['%s accuracy = %.1f%% (N=%d, %s)' % (report['split'].capitalize(),
                                                report['accuracy'] * 100, report['count'],
                                                report['checkpoint'])]
    width = max(len(row['class']) for row in report['per_class'])
    lines.append('%-*s  precision  recall  count' % (width, 'class'))
    for row in report['per_class']:
        lines.append('%-*s  %9.3f  %6.3f  %5d' % (width, row['class'], row['precision'],
                                                 row['recall'], row['count']))
    if misclassified:
        lines.append('=== MISCLASSIFIED IMAGES ===')
        for item in report['misclassified']:
            lines.append('%s  true: %s  predicted: %s (%.3f)' % (
                item['image_path'], item['true'], item['predicted'], item['score']))
    lines.append('report.json, confusion.png and per_class.png written to %s' % report['output_dir'])
    if 'projector' in report:
        missing = report['projector']['missing_images']
        lines.append('Embedding Projector files written to %s%s' % (report['projector']['folder'], (
            ' (%d images not found: grey in the sprite)' % len(missing)) if missing else ''))
    return lines
