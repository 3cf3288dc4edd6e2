"""input_fns that stream a split from its TFRecord shards, so memory stays flat in its size.

A split larger than --max_in_memory_mb (its vectors as float32) is not loaded, nor are
the splits of a training run whose vectors would together pass it:
training draws batches from tf.data (shards interleaved in parallel, a shuffle
buffer of bounded size, repeated), evaluation reads it once in fixed batches.
Smaller splits keep inputs.py's in-graph path, so their results do not change.
On a cluster every worker reads its own part of the shards (Dataset.shard).
"""
import tensorflow as tf

from tfgraft.engine.inputs import Inputs, records_input_fn
from tfgraft.graphs.errors import GraftError
from tfgraft.records import reader, schema
from tfgraft.records.pipeline import usable_cores, without_autotune

tf1 = tf.compat.v1

DEFAULT_MAX_IN_MEMORY_MB = 1024
TRAINING_SPLITS = ('train', 'validation', 'test')   # what `train` reads, the limit on them together
SHUFFLE_BUFFER_MB = 32        # serialized records held by the training shuffle buffer
EVAL_BATCH = 1024             # records per run when a split is read once
INTERLEAVE = 16               # shards read in turns by a training stream
FILES_PER_WORKER = 8          # fewer shards a worker: workers split records, not shards


def split_megabytes(manifest, split):
    """What the in-graph path would hold of `split`: its vectors as float32, in MiB."""
    info = manifest['splits'].get(split) or {'count': 0}
    return info['count'] * manifest['bottleneck_size'] * 4 / float(1 << 20)


def held_megabytes(manifest, splits):
    """What the in-graph path would hold of all of `splits` (each counted once), in MiB."""
    return sum(split_megabytes(manifest, name) for name in set(splits))


def should_stream(manifest, split, max_in_memory_mb, held_with=()):
    """Whether `split` is streamed: when it and the splits held beside it (held_with)
    would hold more than the limit together."""
    return held_megabytes(manifest, (split,) + tuple(held_with)) > max_in_memory_mb


def _parsed_batches(records, bottleneck_size):
    """(features, labels) from a dataset of batches of serialized records."""
    spec = schema.feature_spec(bottleneck_size)
    wanted = {'bottleneck': spec['bottleneck'], 'label': spec['label']}

    @tf.autograph.experimental.do_not_convert
    def parse(batch):
        parsed = tf.io.parse_example(batch, wanted)
        return {'bottleneck': parsed['bottleneck']}, parsed['label']
    return records.map(parse, num_parallel_calls=usable_cores())


