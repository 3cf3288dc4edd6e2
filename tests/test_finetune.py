"""`tfgraft finetune`: stage 2 on a frozen graph, .npy fine-tuning, augmentation, curves."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfgraft.engine import finetune as engine_finetune
from tfgraft.engine.augment import Augmentation
from tfgraft.engine.finetune import finetune
from tfgraft.graphs.unfreeze import TRAINABLE_SCOPE, checkpoint_values, list_layers

FINE_TUNE_AT = 25      # MobilenetV1/Conv2d_13_depthwise and Conv2d_13_pointwise
EPOCHS = 5
BATCH = 32
HEAD = ('final_training_ops/weights/final_weights', 'final_training_ops/biases/final_biases')


def _subset(source, target, per_class):
    """Copy the first images of each class of train/ and validation/ to target."""
    for split, count in per_class.items():
        for label in ('cats', 'dogs'):
            folder = os.path.join(source, split, label)
            os.makedirs(os.path.join(target, split, label))
            for name in sorted(os.listdir(folder))[:count]:
                shutil.copy(os.path.join(folder, name), os.path.join(target, split, label, name))
    return target


def _checkpoint_values(checkpoint, names):
    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name in names}


@pytest.fixture(scope='module')
def two_stages(tmp_path_factory, cats_and_dogs, cats_dogs_records, mobilenet_pb):
    """The MobileNetV2 tutorial's schedule on the whole real set, seed 0: stage 1 (the
    softmax head on the bottleneck records), then stage 2 from layer 25 for 5 epochs
    with flips, RMSprop at the default 3e-5."""
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.heads import model_fn as head_model_fn
    from tfgraft.engine.inputs import records_input_fn
    from tfgraft.engine.model_dir import read_params
    from tfgraft.engine.training import TrainingRun, head_settings, train_model
    model_dir = str(tmp_path_factory.mktemp('model'))
    train_model(head_settings(), cats_dogs_records, model_dir, TrainingRun(seed=0))
    stage_one_checkpoint = tf.compat.v1.train.latest_checkpoint(model_dir)
    stage_one_head = _checkpoint_values(stage_one_checkpoint, HEAD)
    on_records = Estimator(head_model_fn, model_dir, read_params(model_dir)).evaluate(
        records_input_fn(cats_dogs_records, 'validation'))
    stage_two_start, real_warm_start = {}, engine_finetune.warm_start

    def spied_warm_start(estimator, input_fn):       # the stage-2 start checkpoint is later rotated out
        start = real_warm_start(estimator, input_fn)
        stage_two_start.update(_checkpoint_values(tf.compat.v1.train.latest_checkpoint(model_dir), HEAD))
        return start

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_finetune, 'warm_start', spied_warm_start)
        result = finetune(cats_and_dogs, model_dir, graph=mobilenet_pb, fine_tune_at=FINE_TUNE_AT,
                          epochs=EPOCHS, train_batch_size=BATCH,
                          augmentation=Augmentation(flip_left_right=True), seed=0)
    return model_dir, result, {'checkpoint': stage_one_checkpoint, 'head': stage_one_head,
                               'on_records': on_records, 'stage_two_head': stage_two_start}


@pytest.mark.slow
def test_stage_two_changes_only_layers_from_k(two_stages, mobilenet_backbone):
    model_dir, result, _ = two_stages
    layers = list_layers(mobilenet_backbone.graph_def, mobilenet_backbone.card)
    tuned = {c for layer in layers[FINE_TUNE_AT:] for c in layer.trainable}
    below = {c for layer in layers[:FINE_TUNE_AT] for c in layer.params}
    checkpoint = tf.compat.v1.train.latest_checkpoint(model_dir)
    values = checkpoint_values(checkpoint, mobilenet_backbone.graph_def)
    assert set(values) == tuned                        # no variable below K
    assert not below & set(values)
    consts = {n.name: tf.make_ndarray(n.attr['value'].tensor) for n in mobilenet_backbone.graph_def.node
              if n.op == 'Const'}
    changed = [name for name, value in values.items() if not np.array_equal(value, consts[name])]
    assert changed                                     # training moved layers K..
    params = result['params']
    assert params['fine_tune']['fine_tune_at'] == FINE_TUNE_AT
    assert params['optimizer'] == 'rmsprop' and params['learning_rate'] == pytest.approx(3e-5)
    stage = params['fine_tune']['stages'][0]
    assert set(HEAD) <= set(stage['restored'])          # head from stage 1
    assert not any(name.startswith(TRAINABLE_SCOPE) for name in stage['restored'])
    assert stage['start_step'] == 4000
    assert result['after']['global_step'] == 4000 + EPOCHS * (2000 // BATCH)


@pytest.mark.slow
def test_stage_two_starts_exactly_where_stage_one_ended(two_stages):
    """The head resumes bit-for-bit, and the images through the unfrozen network give
    what stage 1's records gave."""
    _, result, stage_one = two_stages
    assert stage_one['checkpoint'].endswith('model.ckpt-4000')
    assert sorted(stage_one['stage_two_head']) == sorted(HEAD)
    for name, value in stage_one['stage_two_head'].items():
        np.testing.assert_array_equal(value, stage_one['head'][name])
    before, on_records = result['before'], stage_one['on_records']
    assert before['count'] == on_records['count'] == 1000
    assert before['accuracy'] == on_records['accuracy']
    assert before['loss'] == pytest.approx(on_records['loss'], rel=1e-5)


