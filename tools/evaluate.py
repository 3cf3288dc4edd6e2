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


def run(args):
    import os
    from tfgraft.engine.evaluation import evaluate_model, report_lines
    projector_dir = args.projector_dir or (
        os.path.join(args.model_dir, 'projector_' + args.split) if args.projector else None)
    report = evaluate_model(args.model_dir, args.bottleneck_dir, args.split, args.output_dir,
                            projector_dir, args.max_in_memory_mb)
    print('\n'.join(report_lines(report, args.print_misclassified_test_images)))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('evaluate'))
