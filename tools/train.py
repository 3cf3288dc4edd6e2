"""Train new fully connected layers on bottleneck records, in a model_dir.

The model_dir gets params.json (head, classes, graph card and sha256),
checkpoints (every --save_checkpoints_steps steps and at the end; the last
--keep_checkpoint_max kept) and TensorBoard events in train/ and validation/
(or under --summaries_dir), and learning_curves.png (loss and accuracy over the
steps; also in TensorBoard's Images tab). Run the same command again to resume: training
goes on from the latest checkpoint up to --how_many_training_steps in all.
Validation accuracy is measured on the whole validation split every
--eval_step_interval steps; the final test accuracy on the whole test split.

heads (defaults: optimizer, learning rate, dropout):
  softmax  one FC layer + softmax, as Inception-v3 retrain.py (sgd, 0.01)
  dnn      --hidden_units FC+ReLU+dropout layers, then softmax (adam, 0.001, 0.5)
  logit    dropout, one sigmoid unit; 2 classes only (rmsprop, 0.0001, 0.2)

examples:
  tfgraft train --bottleneck_dir /tmp/bottlenecks --model_dir /tmp/model
  tfgraft train --bottleneck_dir /tmp/bottlenecks --model_dir /tmp/dnn --head dnn \\
      --hidden_units 1024,512 --optimizer adam --learning_rate 0.001
"""
from tfgraft.tools import flags

HELP = 'train a head on bottleneck records (checkpoints, resume, TensorBoard)'


def add_arguments(parser):
    parser.add_argument('--bottleneck_dir', required=True, help='records from `tfgraft bottlenecks`')
    parser.add_argument('--model_dir', required=True, help='where params, checkpoints and events go')
    flags.add_training_arguments(parser)


def run(args):
    from tfgraft.engine.curves import save_training_curves
    from tfgraft.engine.training import train_model
    settings, training_run = flags.training_settings(args)
    train_model(settings, args.bottleneck_dir, args.model_dir, training_run)
    print('learning curves: %s' % save_training_curves(args.model_dir, args.summaries_dir))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('train'))
