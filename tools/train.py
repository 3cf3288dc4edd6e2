"""Train new fully connected layers on bottleneck records, in a model_dir.

The model_dir gets params.json (head, classes, graph card and sha256),
checkpoints (every --save_checkpoints_steps steps and at the end; the last
--keep_checkpoint_max kept) and TensorBoard events in train/ and validation/
(or under --summaries_dir), and learning_curves.png (loss and accuracy over the
steps; also in TensorBoard's Images tab). Run the same command again to resume: training
goes on from the latest checkpoint up to --how_many_training_steps in all.
Validation accuracy is measured on the whole validation split every
--eval_step_interval steps; the final test accuracy on the whole test split.
A split larger than --max_in_memory_mb is streamed from its shards, not loaded.
With TF_CONFIG set (cluster: chief, worker, ps, optionally evaluator; task: type,
index) each process is one task of a TensorFlow cluster: see README.md.

heads (defaults: optimizer, learning rate, dropout):
  softmax  one FC layer + softmax, as Inception-v3 retrain.py (sgd, 0.01)
  dnn      --hidden_units FC+ReLU+dropout layers, then softmax (adam, 0.001, 0.5)
  logit    dropout, one sigmoid unit; 2 classes only (rmsprop, 0.0001, 0.2)

examples:
  tfgraft train --bottleneck_dir /tmp/bottlenecks --model_dir /tmp/model
  tfgraft train --bottleneck_dir /tmp/bottlenecks --model_dir /tmp/dnn --head dnn \\
      --hidden_units 1024,512 --optimizer adam --learning_rate 0.001
"""
HELP = 'train a head on bottleneck records (checkpoints, resume, TensorBoard)'


