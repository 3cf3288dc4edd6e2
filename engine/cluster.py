"""Training on TensorFlow's own cluster runtime, configured by TF_CONFIG as Estimator's was.

    TF_CONFIG='{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"],
                            "ps": ["host2:2222"], "evaluator": ["host3:2222"]},
                "task": {"type": "worker", "index": 0}}'

Every process of the cluster runs the same `tfgraft train` (or finetune) command
with its own task. Each starts a tf.distribute Server (tf.compat.v1.train.Server);
the model's variables live on the parameter servers (replica_device_setter);
chief and workers train between-graph, each on its own part of the records
(Dataset.shard), updating the shared variables asynchronously. Only the chief
initialises or restores the variables (from the latest checkpoint in model_dir,
so a restarted chief resumes) and writes checkpoints and summaries. At the end
the chief puts a token in a FIFOQueue on each parameter server, whose only
session is waiting to dequeue it: then the parameter servers exit by themselves.
An evaluator (outside the training cluster) evaluates each new checkpoint and
writes validation summaries. Without TF_CONFIG none of this runs.
"""
import dataclasses
import json
import os
import time

import tensorflow as tf

from tfgraft.graphs.errors import GraftError

tf1 = tf.compat.v1

TRAINING_JOBS = ('chief', 'worker', 'ps')
TASK_TYPES = TRAINING_JOBS + ('evaluator',)
STEPS_PER_RUN = 20             # steps of one session.run on a cluster: the loop also stops at the last step
WAIT_SECS = 7200               # how long a worker or evaluator waits for the chief
DONE_QUEUE = 'tfgraft_chief_done_%d'
GONE = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError)


@dataclasses.dataclass
class Task:
    cluster: dict      # job name -> ['host:port', ...]
    type: str
    index: int

    @property
    def is_chief(self):
        return self.type == 'chief'

    @property
    def device(self):
        return '/job:%s/task:%d' % (self.type, self.index)

    @property
    def num_workers(self):
        """Chief and workers: the tasks that train, each on its own part of the data."""
        return len(self.cluster.get('chief', [])) + len(self.cluster.get('worker', []))

    @property
    def worker_index(self):
        return 0 if self.is_chief else 1 + self.index

    def cluster_spec(self):
        return tf.train.ClusterSpec({job: self.cluster[job] for job in TRAINING_JOBS
                                     if self.cluster.get(job)})

    def session_config(self):
        """Sessions of a chief or worker see only the parameter servers and themselves,
        so a worker that is down never holds up another task."""
        filters = ['/job:ps', self.device] if self.type in ('chief', 'worker') else [self.device]
        return tf1.ConfigProto(device_filters=filters)


def task_from_env(environ=None):
    """The Task of this process from TF_CONFIG, or None when TF_CONFIG is unset or names no cluster."""
    text = (os.environ if environ is None else environ).get('TF_CONFIG', '').strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise GraftError('TF_CONFIG is not JSON: %s' % error) from None
    if not isinstance(config, dict) or not config.get('cluster'):
        return None
    cluster, task = config['cluster'], config.get('task') or {}
    if not isinstance(cluster, dict) or set(cluster) - set(TASK_TYPES) or not all(
            isinstance(hosts, list) and all(isinstance(h, str) for h in hosts) for hosts in cluster.values()):
        raise GraftError('TF_CONFIG cluster must map %s to lists of host:port' % ', '.join(TASK_TYPES))
    if len(cluster.get('chief', [])) != 1 or not cluster.get('ps'):
        raise GraftError('TF_CONFIG cluster needs one chief and at least one ps '
                         '(parameter server); it has %s'
                         % ', '.join('%d %s' % (len(v), k) for k, v in sorted(cluster.items())))
    kind, index = task.get('type'), task.get('index', 0)
    if kind not in TASK_TYPES or not isinstance(index, int) or \
            not 0 <= index < len(cluster.get(kind, [])):
        raise GraftError('TF_CONFIG task %r is not one of the cluster\'s tasks' % (task,))
    return Task({job: list(hosts) for job, hosts in cluster.items()}, kind, index)


def start_server(task):
    return tf1.train.Server(task.cluster_spec(), job_name=task.type, task_index=task.index,
                            config=task.session_config(), start=True)


def _done_queue(ps_index):
    """The FIFOQueue on parameter server ps_index that says the chief has finished."""
    with tf1.device('/job:ps/task:%d' % ps_index):
        return tf1.FIFOQueue(1, tf.int32, shared_name=DONE_QUEUE % ps_index,
                             name=DONE_QUEUE % ps_index)