@pytest.mark.slow
def test_stage_two_improves_validation_accuracy(two_stages):
    _, result, stage_one = two_stages
    before, after = result['before']['accuracy'], result['after']['accuracy']
    print('validation accuracy (N=%d): stage 1 %.1f%%, stage 2 %.1f%%'
          % (result['after']['count'], before * 100, after * 100))
    assert result['after']['count'] == 1000
    assert after > before


@pytest.mark.slow
def test_curves_cover_both_stages(two_stages):
    from skimage import io
    from tfgraft.engine.curves import read_history
    model_dir, result, _ = two_stages
    history = read_history(model_dir)
    assert {row['stage'] for row in history} == {1, 2}
    assert any('validation_accuracy' in row for row in history if row['stage'] == 2)
    image = io.imread(result['curves'])
    assert image.ndim == 3 and (image != 255).any()


@pytest.mark.slow
def test_predict_and_export_read_fine_tuned_backbone(two_stages, cats_and_dogs, tmp_path):
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.finetune import image_input_fn, model_fn, restored_backbone
    from tfgraft.engine.heads import model_fn as head_model_fn
    from tfgraft.engine.inputs import images_input_fn
    model_dir, result, _ = two_stages
    params = result['params']
    folder = os.path.join(cats_and_dogs, 'validation', 'dogs')
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:4]]
    checkpoint = tf.compat.v1.train.latest_checkpoint(model_dir)
    backbone = restored_backbone(params, checkpoint)
    estimator = Estimator(head_model_fn, model_dir, params)
    folded = [row['probabilities'] for row in estimator.predict(images_input_fn(paths, backbone, 4))]
    live = Estimator(model_fn, model_dir, params).predict(
        image_input_fn(paths, [1] * 4, backbone.card, None, False))
    np.testing.assert_allclose(folded, [row['probabilities'] for row in live], atol=1e-4)


@pytest.fixture(scope='module')
def alexnet_standin(tmp_path_factory):
    from tfgraft.graphs.npy_standin import standin_weights
    from tfgraft.graphs.npy_weights import save_weights
    folder = tmp_path_factory.mktemp('alexnet')
    return save_weights(standin_weights('alexnet', width_divisor=8, num_classes=1000, seed=1),
                        str(folder / 'alexnet.npz'))


@pytest.fixture(scope='module')
def tiny_photos(cats_and_dogs, tmp_path_factory):
    return _subset(cats_and_dogs, str(tmp_path_factory.mktemp('tiny')), {'train': 6, 'validation': 2})


def _saved_under(model_dir, prefix):
    """The latest checkpoint's variables under `prefix`, optimizer slots left out."""
    reader = tf.train.load_checkpoint(tf.compat.v1.train.latest_checkpoint(model_dir))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if key.startswith(prefix) and not key.endswith(('RMSProp', 'RMSProp_1', 'Momentum'))}


def _saved(model_dir):
    return _saved_under(model_dir, 'alexnet/')