def _hidden_units(text):
    import argparse
    try:
        units = [int(part) for part in text.split(',') if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('expected sizes separated by commas, like 1024,512') from None
    if any(size < 1 for size in units):
        raise argparse.ArgumentTypeError('layer sizes must be positive')
    return units


def add_training_arguments(parser):
    group = parser.add_argument_group('training')
    group.add_argument('--head', choices=('softmax', 'dnn', 'logit'),
                       help='the layers to graft (default softmax, or the model_dir\'s)')
    group.add_argument('--how_many_training_steps', type=int, default=4000,
                       help='train until this many steps in all (default 4000)')
    group.add_argument('--learning_rate', type=float, help='default: the head\'s (see above)')
    group.add_argument('--optimizer', choices=('sgd', 'momentum', 'adam', 'rmsprop'),
                       help='default: the head\'s (see above)')
    group.add_argument('--learning_rate_decay', type=float,
                       help='multiply the learning rate by this every --decay_steps (default 1: none)')
    group.add_argument('--decay_steps', type=int, help='steps per decay (default 1000)')
    group.add_argument('--train_batch_size', type=int, help='records per step (default 100)')
    group.add_argument('--hidden_units', type=_hidden_units,
                       help='dnn head: hidden layer sizes, like 1024,512')
    group.add_argument('--dropout', type=float, help='dnn and logit heads: dropout rate')
    group.add_argument('--eval_step_interval', type=int, default=10,
                       help='measure validation accuracy every this many steps (default 10)')
    group.add_argument('--save_checkpoints_steps', type=int, default=500,
                       help='save a checkpoint every this many steps (default 500)')
    group.add_argument('--keep_checkpoint_max', type=int, default=5,
                       help='checkpoints kept (default 5)')
    group.add_argument('--summaries_dir',
                       help='TensorBoard events go to its train/ and validation/ (default: model_dir)')
    group.add_argument('--max_in_memory_mb', type=float, default=1024,
                       help='a split whose vectors take more than this many MiB is streamed from '
                            'its shards (tf.data, shuffle buffer) instead of held in memory '
                            '(default 1024)')
    group.add_argument('--seed', type=int, default=0,
                       help='seed of initial weights, batch draws and dropout: the same seed on '
                            'the same records trains the same model (default 0)')


def add_arguments(parser):
    parser.add_argument('--bottleneck_dir', required=True, help='records from `tfgraft bottlenecks`')
    parser.add_argument('--model_dir', required=True, help='where params, checkpoints and events go')
    add_training_arguments(parser)


def _check_numbers(args):
    from tfgraft.graphs.errors import GraftError
    for flag in ('how_many_training_steps', 'train_batch_size', 'eval_step_interval',
                 'save_checkpoints_steps', 'keep_checkpoint_max', 'decay_steps'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise GraftError('--%s must be at least 1' % flag)
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise GraftError('--learning_rate must be positive')
    if getattr(args, 'max_in_memory_mb', 0) < 0:
        raise GraftError('--max_in_memory_mb must not be negative')
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise GraftError('--dropout must be in [0, 1)')


def training_params(args, manifest, model_dir):
    """params.json for this run: a new model's, or the model_dir's with these flags checked."""
    import os
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.graphs.errors import GraftError
    flags = {name: getattr(args, name) for name in (
        'learning_rate', 'optimizer', 'learning_rate_decay', 'decay_steps', 'train_batch_size',
        'hidden_units', 'dropout')}
    if not os.path.isfile(os.path.join(model_dir, model_dirs.PARAMS_NAME)):
        if os.path.isfile(os.path.join(model_dir, 'checkpoint')):
            raise GraftError('%s holds checkpoints but no %s; use another --model_dir'
                             % (model_dir, model_dirs.PARAMS_NAME))
        return model_dirs.make_params(manifest, args.head or 'softmax', **flags)
    saved = model_dirs.read_params(model_dir)
    wanted = model_dirs.make_params(manifest, args.head or saved['head'], **flags)
    for name, value in flags.items():      # flags not given keep the saved values
        if value is None and name in saved:
            wanted[name] = saved[name]
    model_dirs.check_same_model(saved, wanted, model_dir)
    return wanted


def progress_bar(max_steps):
    from tfgraft.records.progress import progress_bar as make_bar
    shown = (('loss', 'loss'), ('accuracy', 'train_acc'), ('validation_accuracy', 'val_acc'))
    bar = make_bar(max_steps, 'training', 'steps', [label for _, label in shown])

    def update(step, values):
        bar.update(step, [(label, values[name]) for name, label in shown if name in values])
    return update


def train_model(args, bottleneck_dir, model_dir, progress=True):
    """Train (or resume) and report; returns {'train': ..., 'test': ... or None}."""
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.engine.estimator import Estimator, RunConfig
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine import cluster
    from tfgraft.engine.streaming import split_input_fn
    from tfgraft.records.verify import check_records_or_raise
    _check_numbers(args)
    config = RunConfig(save_checkpoints_steps=args.save_checkpoints_steps,
                       keep_checkpoint_max=args.keep_checkpoint_max,
                       summaries_dir=args.summaries_dir or '', tf_random_seed=args.seed)
    task = cluster.task_from_env()
    if task is not None:     # one task of a TF_CONFIG cluster (engine/cluster.py)
        return cluster.train_records(
            task, bottleneck_dir, model_dir, lambda manifest: training_params(args, manifest, model_dir),
            config, args.how_many_training_steps, args.eval_step_interval, args.max_in_memory_mb,
            progress_bar(args.how_many_training_steps) if progress else None)
    manifest = check_records_or_raise(bottleneck_dir)
    params = training_params(args, manifest, model_dir)
    model_dirs.write_params(model_dir, params)
    counts = {split: info['count'] for split, info in manifest['splits'].items()}
    train_fn = split_input_fn(bottleneck_dir, 'train', params['train_batch_size'], manifest,
                              args.max_in_memory_mb, args.seed)
    validation_fn = None
    if counts.get('validation'):
        validation_fn = split_input_fn(bottleneck_dir, 'validation', None, manifest,
                                       args.max_in_memory_mb)
    else:
        print('tfgraft: warning: no validation records; validation accuracy is not measured')
    estimator = Estimator(model_fn, model_dir, params, config)
    print('training the %s head on %d records of %d classes (%s) in %s'
          % (params['head'], counts.get('train', 0), len(params['classes']),
             params['graph']['card']['name'], model_dir))
    result = estimator.train(train_fn, args.how_many_training_steps, validation_fn,
                             args.eval_step_interval,
                             progress_bar(args.how_many_training_steps) if progress else None)
    if 'loss' not in result:
        print('%s is already trained to step %d' % (model_dir, result['global_step']))
    test = None
    if counts.get('test'):
        test = estimator.evaluate(split_input_fn(bottleneck_dir, 'test', None, manifest,
                                                 args.max_in_memory_mb))
        print('Final test accuracy = %.1f%% (N=%d)' % (test['accuracy'] * 100, test['count']))
    return {'train': result, 'test': test, 'params': params}


def run(args):
    from tfgraft.engine.curves import save_training_curves
    train_model(args, args.bottleneck_dir, args.model_dir)
    print('learning curves: %s' % save_training_curves(args.model_dir, args.summaries_dir))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('train'))