def run_ps(task):
    """Serve the variables until the chief says it is done, then return."""
    server = start_server(task)
    print('tfgraft: parameter server %d serving at %s until the chief is done'
          % (task.index, task.cluster['ps'][task.index]), flush=True)
    with tf.Graph().as_default():
        dequeue = _done_queue(task.index).dequeue()
        with tf1.Session(server.target, config=task.session_config()) as session:
            session.run(dequeue)
    print('tfgraft: the chief is done; parameter server %d exits' % task.index, flush=True)


def signal_done(task, server):
    """The chief's last act: one token in every parameter server's done queue."""
    with tf.Graph().as_default():
        tokens = [_done_queue(index).enqueue(1) for index in range(len(task.cluster['ps']))]
        with tf1.Session(server.target, config=task.session_config()) as session:
            session.run(tokens, options=tf1.RunOptions(timeout_in_ms=60000))


def _bounded_steps(estimator, inputs, global_step, last_step):
    """Up to STEPS_PER_RUN training steps in one run, stopping as soon as the shared
    global step reaches last_step (other workers move it too)."""
    return estimator.train_steps(inputs, global_step, lambda index: tf.logical_and(
        index < STEPS_PER_RUN, global_step.read_value() < last_step))


def train(estimator, input_fn, max_steps, task, server, progress=None):
    """Train this chief's or worker's part until the global step reaches max_steps.

    Returns the last reported values (like Estimator.train) and 'start_step', the
    global step this task found when its session was ready.
    """
    from tfgraft.engine.estimator import scalar_summary
    config = estimator.config
    graph = estimator.new_graph()
    with graph.as_default():
        setter = tf1.train.replica_device_setter(worker_device=task.device,
                                                 cluster=task.cluster_spec())
        with tf1.device(setter):
            global_step = tf1.train.get_or_create_global_step()
            inputs = input_fn()
            if inputs.hooks:
                raise GraftError('cluster training needs streamed inputs (no in-graph data)')
            step_after, names, values = _bounded_steps(
                estimator, inputs, global_step, tf.constant(max_steps, tf.int64))
            saver = tf1.train.Saver(max_to_keep=config.keep_checkpoint_max)
            scaffold = tf1.train.Scaffold(saver=saver)
            scaffold.finalize()
        manager = tf1.train.SessionManager(
            local_init_op=scaffold.local_init_op, ready_op=scaffold.ready_op,
            ready_for_local_init_op=scaffold.ready_for_local_init_op, graph=graph,
            recovery_wait_secs=1)      # a worker polls each second until the chief has initialised
        if task.is_chief:
            os.makedirs(estimator.model_dir, exist_ok=True)
            latest = tf1.train.latest_checkpoint(estimator.model_dir)
            if latest:
                print('tfgraft: chief restores %s' % os.path.basename(latest), flush=True)
            session = manager.prepare_session(
                server.target, init_op=scaffold.init_op, saver=saver,
                checkpoint_dir=estimator.model_dir, config=task.session_config())
        else:
            print('tfgraft: worker %d waiting for the chief to initialise the model' % task.index,
                  flush=True)
            session = manager.wait_for_session(server.target, config=task.session_config(),
                                               max_wait_secs=WAIT_SECS)
        writer = tf1.summary.FileWriter(
            os.path.join(config.summaries_dir or estimator.model_dir, 'train'), graph) \
            if task.is_chief else None
        prefix = os.path.join(estimator.model_dir, 'model.ckpt')
        start = int(session.run(global_step))
        print('tfgraft: %s %d starts at global step %d of %d'
              % (task.type, task.index, start, max_steps), flush=True)
        reported, saved = {'global_step': start, 'start_step': start}, start
        try:
            while start < max_steps:
                step, last = session.run([step_after, values])
                step = int(step)
                reported = dict(zip(names, last.tolist()), global_step=step, start_step=start)
                if writer is not None:
                    for name, value in zip(names, last):
                        writer.add_summary(scalar_summary(name, value), step)
                    if step >= max_steps or step // config.save_checkpoints_steps > \
                            saved // config.save_checkpoints_steps:
                        saver.save(session, prefix, global_step=step)
                        saved = step
                if progress:
                    progress(step, reported)
                if step >= max_steps:
                    break
        except GONE as error:
            if task.is_chief:
                raise
            print('tfgraft: worker %d stops: the parameter servers are gone (%s)'
                  % (task.index, type(error).__name__), flush=True)
        finally:
            if writer is not None:
                writer.close()
            session.close()
    return reported


def wait_for_params(model_dir, task):
    """The chief writes params.json first; workers and the evaluator read it."""
    from tfgraft.engine import model_dir as model_dirs
    path = os.path.join(model_dir, model_dirs.PARAMS_NAME)
    deadline = time.time() + WAIT_SECS
    while not os.path.isfile(path):
        if time.time() > deadline:
            raise GraftError('%s %d: the chief wrote no %s in %d s' % (task.type, task.index, path, WAIT_SECS))
        time.sleep(0.5)
    return model_dirs.read_params(model_dir)