@pytest.mark.slow
@pytest.mark.parametrize('train_layers', [['fc8'], ['fc7', 'fc8']])
def test_npy_trains_exactly_train_layers(train_layers, alexnet_standin, tiny_photos, tmp_path):
    from tfgraft.graphs.npy_weights import load_weights
    model_dir = str(tmp_path / 'model')
    result = finetune(tiny_photos, model_dir, network='alexnet', weights=alexnet_standin,
                      train_layers=train_layers, epochs=2, train_batch_size=4, learning_rate=0.01,
                      augmentation=Augmentation(flip_left_right=True, rotation=0.1, random_crop=10,
                                                random_scale=10, random_brightness=10))
    first = os.path.join(model_dir, 'model.ckpt-0')
    reader = tf.train.load_checkpoint(first)
    start = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
             if key.startswith('alexnet/')}
    end = _saved(model_dir)
    variables = {key.split('/')[1] for key in end}
    assert variables == set(train_layers)                # every other layer is a constant
    original = load_weights(alexnet_standin)
    for layer in train_layers:
        key = 'alexnet/%s/weights' % layer
        assert not np.array_equal(start[key], end[key]), key
        # fc8's biases may stay exactly 0: with near-zero stand-in logits the softmax is
        # exactly 1/2 and a balanced batch's bias gradient sums to 0.
        if layer != 'fc8':                               # loaded from the weight file
            for part, index in (('weights', 0), ('biases', 1)):
                key = 'alexnet/%s/%s' % (layer, part)
                np.testing.assert_array_equal(start[key], original[layer][index])
    assert end['alexnet/fc8/weights'].shape[-1] == 2      # re-initialised for the new classes
    assert result['after']['global_step'] == 2 * 3


@pytest.mark.slow
def test_npy_restore_and_predict(alexnet_standin, tiny_photos, tmp_path):
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.finetune import image_input_fn, model_fn
    from tfgraft.engine.model_dir import read_params
    model_dir = str(tmp_path / 'model')
    finetune(tiny_photos, model_dir, network='alexnet', weights=alexnet_standin,
             train_layers=['fc8'], epochs=1, train_batch_size=4)
    params = read_params(model_dir)
    from tfgraft.graphs.factory import load_described
    card = load_described(params['graph']).card
    path = os.path.join(tiny_photos, 'validation', 'cats', sorted(os.listdir(
        os.path.join(tiny_photos, 'validation', 'cats')))[0])
    rows = list(Estimator(model_fn, model_dir, params).predict(image_input_fn([path], [0], card, None, False)))
    assert len(rows) == 1 and rows[0]['probabilities'].shape == (2,)
    assert abs(rows[0]['probabilities'].sum() - 1) < 1e-5
    from tfgraft.engine.prediction import predict_images
    _, predicted = predict_images(model_dir, [path])
    np.testing.assert_allclose(predicted[0][1], rows[0]['probabilities'], atol=1e-6)


@pytest.mark.slow
def test_npy_params_name_what_they_hold_and_old_files_still_load(alexnet_standin, tiny_photos,
                                                                  tmp_path, capsys):
    """A fine-tuned .npy model_dir has no grafted head and no bottleneck: params.json says so
    (fine_tune.head_layer fc8), and `tfgraft train` refuses it in one line; one written
    before, with 'head': 'fc8' and 'bottleneck_size': <classes>, still resumes and predicts."""
    import json
    from conftest import write_synthetic_records
    from tfgraft.engine.prediction import predict_images
    from tfgraft.tools.cli import main
    model_dir = str(tmp_path / 'model')
    finetune(tiny_photos, model_dir, network='alexnet', weights=alexnet_standin,
             train_layers=['fc8'], epochs=1, train_batch_size=4)
    params_path = os.path.join(model_dir, 'params.json')
    params = json.load(open(params_path))
    assert params['head'] is None and 'bottleneck_size' not in params
    assert params['fine_tune']['head_layer'] == 'fc8' and params['fine_tune']['kind'] == 'npy'
    records = str(tmp_path / 'records')
    write_synthetic_records(records, classes=('cats', 'dogs'))
    capsys.readouterr()
    assert main(['train', '--bottleneck_dir', records, '--model_dir', model_dir]) == 2
    assert 'whose own fc8 is the head' in capsys.readouterr().err
    params.update(head='fc8', bottleneck_size=2)
    del params['fine_tune']['head_layer']
    with open(params_path, 'w') as handle:
        json.dump(params, handle)
    result = finetune(tiny_photos, model_dir, network='alexnet', weights=alexnet_standin,
                      train_layers=['fc8'], epochs=1, train_batch_size=4)
    assert result['after']['global_step'] == 2 * 3
    folder = os.path.join(tiny_photos, 'validation', 'dogs')
    _, predicted = predict_images(model_dir, [os.path.join(folder, sorted(os.listdir(folder))[0])])
    assert predicted[0][1].shape == (2,) and abs(predicted[0][1].sum() - 1) < 1e-5


