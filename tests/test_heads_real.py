"""Reference accuracies of the heads on real bottlenecks, and predict == the exported graph.

Real MobileNet v1 0.25/128 on cats_and_dogs_filtered (train/ -> validation/).
A logistic-regression probe on these vectors reaches about 90%.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfgraft.engine.evaluation import evaluate_model
from tfgraft.tools.cli import main

# head, steps, flags, least validation accuracy
REFERENCES = {
    'softmax': (4000, [], 0.89),
    'dnn': (1000, ['--hidden_units', '1024,512'], 0.88),
    'logit': (2000, [], 0.88),
}

pytestmark = pytest.mark.slow    # heads trained on the whole real set


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    return {}


def train_head(cats_dogs_records, models, tmp_path_factory, head):
    if head not in models:
        steps, flags, _ = REFERENCES[head]
        model_dir = str(tmp_path_factory.mktemp('model_' + head))
        code = main(['train', '--bottleneck_dir', cats_dogs_records, '--model_dir', model_dir,
                     '--head', head, '--how_many_training_steps', str(steps),
                     '--eval_step_interval', '100'] + flags)
        assert code == 0
        models[head] = model_dir
    return models[head]


@pytest.mark.parametrize('head', sorted(REFERENCES))
def test_head_reaches_its_reference_accuracy(cats_dogs_records, models, tmp_path_factory, head):
    model_dir = train_head(cats_dogs_records, models, tmp_path_factory, head)
    report = evaluate_model(model_dir, cats_dogs_records, 'validation')
    print('%s head: validation accuracy %.3f' % (head, report['accuracy']))
    assert report['count'] == 1000
    assert report['accuracy'] >= REFERENCES[head][2]


RUN_EXPORTED_GRAPH = r'''
import json, sys
sys.modules['tfgraft'] = None              # tfgraft must not be importable here
try:
    import tfgraft
except ImportError:
    pass
else:
    raise SystemExit('tfgraft is importable')
import tensorflow as tf
graph_def = tf.compat.v1.GraphDef()
with open(sys.argv[1], 'rb') as handle:
    graph_def.ParseFromString(handle.read())
with tf.Graph().as_default():
    tf.import_graph_def(graph_def, name='')
    with tf.compat.v1.Session() as session:
        rows = []
        for path in sys.argv[2:]:
            with open(path, 'rb') as handle:
                rows.append(session.run('final_result:0',
                                        {'DecodeJpeg/contents:0': handle.read()})[0].tolist())
print(json.dumps(rows))
'''


def test_predict_equals_the_exported_graph_run_without_tfgraft(cats_dogs_records, models,
                                                             tmp_path_factory, cats_and_dogs,
                                                             tmp_path, capsys):
    from tfgraft.engine.prediction import predict_images
    model_dir = train_head(cats_dogs_records, models, tmp_path_factory, 'softmax')
    images = [os.path.join(cats_and_dogs, 'validation', kind, '%s.%d.jpg' % (kind[:-1], 2000 + i))
              for kind in ('cats', 'dogs') for i in range(5)]
    params, predicted = predict_images(model_dir, images)
    graph, labels = str(tmp_path / 'output_graph.pb'), str(tmp_path / 'output_labels.txt')
    assert main(['export', '--model_dir', model_dir, '--output_graph', graph,
                 '--output_labels', labels]) == 0
    assert open(labels).read().split() == params['classes'] == ['cats', 'dogs']
    sidecar = json.load(open(str(tmp_path / 'output_graph.serving.json')))
    assert set(sidecar['inputs']) == {'DecodeJpeg/contents:0', 'input:0',
                                      'BottleneckInputPlaceholder:0'}
    assert sidecar['inputs']['input:0']['shape'] == [None, 128, 128, 3]
    script = tmp_path / 'run_graph.py'
    script.write_text(RUN_EXPORTED_GRAPH)
    env = {key: value for key, value in os.environ.items() if not key.startswith('PYTHON')}
    env['TF_CPP_MIN_LOG_LEVEL'] = '2'
    done = subprocess.run([sys.executable, '-I', str(script), graph] + images, cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    exported = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    ours = np.stack([probabilities for _, probabilities in predicted])
    assert exported.shape == ours.shape == (10, 2)
    assert np.abs(exported - ours).max() <= 1e-5
    assert (ours.argmax(axis=1) == [0] * 5 + [1] * 5).mean() >= 0.8


def test_predict_command_prints_labels_for_a_folder(cats_dogs_records, models, tmp_path_factory,
                                                    cats_and_dogs, tmp_path, capsys):
    import shutil
    model_dir = train_head(cats_dogs_records, models, tmp_path_factory, 'softmax')
    folder = tmp_path / 'photos'
    folder.mkdir()
    for name in ('cat.2001.jpg', 'cat.2002.jpg'):
        shutil.copy(os.path.join(cats_and_dogs, 'validation', 'cats', name), str(folder / name))
    capsys.readouterr()
    assert main(['predict', '--model_dir', model_dir, '--image_path', str(folder), '--top_k', '1']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith('cat.2001.jpg') and out[2].endswith('cat.2002.jpg')
    assert out[1].strip().startswith('cats (score = ')


def test_retrain_runs_every_stage(cats_dogs_records, mobilenet_pb, cats_and_dogs, tmp_path):
    graph, labels = str(tmp_path / 'graph.pb'), str(tmp_path / 'labels.txt')
    code = main(['retrain', '--image_dir', cats_and_dogs, '--graph', mobilenet_pb,
                 '--bottleneck_dir', cats_dogs_records, '--model_dir', str(tmp_path / 'model'),
                 '--how_many_training_steps', '300', '--eval_step_interval', '100',
                 '--output_graph', graph, '--output_labels', labels,
                 '--final_tensor_name', 'my_result'])
    assert code == 0
    import tensorflow as tf
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(open(graph, 'rb').read())
    names = {node.name for node in graph_def.node}
    assert {'my_result', 'DecodeJpeg/contents', 'input', 'BottleneckInputPlaceholder'} <= names
    assert open(labels).read().split() == ['cats', 'dogs']
