"""Splits over --max_in_memory_mb are streamed from their shards (engine/streaming.py);
below it training, validation and evaluation are what they were."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfgraft.engine import model_dir as model_dirs
from tfgraft.engine.estimator import Estimator, RunConfig
from tfgraft.engine.heads import model_fn
from tfgraft.engine.inputs import records_input_fn
from tfgraft.engine.streaming import should_stream, split_megabytes, stream_training_input_fn
from tfgraft.records import reader
from tfgraft.tools.cli import main
from tfgraft.engine.evaluation import evaluate_model

from test_engine import write_synthetic_records


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('synthetic'))
    write_synthetic_records(folder, counts={'train': 600, 'validation': 150, 'test': 90}, spread=8.0)
    return folder


def weights_of(model_dir):
    values = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
    return {name: values.get_tensor(name) for name in ('final_training_ops/weights/final_weights',
                                                       'final_training_ops/biases/final_biases')}


def test_below_the_limit_training_is_what_it_was(synthetic, tmp_path, capsys):
    """`tfgraft train` with the default limit against the in-graph path driven by hand
    (records_input_fn, as train_model called it before streaming existed): same weights."""
    ours = str(tmp_path / 'ours')
    assert main(['train', '--bottleneck_dir', synthetic, '--model_dir', ours, '--seed', '3',
                 '--how_many_training_steps', '250', '--eval_step_interval', '50',
                 '--train_batch_size', '32']) == 0
    assert 'streamed' not in capsys.readouterr().out
    manifest = reader.read_manifest(synthetic)
    before = str(tmp_path / 'before')
    params = model_dirs.make_params(manifest, 'softmax', train_batch_size=32)
    estimator = Estimator(model_fn, before, params, RunConfig(tf_random_seed=3))
    result = estimator.train(records_input_fn(synthetic, 'train', 32, manifest), 250,
                             records_input_fn(synthetic, 'validation', None, manifest), 50)
    assert result['global_step'] == 250
    mine, theirs = weights_of(ours), weights_of(before)
    for name in mine:
        assert np.array_equal(mine[name], theirs[name]), name
    assert not np.allclose(mine['final_training_ops/weights/final_weights'], 0, atol=1e-3)


def test_the_stream_reads_every_record_and_splits_them_between_workers(synthetic):
    manifest = reader.read_manifest(synthetic)
    seen = []
    for index in range(2):
        with tf.Graph().as_default():
            inputs = stream_training_input_fn(synthetic, 'train', 50, manifest, seed=1,
                                              num_shards=2, shard_index=index)()
            features, labels = inputs.next_batch()
            with tf.compat.v1.Session() as session:     # two epochs of this worker's 300
                batches = [session.run([features['bottleneck'], labels]) for _ in range(12)]
        first = {tuple(row) for vectors, _ in batches[:6] for row in vectors.tolist()}
        both = {tuple(row) for vectors, _ in batches for row in vectors.tolist()}
        assert len(first) == 300 and both == first   # each epoch: every record once, the same part
        assert np.bincount(np.concatenate([truth for _, truth in batches[:6]])).tolist() == [100] * 3
        seen.append(first)
    every = {tuple(row) for row in reader.load_split(synthetic, 'train')['bottlenecks'].tolist()}
    assert not seen[0] & seen[1] and seen[0] | seen[1] == every


def test_evaluate_streamed_reports_what_the_loaded_split_reports(synthetic, tmp_path):
    model_dir = str(tmp_path / 'model')
    assert main(['train', '--bottleneck_dir', synthetic, '--model_dir', model_dir,
                 '--how_many_training_steps', '60', '--eval_step_interval', '30']) == 0
    loaded = evaluate_model(model_dir, synthetic, 'validation', str(tmp_path / 'loaded'))
    streamed = evaluate_model(model_dir, synthetic, 'validation', str(tmp_path / 'streamed'),
                              max_in_memory_mb=0)
    assert 0.5 < loaded['accuracy'] < 1          # some mistakes to compare
    for key in ('count', 'accuracy', 'per_class', 'confusion_matrix'):
        assert streamed[key] == loaded[key], key
    assert [row['image_path'] for row in streamed['misclassified']] == \
        [row['image_path'] for row in loaded['misclassified']]
    assert np.allclose([row['score'] for row in streamed['misclassified']],
                       [row['score'] for row in loaded['misclassified']], atol=1e-6)
    written = json.load(open(os.path.join(str(tmp_path / 'streamed'), 'report.json')))
    assert written['confusion_matrix'] == loaded['confusion_matrix']


def train_in_memory_and_streamed(records, tmp_path, capsys, limit, steps):
    """`tfgraft train` with the default limit, then with `limit`:
    {'in_memory' | 'streamed': (what it printed, validation accuracy)}."""
    runs = {}
    for name, flags in (('in_memory', []), ('streamed', ['--max_in_memory_mb', '%g' % limit])):
        model_dir = str(tmp_path / name)
        assert main(['train', '--bottleneck_dir', records, '--model_dir', model_dir,
                     '--how_many_training_steps', str(steps),
                     '--eval_step_interval', str(steps // 3)] + flags) == 0
        runs[name] = (capsys.readouterr().out,
                      evaluate_model(model_dir, records, 'validation')['accuracy'])
    return runs


def test_a_tiny_limit_streams_and_trains_as_well_on_real_records(cats_dogs_records, tmp_path, capsys):
    manifest = reader.read_manifest(cats_dogs_records)
    runs = train_in_memory_and_streamed(cats_dogs_records, tmp_path, capsys,
                                        split_megabytes(manifest, 'train') / 4, 1500)
    for name, (out, _) in runs.items():
        assert ('the train split' in out and 'is streamed' in out) == (name == 'streamed')
    accuracy = {name: value for name, (_, value) in runs.items()}
    print('validation accuracy after 1500 steps: %s' % accuracy)
    assert accuracy['streamed'] >= 0.85
    assert abs(accuracy['streamed'] - accuracy['in_memory']) <= 0.02


def test_the_limit_is_on_what_training_holds_together(synthetic, tmp_path, capsys):
    """Each split alone fits under the limit, the three together do not: training holds
    them all at once, so all three are streamed (memory stays flat at 10x the records)."""
    manifest = reader.read_manifest(synthetic)
    sizes = {split: split_megabytes(manifest, split) for split in ('train', 'validation', 'test')}
    limit = max(sizes.values()) * 1.05
    assert limit < sum(sizes.values())
    assert not should_stream(manifest, 'train', limit)
    assert should_stream(manifest, 'test', limit, held_with=('train', 'validation'))
    runs = train_in_memory_and_streamed(synthetic, tmp_path, capsys, limit, 300)
    for name, (out, _) in runs.items():
        for split in ('train', 'validation', 'test'):
            assert ('the %s split' % split in out) == (name == 'streamed'), out
    assert runs['in_memory'][1] > 0.5          # three classes: chance is 1/3
    # 150 validation records of overlapping clusters (about 70% separable): two runs that
    # draw their batches differently differ by a few records, about 0.04 (one sigma) apart
    assert abs(runs['streamed'][1] - runs['in_memory'][1]) <= 0.1
