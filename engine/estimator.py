"""An Estimator on tf.compat.v1 graphs: model_fn + input_fns, train / evaluate / predict.

    spec = model_fn(features, labels, mode, params)   -> EstimatorSpec
    estimator = Estimator(model_fn, model_dir, params)
    estimator.train(input_fn, max_steps, validation_input_fn=..., eval_every=10)
    estimator.evaluate(input_fn) -> {'accuracy': ..., 'loss': ..., 'global_step': ...}
    estimator.predict(input_fn)  -> one dict of numpy values per example

Training runs many steps per session.run (a tf.while_loop that draws a batch
and applies one update per pass), stopping at every validation, summary and
checkpoint boundary. It resumes from the latest checkpoint in model_dir,
saves every `save_checkpoints_steps` steps and at the end (TensorFlow writes
checkpoint files and the `checkpoint` state file by temp file and rename, so
an interruption costs at most the steps since the last save), and writes
TensorBoard scalars to <summaries_dir>/train and <summaries_dir>/validation.
"""
import collections
import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfgraft.graphs.errors import GraftError

tf1 = tf.compat.v1


class ModeKeys:
    TRAIN = 'train'
    EVAL = 'eval'
    PREDICT = 'infer'


# predictions: dict of [N, ...] tensors; eval_metrics: dict of scalars over a
# batch; train_scalars: dict of scalars reported after each run of steps.
EstimatorSpec = collections.namedtuple(
    'EstimatorSpec', 'mode predictions loss train_op eval_metrics train_scalars',
    defaults=(None, None, None, None, None))


@dataclasses.dataclass
class RunConfig:
    save_checkpoints_steps: int = 500
    keep_checkpoint_max: int = 5
    summaries_dir: str = ''        # default: the model_dir
    steps_per_run: int = 100       # most training steps per session.run
    tf_random_seed: int = 0        # graph-level seed of every graph built: runs repeat exactly


def scalar_summary(tag, value):
    """A TensorBoard summary of one scalar."""
    return tf1.Summary(value=[tf1.Summary.Value(tag=tag, simple_value=float(value))])


def mean_metrics(session, metrics, count, batches):
    """The metrics over `batches` runs (one: the whole data in one batch, as held in the
    graph), each run's values weighted by its batch's size (the tensor `count`)."""
    if not batches or batches == 1:
        return session.run(metrics)
    totals, seen = collections.Counter(), 0
    for _ in range(batches):
        measured, count_now = session.run([metrics, count])
        for name, value in measured.items():
            totals[name] += float(value) * count_now
        seen += count_now
    return {name: total / seen for name, total in totals.items()}