def run_evaluator(estimator, input_fn, max_steps, min_interval_secs=1):
    """Evaluate every new checkpoint in model_dir until one reaches max_steps; write
    each result to <summaries_dir>/validation. Returns the last result."""
    from tfgraft.engine.estimator import scalar_summary
    folder = os.path.join(estimator.config.summaries_dir or estimator.model_dir, 'validation')
    result = None
    with tf.Graph().as_default():
        writer = tf1.summary.FileWriter(folder)
    try:
        for checkpoint in tf1.train.checkpoints_iterator(estimator.model_dir, min_interval_secs):
            try:
                result = estimator.evaluate(input_fn, checkpoint)
            except (tf.errors.NotFoundError, tf.errors.DataLossError):
                continue          # removed (keep_checkpoint_max) while we read it
            for name in ('accuracy', 'loss'):
                writer.add_summary(scalar_summary(name, result[name]), result['global_step'])
            writer.flush()
            print('tfgraft: evaluator: step %d validation accuracy %.1f%% (N=%d)'
                  % (result['global_step'], result['accuracy'] * 100, result['count']), flush=True)
            if result['global_step'] >= max_steps:
                break
    finally:
        writer.close()
    return result


def train_records(task, bottleneck_dir, model_dir, make_params, config, max_steps, eval_every,
                  max_in_memory_mb, progress=None):
    """`tfgraft train` as one task of a cluster; returns {'train', 'test', 'params', 'task'}.

    make_params(manifest) gives the chief params.json (new, or the model_dir's checked
    against the flags); the other tasks read what the chief wrote.
    """
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.streaming import split_input_fn, stream_training_input_fn
    from tfgraft.records.verify import check_records_or_raise
    done = {'train': None, 'test': None, 'params': None, 'task': task}
    if task.type == 'ps':
        run_ps(task)
        return done
    manifest = check_records_or_raise(bottleneck_dir)
    if task.is_chief:
        params = make_params(manifest)
        model_dirs.write_params(model_dir, params)
    else:
        params = wait_for_params(model_dir, task)
        model_dirs.check_records_match(params, manifest, model_dir, bottleneck_dir)
    done['params'] = params
    counts = {split: info['count'] for split, info in manifest['splits'].items()}
    estimator = Estimator(model_fn, model_dir, params, config)
    if task.type == 'evaluator':
        if not counts.get('validation'):
            raise GraftError('the evaluator needs validation records; %s has none' % bottleneck_dir)
        done['validation'] = run_evaluator(estimator, split_input_fn(
            bottleneck_dir, 'validation', None, manifest, max_in_memory_mb), max_steps)
        return done
    train_fn = stream_training_input_fn(
        bottleneck_dir, 'train', params['train_batch_size'], manifest,
        seed=config.tf_random_seed + task.worker_index, num_shards=task.num_workers,
        shard_index=task.worker_index)
    server = start_server(task)
    print('tfgraft: %s %d of a cluster of %d training tasks and %d parameter servers; '
          '%s head on its part of %d records'
          % (task.type, task.index, task.num_workers, len(task.cluster['ps']), params['head'],
             counts.get('train', 0)), flush=True)
    done['train'] = train(estimator, train_fn, max_steps, task, server, progress)
    if task.is_chief:      # only when done: after a failure the ps keep the model for a restarted chief
        signal_done(task, server)
    if task.is_chief and counts.get('test'):
        test = estimator.evaluate(split_input_fn(bottleneck_dir, 'test', None, manifest,
                                                 max_in_memory_mb))
        print('Final test accuracy = %.1f%% (N=%d)' % (test['accuracy'] * 100, test['count']))
        done['test'] = test
    return done


STAGE_NAME = 'cluster_stage.json'     # the chief's {start_step, max_steps} of a fine-tuning run


def write_stage(model_dir, start_step, max_steps):
    from tfgraft.records.atomic import atomic_write_json
    atomic_write_json(os.path.join(model_dir, STAGE_NAME),
                      {'start_step': int(start_step), 'max_steps': int(max_steps)})


def wait_for_stage(model_dir, task):
    """The steps of the chief's current fine-tuning run: a stage file whose last step is
    beyond the latest checkpoint (an older run's file names a step already reached)."""
    from tfgraft.records.atomic import read_json
    deadline = time.time() + WAIT_SECS
    while True:
        stage = read_json(os.path.join(model_dir, STAGE_NAME))
        latest = tf1.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
        reached = int(latest.rsplit('-', 1)[1]) if latest else -1
        if stage and stage['max_steps'] > reached:
            return stage
        if time.time() > deadline:
            raise GraftError('%s %d: the chief started no fine-tuning run in %s in %d s'
                             % (task.type, task.index, model_dir, WAIT_SECS))
        time.sleep(0.5)
