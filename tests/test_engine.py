"""The Estimator-style engine on small synthetic bottleneck records."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from tfgraft.engine import model_dir as model_dirs
from tfgraft.engine.estimator import Estimator, RunConfig
from tfgraft.engine.heads import model_fn
from tfgraft.engine.inputs import arrays_input_fn, records_input_fn
from tfgraft.engine.metrics import confusion_matrix, evaluation_report, per_class
from tfgraft.graphs.errors import GraftError
from tfgraft.records import reader
from conftest import SYNTHETIC_SIZE as SIZE, fake_graph, write_synthetic_records

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def records(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('bottlenecks'))
    return folder, write_synthetic_records(folder)


def make_estimator(folder, manifest, head='softmax', config=None, **flags):
    params = model_dirs.make_params(manifest, head, **flags)
    return Estimator(model_fn, folder, params, config or RunConfig(save_checkpoints_steps=100))


def train_fn(records, batch_size=50):
    folder, manifest = records
    return records_input_fn(folder, 'train', batch_size, manifest)


def whole_split(records, split='validation'):
    folder, manifest = records
    return records_input_fn(folder, split, None, manifest)


def node_names(graph_def):
    return {node.name for node in graph_def.node}


def test_softmax_head_keeps_the_tutorial_names(records):
    _, manifest = records
    params = model_dirs.make_params(manifest, 'softmax')
    with tf.Graph().as_default() as graph:
        bottlenecks = tf1.placeholder(tf.float32, [None, SIZE])
        labels = tf1.placeholder(tf.int64, [None])
        tf1.train.get_or_create_global_step()
        model_fn({'bottleneck': bottlenecks}, labels, 'train', params)
        names = node_names(graph.as_graph_def())
        variables = {v.op.name: v.shape.as_list() for v in tf1.trainable_variables()}
    assert {'BottleneckInputPlaceholder', 'GroundTruthInput', 'final_result', 'cross_entropy'} <= names
    assert variables == {'final_training_ops/weights/final_weights': [SIZE, 3],
                         'final_training_ops/biases/final_biases': [3]}


def test_dnn_head_builds_its_hidden_layers(records):
    _, manifest = records
    params = model_dirs.make_params(manifest, 'dnn', hidden_units=[16, 8])
    with tf.Graph().as_default():
        model_fn({'bottleneck': tf1.placeholder(tf.float32, [None, SIZE])}, None, 'infer', params)
        shapes = {v.op.name: v.shape.as_list() for v in tf1.trainable_variables()}
    assert shapes['dnn/hiddenlayer_0/weights'] == [SIZE, 16]
    assert shapes['dnn/hiddenlayer_1/weights'] == [16, 8]
    assert shapes['final_training_ops/weights/final_weights'] == [8, 3]


def test_logit_head_gives_two_probabilities_and_refuses_three_classes(tmp_path, records):
    _, manifest = records
    with pytest.raises(GraftError, match='2 classes'):
        model_dirs.make_params(manifest, 'logit')
    with pytest.raises(GraftError, match='2 classes'), tf.Graph().as_default():
        model_fn({'bottleneck': tf.zeros([1, SIZE])}, None, 'infer',
                 dict(model_dirs.make_params(manifest, 'softmax'), head='logit'))
    folder = str(tmp_path / 'two')
    two = (folder, write_synthetic_records(folder, classes=('cats', 'dogs'), seed=3))
    estimator = make_estimator(str(tmp_path / 'model'), two[1], 'logit', learning_rate=0.01)
    estimator.train(train_fn(two), 300)
    rows = list(estimator.predict(whole_split(two)))
    probabilities = np.stack([row['probabilities'] for row in rows])
    assert probabilities.shape == (90, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert estimator.evaluate(whole_split(two))['accuracy'] > 0.9


@pytest.mark.parametrize('optimizer', ['sgd', 'momentum', 'adam', 'rmsprop'])
def test_every_optimizer_learns(tmp_path, records, optimizer):
    rate = {'sgd': 0.05, 'momentum': 0.01, 'adam': 0.01, 'rmsprop': 0.01}[optimizer]
    estimator = make_estimator(str(tmp_path), records[1], optimizer=optimizer, learning_rate=rate)
    estimator.train(train_fn(records), 1)
    before = estimator.evaluate(whole_split(records))['loss']
    result = estimator.train(train_fn(records), 150)
    after = estimator.evaluate(whole_split(records))
    assert result['global_step'] == 150
    assert after['loss'] < before / 2
    assert after['accuracy'] > 0.9


def test_learning_rate_decays(tmp_path, records):
    estimator = make_estimator(str(tmp_path), records[1], learning_rate=0.1,
                               learning_rate_decay=0.5, decay_steps=100)
    result = estimator.train(train_fn(records), 200, eval_every=100)
    assert result['learning_rate'] == pytest.approx(0.1 * 0.5 ** (199 / 100), rel=1e-5)


def test_train_writes_checkpoints_summaries_and_keeps_the_last(tmp_path, records):
    model_dir = str(tmp_path)
    estimator = make_estimator(model_dir, records[1],
                               config=RunConfig(save_checkpoints_steps=50, keep_checkpoint_max=3))
    seen = []
    result = estimator.train(train_fn(records), 300, whole_split(records), eval_every=20,
                             progress=lambda step, values: seen.append((step, dict(values))))
    assert result['global_step'] == 300
    # Runs of steps end at every validation (20) and checkpoint (50) boundary.
    assert [step for step, _ in seen] == sorted(set(range(20, 301, 20)) | set(range(50, 301, 50)))
    assert [step for step, values in seen if 'validation_accuracy' in values] == list(range(20, 301, 20))
    state = tf1.train.get_checkpoint_state(model_dir)
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == \
        ['model.ckpt-200', 'model.ckpt-250', 'model.ckpt-300']
    assert len(glob.glob(os.path.join(model_dir, 'model.ckpt-*.index'))) == 3
    for run, tags in (('train', {'loss', 'accuracy', 'learning_rate'}), ('validation', {'loss', 'accuracy'})):
        found = {}
        for path in glob.glob(os.path.join(model_dir, run, 'events.out.tfevents.*')):
            for event in tf1.train.summary_iterator(path):
                for value in event.summary.value:
                    found.setdefault(value.tag, []).append(event.step)
        assert tags <= set(found), run
        assert found['accuracy'][-1] == 300
    assert result['validation_accuracy'] > 0.9


def test_resume_reaches_the_same_step_and_loss(tmp_path, records):
    config = RunConfig(save_checkpoints_steps=100)
    once = make_estimator(str(tmp_path / 'once'), records[1], config=config)
    once.train(train_fn(records), 400)
    twice = make_estimator(str(tmp_path / 'twice'), records[1], config=config)
    assert twice.train(train_fn(records), 200)['global_step'] == 200
    assert twice.train(train_fn(records), 400)['global_step'] == 400
    assert twice.train(train_fn(records), 400) == {'global_step': 400}   # nothing left to do
    one_run = once.evaluate(whole_split(records))
    resumed = twice.evaluate(whole_split(records))
    assert resumed['global_step'] == one_run['global_step'] == 400
    assert resumed['loss'] <= one_run['loss'] * 1.2 + 0.01


def test_an_interrupted_run_keeps_its_last_checkpoint_and_resumes(tmp_path, records):
    model_dir = str(tmp_path)
    estimator = make_estimator(model_dir, records[1], config=RunConfig(save_checkpoints_steps=100,
                                                                       steps_per_run=50))

    def interrupt(step, values):
        if step == 250:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        estimator.train(train_fn(records), 1000, progress=interrupt)
    assert estimator.latest_checkpoint().endswith('model.ckpt-200')
    assert estimator.evaluate(whole_split(records))['global_step'] == 200
    assert estimator.train(train_fn(records), 300)['global_step'] == 300


def test_evaluate_and_predict_agree(tmp_path, records):
    estimator = make_estimator(str(tmp_path), records[1], 'dnn', hidden_units=[16])
    estimator.train(train_fn(records), 200)
    data = reader.load_split(records[0], 'test', records[1])
    rows = list(estimator.predict(arrays_input_fn(data['bottlenecks'], data['labels'])))
    predicted = np.array([int(row['class_id']) for row in rows])
    metrics = estimator.evaluate(arrays_input_fn(data['bottlenecks'], data['labels']))
    assert metrics['count'] == len(rows) == 60
    assert metrics['accuracy'] == pytest.approx(np.mean(predicted == data['labels']))


def test_missing_checkpoint_is_refused(tmp_path, records):
    estimator = make_estimator(str(tmp_path / 'empty'), records[1])
    with pytest.raises(GraftError, match='no checkpoint'):
        estimator.evaluate(whole_split(records))


def test_params_mismatch_is_refused(records):
    _, manifest = records
    saved = model_dirs.make_params(manifest, 'softmax')
    other_classes = dict(manifest, classes=['ants', 'bees', 'hornets'])
    with pytest.raises(GraftError, match='classes'):
        model_dirs.check_same_model(saved, model_dirs.make_params(other_classes), 'm')
    with pytest.raises(GraftError, match='head softmax, not dnn'):
        model_dirs.check_same_model(saved, model_dirs.make_params(manifest, 'dnn'), 'm')
    other_graph = dict(manifest, graph=fake_graph('b' * 64, 'other_net'))
    with pytest.raises(GraftError, match='other_net'):
        model_dirs.check_records_match(saved, other_graph, 'm', 'r')
    with pytest.raises(GraftError, match='at least 2'):
        model_dirs.make_params(dict(manifest, classes=['ants']))


def test_confusion_matrix_and_per_class_figures():
    matrix = confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    rows = per_class(matrix, ['a', 'b', 'c'])
    assert rows[1] == {'class': 'b', 'count': 2, 'precision': 2 / 3, 'recall': 1.0}
    assert rows[2]['precision'] == 0.0
    report = evaluation_report([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]), ['a', 'b'], ['x', 'y'], 'test')
    assert report['accuracy'] == 0.5
    assert report['misclassified'] == [{'image_path': 'y', 'true': 'b', 'predicted': 'a', 'score': 0.8}]
