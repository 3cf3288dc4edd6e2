"""Training speed: tfgraft's Estimator against the Inception tutorial's way, in one run.

The schedule is retrain.py's: softmax head, batch 100, plain SGD 0.01, on
2048-d bottlenecks (synthetic records: 3000 of 5 classes). The tutorial's
way draws each batch in Python from lists and feeds it through feed_dict,
one session.run per step; tfgraft holds the split in the graph and runs
many steps per session.run. Printed: steps/s of each and the ratio.

    python benchmarks/train.py [--steps 4000] [--tutorial_steps 500]
"""
import argparse
import json
import os
import random
import tempfile
import time

import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

CLASSES = ['class_%d' % i for i in range(5)]
SIZE = 2048


def write_synthetic_records(folder, count=3000, seed=0):
    """A bottleneck dir of `count` train and count // 10 validation records."""
    import tensorflow as tf
    from tfgraft.records import schema
    rng = np.random.RandomState(seed)
    centres = rng.rand(len(CLASSES), SIZE).astype(np.float32)
    manifest = {'schema_version': schema.SCHEMA_VERSION, 'bottleneck_size': SIZE,
                'classes': CLASSES, 'splits': {},
                'graph': {'card': {'name': 'synthetic'}, 'sha256': '0' * 64, 'path': '', 'layer': None}}
    for split, n in (('train', count), ('validation', count // 10)):
        labels = rng.randint(0, len(CLASSES), n)
        vectors = np.maximum(centres[labels] + rng.randn(n, SIZE).astype(np.float32), 0)
        name = schema.shard_name(split, 0, 1)
        with tf.io.TFRecordWriter(os.path.join(folder, name)) as writer:
            for index, (vector, label) in enumerate(zip(vectors, labels)):
                writer.write(schema.make_example(vector, label, CLASSES[label],
                                                 '%s/%d.jpg' % (CLASSES[label], index), '0' * 64))
        manifest['splits'][split] = {'count': n, 'shards': [name],
                                     'per_class': {c: int((labels == i).sum()) for i, c in enumerate(CLASSES)}}
    with open(os.path.join(folder, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)
    return manifest


def tutorial_way(data, steps, batch_size=100):
    """retrain.py's loop: Python lists, a random batch per step, feed_dict, one run per step."""
    import tensorflow as tf
    tf1 = tf.compat.v1
    vectors = data['bottlenecks'].tolist()
    labels = data['labels'].tolist()
    with tf.Graph().as_default():
        bottleneck_input = tf1.placeholder(tf.float32, [None, SIZE], name='BottleneckInputPlaceholder')
        ground_truth = tf1.placeholder(tf.float32, [None, len(CLASSES)], name='GroundTruthInput')
        weights = tf1.Variable(tf1.truncated_normal([SIZE, len(CLASSES)], stddev=0.001))
        biases = tf1.Variable(tf.zeros([len(CLASSES)]))
        logits = tf.matmul(bottleneck_input, weights) + biases
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=ground_truth, logits=logits))
        train_step = tf1.train.GradientDescentOptimizer(0.01).minimize(loss)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            start = time.time()
            for _ in range(steps):
                batch, truths = [], []
                for _ in range(batch_size):
                    index = random.randrange(len(vectors))
                    truth = [0.0] * len(CLASSES)
                    truth[labels[index]] = 1.0
                    batch.append(vectors[index])
                    truths.append(truth)
                session.run(train_step, {bottleneck_input: batch, ground_truth: truths})
            return time.time() - start


def tfgraft_way(bottleneck_dir, manifest, steps, eval_every=None):
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.engine.estimator import Estimator, RunConfig
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.inputs import records_input_fn
    params = model_dirs.make_params(manifest, 'softmax')
    folder = tempfile.mkdtemp(prefix='model_dir-', dir=bottleneck_dir)
    estimator = Estimator(model_fn, folder, params, RunConfig(save_checkpoints_steps=1000))
    train_fn = records_input_fn(bottleneck_dir, 'train', 100, manifest)
    validation_fn = records_input_fn(bottleneck_dir, 'validation', None, manifest) if eval_every else None
    start = time.time()
    result = estimator.train(train_fn, steps, validation_fn, eval_every or 10)
    return time.time() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=4000)
    parser.add_argument('--tutorial_steps', type=int, default=500,
                        help='steps timed the tutorial way (its rate is steady)')
    args = parser.parse_args()
    from tfgraft.records import reader
    with tempfile.TemporaryDirectory() as bottleneck_dir:
        manifest = write_synthetic_records(bottleneck_dir)
        data = reader.load_split(bottleneck_dir, 'train', manifest)
        rows = []
        seconds = tutorial_way(data, args.tutorial_steps)
        rows.append(('tutorial: feed_dict of Python lists, 1 run/step', args.tutorial_steps, seconds))
        seconds, _ = tfgraft_way(bottleneck_dir, manifest, args.steps)
        rows.append(('tfgraft Estimator.train (checkpoint every 1000)', args.steps, seconds))
        seconds, result = tfgraft_way(bottleneck_dir, manifest, args.steps, eval_every=10)
        rows.append(('tfgraft + whole validation split every 10 steps', args.steps, seconds))
    base = rows[0][1] / rows[0][2]
    print('| way | steps | seconds | steps/s | vs tutorial |')
    print('|---|---:|---:|---:|---:|')
    for name, steps, seconds in rows:
        rate = steps / seconds
        print('| %s | %d | %.1f | %.0f | %.1fx |' % (name, steps, seconds, rate, rate / base))
    print('final validation accuracy %.3f (%d cores)' % (result['validation_accuracy'], os.cpu_count()))


if __name__ == '__main__':
    main()
