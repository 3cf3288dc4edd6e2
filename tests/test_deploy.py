"""Deployment formats on the real MobileNet v1 0.25/128 and cats_and_dogs_filtered.

Each format is scored with its own runtime (tf.saved_model.load,
tf.lite.Interpreter, plain TensorFlow on the frozen graph) over the whole real
validation split (1000 images) and compared with `tfgraft evaluate` on the
bottleneck records; the frozen graph also runs in a label_image.py client
written in tests/clients/, without tfgraft.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfgraft.engine.graph_versions import SCALAR_SHAPES_FROM, highest_producer
from tfgraft.engine.saved_model_export import choose_version
from tfgraft.graphs.errors import GraftError
from tfgraft.records import reader
from tfgraft.tools.cli import main
from tfgraft.engine.evaluation import evaluate_model

tf1 = tf.compat.v1
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'clients', 'label_image_client.py')
BATCH = 100


@pytest.fixture(scope='module')
def validation(cats_dogs_records):
    """(image paths, labels) of the records' validation split, and evaluate's accuracy."""
    manifest = reader.read_manifest(cats_dogs_records)
    data = reader.load_split(cats_dogs_records, 'validation', manifest)
    paths = [os.path.join(manifest['image_dir'], path) for path in data['image_paths']]
    return paths, np.asarray(data['labels'])


@pytest.fixture(scope='module')
def evaluated(cats_dogs_model, cats_dogs_records, tmp_path_factory):
    report = evaluate_model(cats_dogs_model, cats_dogs_records, 'validation',
                            str(tmp_path_factory.mktemp('eval')))
    assert report['count'] == 1000
    return report['accuracy']


@pytest.fixture(scope='module')
def exported(cats_dogs_model, tmp_path_factory):
    """All three formats from one `tfgraft export`, then the 8-bit .tflite from the same SavedModel."""
    from tfgraft.engine.tflite_export import export_tflite
    out = tmp_path_factory.mktemp('exported')
    files = {'graph': str(out / 'output_graph.pb'), 'labels': str(out / 'output_labels.txt'),
             'serving': str(out / 'serving'), 'tflite': str(out / 'model.tflite'),
             'tflite8': str(out / 'model_8bit.tflite')}
    code = main(['export', '--model_dir', cats_dogs_model, '--format', 'frozen,saved_model,tflite',
                 '--output_graph', files['graph'], '--output_labels', files['labels'],
                 '--saved_model_dir', files['serving'], '--output_tflite', files['tflite']])
    assert code == 0
    files['version'] = os.path.join(files['serving'], '1')
    export_tflite(cats_dogs_model, files['tflite8'], quantize=True, saved_model_dir=files['version'],
                  labels_path=files['labels'])
    return files


def accuracy(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def batches(items):
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def test_saved_model_scores_like_evaluate_and_is_laid_out_for_serving(exported, validation, evaluated):
    paths, labels = validation
    version = exported['version']
    assert sorted(os.listdir(exported['serving'])) == ['1']            # no partial folder left
    assert {'saved_model.pb', 'variables', 'assets'} <= set(os.listdir(version))
    with open(os.path.join(version, 'assets', 'labels.txt')) as handle:
        assert handle.read().split() == ['cats', 'dogs']
    loaded = tf.saved_model.load(version)
    assert {'serving_default', 'serving_images'} <= set(loaded.signatures)
    serve = loaded.signatures['serving_default']
    assert serve.structured_input_signature[1]['image_bytes'].shape.as_list() == [None]
    rows, classes, scores = [], [], []
    for chunk in batches(paths):
        contents = tf.constant([open(path, 'rb').read() for path in chunk])
        out = serve(image_bytes=contents)
        rows.append(out['probabilities'].numpy())
        classes.append(out['classes'].numpy())
        scores.append(out['scores'].numpy())
    probabilities, classes, scores = np.concatenate(rows), np.concatenate(classes), np.concatenate(scores)
    measured = accuracy(probabilities, labels)
    print('SavedModel (tf.saved_model.load, serving_default) accuracy %.4f, evaluate %.4f'
          % (measured, evaluated))
    assert probabilities.shape == (1000, 2)
    assert abs(measured - evaluated) <= 0.005
    best = np.array([b'cats', b'dogs'])[probabilities.argmax(axis=1)]
    assert (classes[:, 0] == best).all()
    np.testing.assert_allclose(scores[:, 0], probabilities.max(axis=1), rtol=1e-6)
    # Several sizes and formats in one batch: a PNG of a JPEG gives (nearly) the same answer.
    jpeg = open(paths[0], 'rb').read()
    png = tf.io.encode_png(tf.io.decode_jpeg(jpeg)[:200, :300]).numpy()
    both = serve(image_bytes=tf.constant([jpeg, png]))['probabilities'].numpy()
    assert both.shape == (2, 2)
    np.testing.assert_allclose(both[0], probabilities[0], atol=1e-5)
    assert both[1].argmax() == labels[0]


def client_preprocess(paths, sidecar):
    """Plain TensorFlow, from the sidecar's words only: decode, resize, (x - mean) / std."""
    height, width = sidecar['input']['shape'][1:3]
    mean = np.array(sidecar['input']['normalisation']['mean'], np.float32)
    std = np.array(sidecar['input']['normalisation']['std'], np.float32)
    images = []
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        resized = tf1.image.resize_bilinear(tf.cast(image, tf.float32)[tf.newaxis], [height, width])
        images.append(resized[0].numpy())
    return (np.stack(images) - mean) / std


