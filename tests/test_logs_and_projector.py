"""A real `tfgraft retrain` with its output in pipes: plain progress lines, no escapes, no
TensorFlow start-up chatter; retrain.py's split and intermediate graphs; then `evaluate --projector`."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from test_retrain_compat import as_entries, retrain_py_lists
from tfgraft.records.progress import PlainProgress

PLAIN_LINE = re.compile(r'^(?P<label>[a-z -]+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>images|steps)'
                        r'(, [\d.]+ (images|steps)/s, (ETA [\dminh ]+s|[\dminh ]+s in all))?'
                        r'(, [a-z_]+ [-\d.e+]+)*$')
TF_CHATTER = re.compile(r'^[IWEF]\d{4} |absl|oneDNN|cuda|tensorflow|All log messages', re.IGNORECASE)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_progress_prints_every_few_seconds_and_at_the_end():
    import io
    clock, out = Clock(), io.StringIO()
    progress = PlainProgress(30000, 'bottlenecks', 'images', stream=out, every=5.0, clock=clock)
    for done in range(64, 30000, 64):
        clock.now += 0.1                    # 640 images/s, 46.8 s in all
        progress.update(done, [('images/s', 640.0)])
    clock.now += 0.1
    progress.update(30000)
    progress.update(30000)                  # a second end is not printed twice
    lines = out.getvalue().splitlines()
    assert len(lines) == 10                  # at 5, 10, ... 45 s and the end
    done = [int(line.split(' ')[1].split('/')[0]) for line in lines]
    assert done == sorted(done) and all(3100 <= b - a <= 3300 for a, b in zip(done[:-2], done[1:-1]))
    for line in lines[:-1]:
        assert re.match(r'^bottlenecks: \d+/30000 images, 640 images/s, ETA \d+ s$', line), line
    assert lines[-1] == 'bottlenecks: 30000/30000 images, 640 images/s, 47 s in all'
    assert all(PLAIN_LINE.match(line) for line in lines)


def test_plain_progress_line_format_and_figures():
    clock = Clock()
    progress = PlainProgress(3000, 'bottlenecks', 'images', clock=clock)
    clock.now += 2.4
    assert progress.line(1536) == 'bottlenecks: 1536/3000 images, 640 images/s, ETA 2 s'
    training = PlainProgress(4000, 'training', 'steps', clock=clock, initial=1000)
    clock.now += 10
    line = training.line(1500, [('loss', 0.41234), ('val_acc', 0.875)])
    assert line == 'training: 1500/4000 steps, 50 steps/s, ETA 50 s, loss 0.412, val_acc 0.875'


@pytest.fixture(scope='module')
def retrained(tmp_path_factory, mobilenet_pb, cats_and_dogs):
    """`tfgraft retrain` in a subprocess on 40 cats and 40 dogs, stdout and stderr to pipes."""
    root = str(tmp_path_factory.mktemp('retrain_pipe'))
    for name in ('cats', 'dogs'):
        source = os.path.join(cats_and_dogs, 'train', name)
        os.makedirs(os.path.join(root, 'photos', name))
        for file_name in sorted(os.listdir(source))[:40]:
            os.symlink(os.path.join(source, file_name), os.path.join(root, 'photos', name, file_name))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('TF_', 'ABSL_'))}        # as a user's shell has it
    env['TFGRAFT_PROGRESS_SECONDS'] = '0'                # a line at every update
    command = [sys.executable, '-m', 'tfgraft.tools.cli', 'retrain', '--image_dir', 'photos',
               '--graph', mobilenet_pb, '--split_rule', 'retrain_py',
               '--validation_percentage', '25', '--testing_percentage', '25',
               '--bottleneck_dir', 'bottlenecks', '--model_dir', 'model',
               '--how_many_training_steps', '40', '--eval_step_interval', '20', '--train_batch_size', '16',
               '--intermediate_store_frequency', '20', '--intermediate_output_graphs_dir', 'graphs/',
               '--output_graph', 'graphs/final.pb', '--output_labels', 'graphs/labels.txt',
               '--saved_model_dir', 'serving/7']
    done = subprocess.run(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=900)
    return root, done.returncode, done.stdout.decode('utf-8'), done.stderr.decode('utf-8')


def test_piped_output_has_plain_progress_lines_and_no_chatter(retrained):
    root, code, out, err = retrained
    assert code == 0, err
    assert '\x1b' not in out and '\x1b' not in err and '\r' not in out + err
    chatter = [line for line in err.splitlines() if TF_CHATTER.search(line)]
    assert chatter == []
    progress = [PLAIN_LINE.match(line) for line in out.splitlines()]
    progress = [match for match in progress if match]
    extraction = [m for m in progress if m.group('label') == 'bottlenecks']
    assert extraction and extraction[-1].group(0).startswith('bottlenecks: 80/80 images, ')
    training = [m for m in progress if m.group('label') == 'training']
    assert [m.group('done') for m in training][-1] == '40'
    assert any('val_acc' in m.group(0) for m in training)


def test_retrain_py_split_and_intermediate_graphs(retrained):
    import json
    root, code, out, _ = retrained
    assert code == 0
    manifest = json.load(open(os.path.join(root, 'bottlenecks', 'manifest.json')))
    assert manifest['split_rule'].startswith('retrain_py: sha1 of photos/<class>/<file>')
    here = os.getcwd()
    try:
        os.chdir(root)                      # the rule hashes the path as typed: 'photos'
        theirs = as_entries(retrain_py_lists('photos', 25, 25))
    finally:
        os.chdir(here)
    for split in ('train', 'validation', 'test'):
        wanted = sum(1 for value in theirs.values() if value == split)
        assert manifest['splits'][split]['count'] == wanted > 0
    assert os.path.getsize(os.path.join(root, 'graphs', 'intermediate_20.pb')) > 100000
    assert not os.path.exists(os.path.join(root, 'graphs', 'intermediate_40.pb'))
    assert open(os.path.join(root, 'graphs', 'labels.txt')).read().split() == ['cats', 'dogs']


def test_retrain_saved_model_dir_is_the_folder_itself(retrained):
    from tensorflow.core.protobuf import saved_model_pb2
    root, code, _, _ = retrained
    assert code == 0
    folder = os.path.join(root, 'serving', '7')           # retrain.py's meaning: not 7/1/
    saved = saved_model_pb2.SavedModel.FromString(open(os.path.join(folder, 'saved_model.pb'), 'rb').read())
    assert 'serving_default' in saved.meta_graphs[0].signature_def
    assert sorted(os.listdir(os.path.join(root, 'serving'))) == ['7']


def test_evaluate_projector_files(retrained, capsys):
    import tensorflow as tf
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    from tfgraft.records.reader import load_split
    from tfgraft.tools.cli import main
    root, code, _, _ = retrained
    assert code == 0
    model_dir, records = os.path.join(root, 'model'), os.path.join(root, 'bottlenecks')
    assert main(['evaluate', '--model_dir', model_dir, '--bottleneck_dir', records,
                 '--split', 'validation', '--projector']) == 0
    assert 'Embedding Projector files written to' in capsys.readouterr().out
    folder = os.path.join(model_dir, 'projector_validation')
    data = load_split(records, 'validation')
    count, size = data['bottlenecks'].shape
    config = text_format.Parse(open(os.path.join(folder, 'projector_config.pbtxt')).read(),
                               ProjectorConfig())
    embedding, = config.embeddings
    assert list(embedding.tensor_shape) == [count, size]
    checkpoint = tf.train.load_checkpoint(tf.train.latest_checkpoint(folder))
    np.testing.assert_array_equal(checkpoint.get_tensor(embedding.tensor_name), data['bottlenecks'])
    rows = open(os.path.join(folder, embedding.metadata_path)).read().splitlines()
    assert len(rows) == count + 1 and rows[0] == 'label\tpredicted\tpath'
    assert [row.split('\t')[0] for row in rows[1:]] == data['label_texts']
    assert [row.split('\t')[2] for row in rows[1:]] == data['image_paths']
    assert {row.split('\t')[1] for row in rows[1:]} <= {'cats', 'dogs'}
    side = int(np.ceil(np.sqrt(count)))
    thumb = list(embedding.sprite.single_image_dim)
    sprite = Image.open(os.path.join(folder, embedding.sprite.image_path))
    assert thumb == [64, 64] and sprite.size == (side * 64, side * 64)
    first = np.asarray(sprite.convert('RGB'))[:64, :64]
    assert first.std() > 10                 # a photo, not a blank or grey cell


@pytest.mark.parametrize('with_tensorboard', [True, False])
def test_write_projector_on_small_arrays(tmp_path, monkeypatch, with_tensorboard):
    """Without TensorBoard installed the config is built from tfgraft's own descriptor; either
    way TensorBoard's proto reads it. A missing image is a grey cell and is reported."""
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
    from tfgraft.engine import projector
    if not with_tensorboard:
        monkeypatch.setitem(sys.modules, 'tensorboard.plugins.projector.projector_config_pb2', None)
        assert projector.projector_config_class() is not ProjectorConfig
    paths = []
    for index, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9), (200, 200, 0)]):
        paths.append(str(tmp_path / ('%d.png' % index)))
        Image.new('RGB', (40 + 10 * index, 30), colour).save(paths[-1])
    paths[3] = str(tmp_path / 'gone.jpg')
    vectors = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    rows = [('red', 'red', '0.png'), ('green', 'red', '1.png'), ('blue', 'blue', '2.png'),
            ('grey', 'blue', 'gone.jpg'), ('yellow\tish', 'red', '4.png')]
    written = projector.write_projector(str(tmp_path / 'p'), vectors, rows, paths)
    assert written['missing_images'] == [paths[3]]
    config = text_format.Parse(open(written['config']).read(), ProjectorConfig())
    assert list(config.embeddings[0].tensor_shape) == [5, 7]
    assert list(config.embeddings[0].sprite.single_image_dim) == [64, 64]
    sprite = np.asarray(Image.open(str(tmp_path / 'p' / 'sprite.png')).convert('RGB'))
    assert sprite.shape == (3 * 64, 3 * 64, 3)
    assert tuple(sprite[32, 32]) == (255, 0, 0) and tuple(sprite[32, 64 + 32]) == (0, 255, 0)
    assert (sprite[64:128, :64] == 128).all()            # the missing image's cell
    lines = open(str(tmp_path / 'p' / 'metadata.tsv')).read().splitlines()
    assert len(lines) == 6 and lines[5] == 'yellow ish\tred\t4.png'
    import tensorflow as tf
    saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'p')))
    np.testing.assert_array_equal(saved.get_tensor('embedding'), vectors)