def stream_training_input_fn(bottleneck_dir, split, batch_size, manifest=None, seed=0,
                             num_shards=1, shard_index=0):
    """Endless shuffled batches of `split`, read from its shards (this worker's part of them).

    Shards are written in listing order (sorted by class), so the draw mixes
    them: up to INTERLEAVE shards, picked anew each epoch, are read in turns, then
    a shuffle buffer of SHUFFLE_BUFFER_MB. With FILES_PER_WORKER shards a worker
    or more, each worker reads every num_shards-th shard; with fewer, every worker
    reads them all and keeps every num_shards-th record of each (its part stays a
    sample of every class, the same records every epoch).
    """
    manifest = manifest or reader.read_manifest(bottleneck_dir)
    files = reader.split_files(bottleneck_dir, split, manifest)
    count = manifest['splits'][split]['count']
    if not count:
        raise GraftError('%s: the %s split holds no records' % (bottleneck_dir, split))
    size = manifest['bottleneck_size']
    record_bytes = size * 4 + 200
    buffer = int(max(batch_size, min(count, SHUFFLE_BUFFER_MB * (1 << 20) // record_bytes)))
    by_file = len(files) >= FILES_PER_WORKER * num_shards

    def input_fn():
        names = tf.data.Dataset.from_tensor_slices(files)
        if by_file and num_shards > 1:
            names = names.shard(num_shards, shard_index)
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        cycle = min(len(files), INTERLEAVE)

        def read(name):
            shard = tf.data.TFRecordDataset(name, buffer_size=256 << 10)
            if not by_file and num_shards > 1:     # every num_shards-th record of each shard
                shard = shard.shard(num_shards, shard_index)
            return shard
        records = names.interleave(
            read, cycle_length=cycle, block_length=1, num_parallel_calls=min(cycle, usable_cores()),
            deterministic=True)
        # repeated after the shuffles: every epoch draws each record once, in a new order
        records = records.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
        batches = _parsed_batches(records.batch(batch_size, drop_remainder=True), size)
        iterator = tf1.data.make_one_shot_iterator(without_autotune(batches.prefetch(2)))
        return Inputs(iterator.get_next, None, [])
    return input_fn


def stream_pass_input_fn(bottleneck_dir, split, manifest=None, batch_size=EVAL_BATCH):
    """One pass over `split` in order, `batches` runs of up to batch_size records, repeated
    (so a validation during training can read it again and again)."""
    manifest = manifest or reader.read_manifest(bottleneck_dir)
    files = reader.split_files(bottleneck_dir, split, manifest)
    count = manifest['splits'][split]['count']
    if not count:
        raise GraftError('%s: the %s split holds no records' % (bottleneck_dir, split))

    def input_fn():
        records = tf.data.TFRecordDataset(files, buffer_size=1 << 20)
        batches = _parsed_batches(records.batch(batch_size), manifest['bottleneck_size'])
        iterator = tf1.data.make_one_shot_iterator(without_autotune(batches.repeat().prefetch(2)))
        return Inputs(iterator.get_next, -(-count // batch_size), [])
    return input_fn


def split_input_fn(bottleneck_dir, split, batch_size, manifest, max_in_memory_mb, seed=0,
                   held_with=()):
    """records_input_fn below the limit (today's path, same results), a streaming one above.

    batch_size None: the whole split for evaluation (one batch in memory, or a pass).
    held_with: the other splits the same run would hold (training holds train,
    validation and test at once): the limit is on all of them together.
    """
    if not should_stream(manifest, split, max_in_memory_mb, held_with):
        return records_input_fn(bottleneck_dir, split, batch_size, manifest)
    held = sorted(set(held_with) | {split})
    print('tfgraft: the %s split (%.1f MiB of vectors) is streamed from its shards '
          '(%s: %.1f MiB together, over --max_in_memory_mb %g)'
          % (split, split_megabytes(manifest, split), ', '.join(held),
             held_megabytes(manifest, held), max_in_memory_mb))
    if batch_size is None:
        return stream_pass_input_fn(bottleneck_dir, split, manifest)
    return stream_training_input_fn(bottleneck_dir, split, batch_size, manifest, seed)


def stream_split_rows(bottleneck_dir, split, manifest=None, batch_size=EVAL_BATCH):
    """Yield (bottlenecks [n, D], labels [n], image_paths) batches of a split, in order,
    parsed by tf.data: the whole split is never held."""
    manifest = manifest or reader.read_manifest(bottleneck_dir)
    files = reader.split_files(bottleneck_dir, split, manifest)
    spec = schema.feature_spec(manifest['bottleneck_size'])
    wanted = {name: spec[name] for name in ('bottleneck', 'label', 'image_path')}
    records = tf.data.TFRecordDataset(files, buffer_size=1 << 20).batch(batch_size)
    parsed = without_autotune(records.map(lambda batch: tf.io.parse_example(batch, wanted))
                              .prefetch(1))
    try:
        for batch in parsed.as_numpy_iterator():
            yield (batch['bottleneck'], batch['label'],
                   [path.decode('utf-8') for path in batch['image_path']])
    except tf.errors.DataLossError as error:
        raise GraftError('corrupt record in %s: %s'
                         % (bottleneck_dir, error.message.splitlines()[0])) from None


def stream_evaluation_report(estimator, bottleneck_dir, split, manifest, checkpoint,
                             batch_size=EVAL_BATCH):
    """metrics.evaluation_report of a split read in one streamed pass: per record only
    its label, predicted class and score are kept (and the path of a misclassified one)."""
    import numpy as np
    from tfgraft.engine.estimator import ModeKeys
    from tfgraft.engine.metrics import report_of
    files = reader.split_files(bottleneck_dir, split, manifest)
    spec = schema.feature_spec(manifest['bottleneck_size'])
    wanted = {name: spec[name] for name in ('bottleneck', 'label', 'image_path')}
    classes = estimator.params['classes']
    count = manifest['splits'][split]['count']
    labels, predicted, wrong = [], [], []
    with estimator.new_graph().as_default():
        tf1.train.get_or_create_global_step()
        records = tf.data.TFRecordDataset(files, buffer_size=1 << 20).batch(batch_size)
        parsed = records.map(tf.autograph.experimental.do_not_convert(
            lambda batch: tf.io.parse_example(batch, wanted)), num_parallel_calls=usable_cores())
        batch = tf1.data.make_one_shot_iterator(without_autotune(parsed.prefetch(2))).get_next()
        with tf1.variable_scope(tf1.get_variable_scope(), reuse=tf1.AUTO_REUSE):
            model = estimator.model_fn({'bottleneck': batch['bottleneck']}, None,
                                       ModeKeys.PREDICT, estimator.params)
        probabilities = model.predictions['probabilities']
        top = tf.argmax(probabilities, axis=1)
        score = tf.reduce_max(probabilities, axis=1)
        try:
            with estimator.restored_session(checkpoint, []) as session:
                for _ in range(-(-count // batch_size)):
                    truth, guess, best, paths = session.run([batch['label'], top, score,
                                                             batch['image_path']])
                    for index in np.flatnonzero(guess != truth):
                        wrong.append({'image_path': paths[index].decode('utf-8'),
                                      'true': classes[truth[index]], 'predicted': classes[guess[index]],
                                      'score': float(best[index])})
                    labels.append(truth)
                    predicted.append(guess)
        except tf.errors.DataLossError as error:
            raise GraftError('corrupt record in %s: %s'
                             % (bottleneck_dir, error.message.splitlines()[0])) from None
    labels = np.concatenate(labels) if labels else np.zeros([0], np.int64)
    predicted = np.concatenate(predicted) if predicted else np.zeros([0], np.int64)
    return report_of(labels, predicted, classes, split, wrong)