@pytest.fixture(scope='module')
def tflite_probabilities(exported, validation):
    """Float and 8-bit .tflite probabilities over the validation images, via tf.lite.Interpreter."""
    paths, _ = validation
    with open(exported['tflite'][:-len('.tflite')] + '.tflite.json') as handle:
        sidecar = json.load(handle)
    runners = {kind: tf.lite.Interpreter(model_path=exported[kind]).get_signature_runner(
        sidecar['signature']) for kind in ('tflite', 'tflite8')}
    found = {kind: [] for kind in runners}
    for chunk in batches(paths):
        images = client_preprocess(chunk, sidecar).astype(np.float32)
        for kind, runner in runners.items():      # the runner resizes its input to the batch
            out = runner(**{sidecar['input']['name']: images})
            found[kind].append(np.array(out['probabilities']))
    return sidecar, {kind: np.concatenate(rows) for kind, rows in found.items()}


def test_tflite_float_scores_like_evaluate(tflite_probabilities, validation, evaluated, exported):
    sidecar, found = tflite_probabilities
    assert sidecar['classes'] == ['cats', 'dogs'] and sidecar['quantization'] == 'none'
    assert sidecar['input']['normalisation'] == {'mean': [127.5] * 3, 'std': [127.5] * 3}
    measured = accuracy(found['tflite'], validation[1])
    print('TFLite float (tf.lite.Interpreter) accuracy %.4f, evaluate %.4f' % (measured, evaluated))
    assert found['tflite'].shape == (1000, 2)
    assert abs(measured - evaluated) <= 0.005


def test_tflite_8bit_is_smaller_and_scores_within_one_and_a_half_points(tflite_probabilities, validation,
                                                                       evaluated, exported):
    _, found = tflite_probabilities
    measured = accuracy(found['tflite8'], validation[1])
    print('TFLite dynamic-range 8-bit (tf.lite.Interpreter) accuracy %.4f, evaluate %.4f'
          % (measured, evaluated))
    assert abs(measured - evaluated) <= 0.015
    assert os.path.getsize(exported['tflite8']) < 0.5 * os.path.getsize(exported['tflite'])
    with open(exported['tflite8'][:-len('.tflite')] + '.tflite.json') as handle:
        assert json.load(handle)['quantization'] == 'dynamic_range_int8'
    # 8-bit weights move the probabilities, but not far.
    assert np.abs(found['tflite8'] - found['tflite']).mean() < 0.05


