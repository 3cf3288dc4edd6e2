"""Train (or resume) a head on a bottleneck dir, in a model_dir: the `tfgraft train` job.

    train_model(head_settings, bottleneck_dir, model_dir, TrainingRun(...))

head_settings are what params.json records (HEAD_SETTINGS; None: the head's
default, or the model_dir's saved value on resume); a TrainingRun says how
long and how often (steps, validation, checkpoints, events, seed). Re-running
goes on from the latest checkpoint up to `how_many_training_steps` in all.
"""
import dataclasses
import os

from tfgraft.engine import model_dir as model_dirs
from tfgraft.graphs.errors import GraftError

# The settings params.json keeps; None takes the head's (or the saved) value.
HEAD_SETTINGS = ('head', 'learning_rate', 'optimizer', 'learning_rate_decay', 'decay_steps',
                 'train_batch_size', 'hidden_units', 'dropout')


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    how_many_training_steps: int = 4000
    eval_step_interval: int = 10
    save_checkpoints_steps: int = 500
    keep_checkpoint_max: int = 5
    summaries_dir: str = ''        # default: the model_dir
    max_in_memory_mb: float = 1024  # train, validation and test together above it: streamed
    seed: int = 0


def head_settings(**given):
    """{setting: value} over every HEAD_SETTINGS name, None for those not given."""
    unknown = set(given) - set(HEAD_SETTINGS)
    if unknown:
        raise TypeError('unknown head settings: %s' % ', '.join(sorted(unknown)))
    return {name: given.get(name) for name in HEAD_SETTINGS}


def check_settings(settings, run):
    """One GraftError naming the flag for a count below 1 or a rate out of range."""
    counts = dict(how_many_training_steps=run.how_many_training_steps,
                  train_batch_size=settings['train_batch_size'],
                  eval_step_interval=run.eval_step_interval,
                  save_checkpoints_steps=run.save_checkpoints_steps,
                  keep_checkpoint_max=run.keep_checkpoint_max, decay_steps=settings['decay_steps'])
    for flag, value in counts.items():
        if value is not None and value < 1:
            raise GraftError('--%s must be at least 1' % flag)
    if settings['learning_rate'] is not None and not settings['learning_rate'] > 0:
        raise GraftError('--learning_rate must be positive')
    if settings['dropout'] is not None and not 0 <= settings['dropout'] < 1:
        raise GraftError('--dropout must be in [0, 1)')
    if run.max_in_memory_mb < 0:
        raise GraftError('--max_in_memory_mb must not be negative')


def training_params(settings, manifest, model_dir):
    """params.json for this run: a new model's, or the model_dir's with these settings checked."""
    flags = {name: value for name, value in settings.items() if name != 'head'}
    if not os.path.isfile(os.path.join(model_dir, model_dirs.PARAMS_NAME)):
        if os.path.isfile(os.path.join(model_dir, 'checkpoint')):
            raise GraftError('%s holds checkpoints but no %s; use another --model_dir'
                             % (model_dir, model_dirs.PARAMS_NAME))
        return model_dirs.make_params(manifest, settings['head'] or 'softmax', **flags)
    saved = model_dirs.read_params(model_dir)
    if saved.get('fine_tune', {}).get('kind') == 'npy':
        raise GraftError('%s is a fine-tuned %s whose own fc8 is the head; `tfgraft train` grafts '
                         'heads on bottlenecks: use another --model_dir'
                         % (model_dir, saved['fine_tune']['network']))
    wanted = model_dirs.make_params(manifest, settings['head'] or saved['head'], **flags)
    for name, value in flags.items():      # settings not given keep the saved values
        if value is None and name in saved:
            wanted[name] = saved[name]
    model_dirs.check_same_model(saved, wanted, model_dir)
    return wanted


def progress_bar(max_steps, shown=(('loss', 'loss'), ('accuracy', 'train_acc'),
                                   ('validation_accuracy', 'val_acc')), first_step=0,
                 label='training'):
    """progress(step, values) drawing records.progress's bar over steps first_step..max_steps."""
    from tfgraft.records.progress import progress_bar as make_bar
    bar = make_bar(max_steps - first_step, label, 'steps', [name for _, name in shown])

    def update(step, values):
        bar.update(step - first_step,
                   [(shown_as, values[name]) for name, shown_as in shown if name in values])
    return update


def train_model(settings, bottleneck_dir, model_dir, run=TrainingRun(), progress=True):
    """Train (or resume) and report; returns {'train': ..., 'test': ... or None, 'params': ...}."""
    from tfgraft.engine import cluster
    from tfgraft.engine.estimator import Estimator, RunConfig
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.streaming import TRAINING_SPLITS, split_input_fn
    from tfgraft.records.verify import check_records_or_raise
    settings = head_settings(**settings)
    check_settings(settings, run)
    config = RunConfig(save_checkpoints_steps=run.save_checkpoints_steps,
                       keep_checkpoint_max=run.keep_checkpoint_max,
                       summaries_dir=run.summaries_dir or '', tf_random_seed=run.seed)
    steps = run.how_many_training_steps
    task = cluster.task_from_env()
    if task is not None:     # one task of a TF_CONFIG cluster (engine/cluster.py)
        return cluster.train_records(
            task, bottleneck_dir, model_dir,
            lambda manifest: training_params(settings, manifest, model_dir), config, steps,
            run.eval_step_interval, run.max_in_memory_mb, progress_bar(steps) if progress else None)
    manifest = check_records_or_raise(bottleneck_dir)
    params = training_params(settings, manifest, model_dir)
    model_dirs.write_params(model_dir, params)
    counts = {split: info['count'] for split, info in manifest['splits'].items()}
    held = tuple(split for split in TRAINING_SPLITS if counts.get(split))
    train_fn = split_input_fn(bottleneck_dir, 'train', params['train_batch_size'], manifest,
                              run.max_in_memory_mb, run.seed, held)
    validation_fn = None
    if counts.get('validation'):
        validation_fn = split_input_fn(bottleneck_dir, 'validation', None, manifest,
                                       run.max_in_memory_mb, held_with=held)
    else:
        print('tfgraft: warning: no validation records; validation accuracy is not measured')
    estimator = Estimator(model_fn, model_dir, params, config)
    print('training the %s head on %d records of %d classes (%s) in %s'
          % (params['head'], counts.get('train', 0), len(params['classes']),
             params['graph']['card']['name'], model_dir))
    result = estimator.train(train_fn, steps, validation_fn, run.eval_step_interval,
                             progress_bar(steps) if progress else None)
    if 'loss' not in result:
        print('%s is already trained to step %d' % (model_dir, result['global_step']))
    test = None
    if counts.get('test'):
        test = estimator.evaluate(split_input_fn(bottleneck_dir, 'test', None, manifest,
                                                 run.max_in_memory_mb, held_with=held))
        print('Final test accuracy = %.1f%% (N=%d)' % (test['accuracy'] * 100, test['count']))
    return {'train': result, 'test': test, 'params': params}