class Estimator:
    def __init__(self, model_fn, model_dir, params, config=None):
        self.model_fn = model_fn
        self.model_dir = model_dir
        self.params = params
        self.config = config or RunConfig()

    def latest_checkpoint(self):
        path = tf1.train.latest_checkpoint(self.model_dir) if os.path.isdir(self.model_dir) else None
        if path is None:
            raise GraftError('%s holds no checkpoint; run `tfgraft train` first' % self.model_dir)
        return path

    def new_graph(self):
        """A tf.Graph carrying the config's graph-level seed: every graph the model is
        built in starts from it, so its random ops draw the same numbers each run."""
        graph = tf.Graph()
        graph.seed = self.config.tf_random_seed
        return graph

    def call_model_fn(self, inputs, mode):
        """(spec, labels) of the model built on the next batch of `inputs`, variables shared."""
        features, labels = inputs.next_batch()
        with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
            return self.model_fn(features, labels, mode, self.params), labels

    def _step_loop(self, inputs, global_step, last_step, intervals):
        """Run up to the next multiple of any of `intervals` (or last_step) in one go.

        Returns (global step after, [scalar names], stacked scalars of the last step).
        """
        start = global_step.read_value()
        count = last_step - start
        for interval in intervals:
            count = tf.minimum(count, interval - start % interval)
        return self.train_steps(inputs, global_step, lambda index: index < count)

    def train_steps(self, inputs, global_step, keep_going):
        """Training steps in one session run while keep_going(index) holds (index: the
        steps this run has taken). Returns (global step after, [scalar names], stacked
        scalars of the last step)."""
        names = []

        def one_step(index, _):
            spec, _ = self.call_model_fn(inputs, ModeKeys.TRAIN)
            names[:] = sorted(spec.train_scalars)
            with tf.control_dependencies([spec.train_op]):
                values = tf.stack([tf.cast(spec.train_scalars[n], tf.float32) for n in names])
            return index + 1, values

        _, values = tf1.while_loop(
            lambda index, _: keep_going(index), one_step,
            [tf.constant(0, tf.int64), tf.zeros([0])],
            shape_invariants=[tf.TensorShape([]), tf.TensorShape([None])],
            parallel_iterations=1, name='train_steps')
        with tf.control_dependencies([values]):
            step_after = global_step.read_value()
        return step_after, names, values

    def _writer(self, name, graph=None):
        folder = os.path.join(self.config.summaries_dir or self.model_dir, name)
        return tf1.summary.FileWriter(folder, graph)

    def train(self, input_fn, max_steps, validation_input_fn=None, eval_every=10, progress=None):
        """Train until the global step reaches max_steps; returns the last reported values.

        With validation_input_fn, the metrics over its whole data are computed
        every `eval_every` steps and at the end. progress(step, values) is
        called after every run of steps.
        """
        os.makedirs(self.model_dir, exist_ok=True)
        config = self.config
        intervals = {config.steps_per_run, config.save_checkpoints_steps}
        if validation_input_fn is not None:
            intervals.add(eval_every)
        graph = self.new_graph()
        with graph.as_default():
            global_step = tf1.train.get_or_create_global_step()
            inputs = input_fn()
            step_after, names, values = self._step_loop(
                inputs, global_step, tf.constant(max_steps, tf.int64),
                [tf.constant(interval, tf.int64) for interval in sorted(intervals)])
            hooks = list(inputs.hooks)
            validation = None
            if validation_input_fn is not None:
                validation_inputs = validation_input_fn()
                validation, validation_labels = self.call_model_fn(validation_inputs, ModeKeys.EVAL)
                validation_count = None
                if (validation_inputs.batches or 1) > 1:     # streamed: a pass of many batches
                    validation_count = tf.shape(validation_labels)[0]
                hooks += validation_inputs.hooks
            saver = tf1.train.Saver(max_to_keep=config.keep_checkpoint_max)
            scaffold = tf1.train.Scaffold(saver=saver)
            hooks.append(tf1.train.CheckpointSaverHook(
                self.model_dir, scaffold=scaffold, save_steps=config.save_checkpoints_steps))
            train_writer = self._writer('train', graph)
            validation_writer = self._writer('validation') if validation else None
            creator = tf1.train.ChiefSessionCreator(scaffold=scaffold, checkpoint_dir=self.model_dir)
            reported = {}
            try:
                with tf1.train.MonitoredSession(session_creator=creator, hooks=hooks) as session:
                    while not session.should_stop():
                        before = reported.get('global_step')
                        step, last = session.run([step_after, values])
                        reported = dict(zip(names, last.tolist()), global_step=int(step))
                        if not len(last):      # already trained to max_steps
                            break
                        for name, value in zip(names, last):
                            train_writer.add_summary(scalar_summary(name, value), step)
                        if validation and (step >= max_steps or before is None
                                           or step // eval_every > before // eval_every):
                            measured = session.run_step_fn(lambda step_context: mean_metrics(
                                step_context.session, validation.eval_metrics, validation_count,
                                validation_inputs.batches))
                            for name, value in measured.items():
                                validation_writer.add_summary(scalar_summary(name, value), step)
                                reported['validation_' + name] = float(value)
                        if progress:
                            progress(int(step), reported)
                        if step >= max_steps:
                            break
            finally:
                train_writer.close()
                if validation_writer:
                    validation_writer.close()
        return reported

    def restored_session(self, checkpoint, hooks):
        creator = tf1.train.ChiefSessionCreator(checkpoint_filename_with_path=checkpoint)
        return tf1.train.MonitoredSession(session_creator=creator, hooks=hooks)

    def evaluate(self, input_fn, checkpoint=None):
        """Means of the model's eval_metrics over one pass of input_fn's data."""
        checkpoint = checkpoint or self.latest_checkpoint()
        with self.new_graph().as_default():
            global_step = tf1.train.get_or_create_global_step()
            inputs = input_fn()
            spec, labels = self.call_model_fn(inputs, ModeKeys.EVAL)
            count = tf.shape(labels)[0]
            totals, seen = collections.Counter(), 0
            with self.restored_session(checkpoint, inputs.hooks) as session:
                for _ in range(inputs.batches):
                    measured, batch_count = session.run([spec.eval_metrics, count])
                    for name, value in measured.items():
                        totals[name] += float(value) * batch_count
                    seen += batch_count
                step = session.run(global_step)
        results = {name: total / seen for name, total in totals.items()}
        results.update(global_step=int(step), count=seen)
        return results

    def predict(self, input_fn, checkpoint=None):
        """Yield one {name: numpy value} per example, in input order."""
        checkpoint = checkpoint or self.latest_checkpoint()
        with self.new_graph().as_default():
            tf1.train.get_or_create_global_step()
            inputs = input_fn()
            features, _ = inputs.next_batch()
            with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
                spec = self.model_fn(features, None, ModeKeys.PREDICT, self.params)
            with self.restored_session(checkpoint, inputs.hooks) as session:
                for _ in range(inputs.batches):
                    batch = session.run(spec.predictions)
                    for index in range(len(next(iter(batch.values())))):
                        yield {name: np.asarray(value[index]) for name, value in batch.items()}