def test_frozen_graph_declares_shapes_tensorflow_reads_back(exported):
    graph_def = tf1.GraphDef()
    with open(exported['graph'], 'rb') as handle:
        graph_def.ParseFromString(handle.read())
    assert graph_def.versions.producer >= SCALAR_SHAPES_FROM
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name='')
    shape = lambda name: graph.get_tensor_by_name(name).shape       # noqa: E731
    assert shape('DecodeJpeg/contents:0').rank == 0
    assert shape('input:0').as_list() == [None, 128, 128, 3]
    assert shape('BottleneckInputPlaceholder:0').as_list() == [None, 256]
    assert shape('final_result:0').as_list() == [None, 2]


def test_producer_stays_below_the_version_that_removed_an_op():
    graph_def = tf1.GraphDef()
    graph_def.node.add(name='bn', op='BatchNormWithGlobalNormalization')   # removed at version 9
    graph_def.node.add(name='x', op='Placeholder')
    assert highest_producer(graph_def) == 8
    del graph_def.node[0]
    assert highest_producer(graph_def) == tf.version.GRAPH_DEF_VERSION


def test_saved_model_versions_count_up_and_never_overwrite(tmp_path):
    assert choose_version(str(tmp_path / 'new')) == 1
    for name in ('1', '3', '.4.partial', 'notes'):
        (tmp_path / name).mkdir()
    assert choose_version(str(tmp_path)) == 4
    assert choose_version(str(tmp_path), 2) == 2
    with pytest.raises(GraftError, match='already holds version 3'):
        choose_version(str(tmp_path), 3)


def test_label_image_client_runs_the_exported_graph_unchanged(exported, cats_dogs_model, validation,
                                                              capsys, tmp_path):
    """The command line export prints (and README shows), run by a label_image.py written here."""
    from tfgraft.engine.prediction import predict_images
    paths, labels = validation
    images = paths[:3] + paths[-3:]                 # 3 cats, 3 dogs
    capsys.readouterr()
    assert main(['export', '--model_dir', cats_dogs_model, '--output_graph', str(tmp_path / 'out.pb'),
                 '--output_labels', str(tmp_path / 'out.txt')]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if 'label_image.py' in line]
    command = printed[0].split(': ', 1)[1].split()
    assert command[:2] == ['python', 'label_image.py']
    flags = [flag for flag in command[2:] if not flag.startswith('--image=')]
    assert '--input_mean=127.5' in flags and '--input_std=127.5' in flags
    env = {key: value for key, value in os.environ.items() if not key.startswith('PYTHON')}
    env['TF_CPP_MIN_LOG_LEVEL'] = '2'
    done = subprocess.run([sys.executable, '-I', CLIENT] + flags + ['--image=' + path for path in images],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result['labels'] == ['cats', 'dogs']
    assert result['contents_rank'] == 0
    _, predicted = predict_images(cats_dogs_model, images)
    ours = np.stack([probabilities for _, probabilities in predicted])
    for fed in ('float_input', 'bytes_input'):
        theirs = np.array(result[fed])
        assert theirs.shape == ours.shape == (6, 2)
        assert np.abs(theirs - ours).max() <= 1e-4, fed
    assert (ours.argmax(axis=1) == labels[:3].tolist() + labels[-3:].tolist()).mean() >= 5 / 6


def test_frozen_graph_scores_like_evaluate_in_plain_tensorflow(exported, validation, evaluated):
    paths, labels = validation
    graph_def = tf1.GraphDef()
    with open(exported['graph'], 'rb') as handle:
        graph_def.ParseFromString(handle.read())
    rows = []
    with tf.Graph().as_default():
        tf.import_graph_def(graph_def, name='')
        with tf1.Session() as session:
            for path in paths:
                with open(path, 'rb') as handle:
                    rows.append(session.run('final_result:0', {'DecodeJpeg/contents:0': handle.read()})[0])
    measured = accuracy(np.stack(rows), labels)
    print('frozen graph (plain TensorFlow, DecodeJpeg/contents) accuracy %.4f, evaluate %.4f'
          % (measured, evaluated))
    assert len(rows) == 1000
    assert abs(measured - evaluated) <= 0.005