@pytest.mark.slow
def test_commands_predict_and_export_fine_tuned(two_stages, cats_and_dogs, tmp_path, capsys):
    from tfgraft.engine.export import export_frozen_graph
    from tfgraft.engine.prediction import predict_images
    model_dir, _, _ = two_stages
    folder = os.path.join(cats_and_dogs, 'validation', 'cats')
    paths = [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:2]]
    _, predicted = predict_images(model_dir, paths)
    output = str(tmp_path / 'graph.pb')
    export_frozen_graph(model_dir, output)
    graph_def = tf.compat.v1.GraphDef()
    with open(output, 'rb') as handle:
        graph_def.ParseFromString(handle.read())
    with tf.Graph().as_default():
        tf.import_graph_def(graph_def, name='')
        with tf.compat.v1.Session() as session:
            for path, probabilities in predicted:
                with open(path, 'rb') as handle:
                    exported = session.run('final_result:0', {'DecodeJpeg/contents:0': handle.read()})
                np.testing.assert_allclose(exported[0], probabilities, atol=1e-4)


def test_saved_model_of_a_fine_tuned_model_predicts_as_predict(two_stages, cats_and_dogs, tmp_path):
    from tfgraft.engine.saved_model_export import export_saved_model
    from tfgraft.engine.prediction import predict_images
    model_dir, _, _ = two_stages
    paths = [os.path.join(cats_and_dogs, 'validation', kind, '%s.%d.jpg' % (kind[:-1], 2000 + i))
             for kind in ('cats', 'dogs') for i in range(2)]
    _, predicted = predict_images(model_dir, paths)
    version = export_saved_model(model_dir, str(tmp_path / 'serving'))
    assert version == str(tmp_path / 'serving' / '1')
    serve = tf.saved_model.load(version).signatures['serving_default']
    contents = tf.constant([open(path, 'rb').read() for path in paths])
    exported = serve(image_bytes=contents)['probabilities'].numpy()
    np.testing.assert_allclose(exported, np.stack([p for _, p in predicted]), atol=1e-4)


def test_list_layers_command(mobilenet_pb, capsys):
    from tfgraft.tools.cli import main
    assert main(['finetune', '--graph', mobilenet_pb, '--list_layers']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 27
    assert lines[FINE_TUNE_AT].split()[:2] == [str(FINE_TUNE_AT), 'MobilenetV1/Conv2d_13_depthwise']


@pytest.mark.slow
def test_vgg16_fine_tunes_its_fc_layers(tiny_photos, tmp_path_factory, tmp_path):
    """The VGG16 tutorial's network through the same path: a new fc8, fc7 and fc8 trained,
    every convolution kept from the weight file; predict restores it."""
    from tfgraft.graphs.npy_standin import standin_weights
    from tfgraft.graphs.npy_weights import load_weights, save_weights
    from tfgraft.engine.prediction import predict_images
    weights = save_weights(standin_weights('vgg16', width_divisor=16, num_classes=1000, seed=2),
                           str(tmp_path_factory.mktemp('vgg16') / 'vgg16.npz'))
    model_dir = str(tmp_path / 'model')
    result = finetune(tiny_photos, model_dir, network='vgg16', weights=weights,
                      train_layers=['fc7', 'fc8'], epochs=2, train_batch_size=4, learning_rate=0.01,
                      augmentation=Augmentation(flip_left_right=True))
    reader = tf.train.load_checkpoint(os.path.join(model_dir, 'model.ckpt-0'))
    start = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
             if key.startswith('vgg16/')}
    end = _saved_under(model_dir, 'vgg16/')
    assert {key.split('/')[1] for key in end} == {'fc7', 'fc8'}
    assert end['vgg16/fc8/weights'].shape[-1] == 2
    original = load_weights(weights)
    np.testing.assert_array_equal(start['vgg16/fc7/weights'], original['fc7'][0])
    assert not np.array_equal(start['vgg16/fc7/weights'], end['vgg16/fc7/weights'])
    assert result['after']['global_step'] == 2 * 3
    folder = os.path.join(tiny_photos, 'validation', 'dogs')
    _, predicted = predict_images(model_dir, [os.path.join(folder, sorted(os.listdir(folder))[0])])
    assert predicted[0][1].shape == (2,) and abs(predicted[0][1].sum() - 1) < 1e-5
