"""The train / evaluate / predict / export / retrain commands, in process, on synthetic records."""
import glob
import json
import os

import pytest

from conftest import fake_graph, one_line_error, tfgraft, write_synthetic_records
from tfgraft.tools.cli import main

ENGINE_COMMANDS = ('train', 'evaluate', 'predict', 'export', 'retrain')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Records of 3 classes and a model_dir trained 200 steps on them by the command."""
    root = tmp_path_factory.mktemp('commands')
    bottleneck_dir, model_dir = str(root / 'records'), str(root / 'model')
    write_synthetic_records(bottleneck_dir)
    code = main(['train', '--bottleneck_dir', bottleneck_dir, '--model_dir', model_dir,
                 '--how_many_training_steps', '200', '--eval_step_interval', '50'])
    assert code == 0
    return bottleneck_dir, model_dir


@pytest.mark.parametrize('command', ENGINE_COMMANDS)
def test_help_is_clear(capsys, command):
    with pytest.raises(SystemExit) as stop:
        main([command, '--help'])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert 'example' in out and '--model_dir' in out


def test_retrain_keeps_the_retrain_py_flag_names(capsys):
    with pytest.raises(SystemExit):
        main(['retrain', '--help'])
    out = capsys.readouterr().out
    for flag in ('--image_dir', '--bottleneck_dir', '--how_many_training_steps', '--learning_rate',
                 '--testing_percentage', '--validation_percentage', '--eval_step_interval',
                 '--train_batch_size', '--output_graph', '--output_labels', '--summaries_dir',
                 '--final_tensor_name', '--graph', '--backbone'):
        assert flag in out


def test_train_writes_a_self_describing_model_dir(trained, capsys):
    bottleneck_dir, model_dir = trained
    params = json.load(open(os.path.join(model_dir, 'params.json')))
    assert params['head'] == 'softmax' and params['classes'] == ['ants', 'bees', 'wasps']
    assert params['graph']['sha256'] == 'a' * 64 and params['graph']['card']['name'] == 'fake_net'
    assert os.path.isdir(os.path.join(model_dir, 'train'))
    assert os.path.isdir(os.path.join(model_dir, 'validation'))
    from PIL import Image
    curves = Image.open(os.path.join(model_dir, 'learning_curves.png'))
    assert curves.size[0] >= 400 and curves.info['Software'].startswith('Matplotlib')
    # Resume to 300 steps, then again: nothing left to do.
    code, out, _ = tfgraft(capsys, 'train', '--bottleneck_dir', bottleneck_dir, '--model_dir', model_dir,
                           '--how_many_training_steps', 300)
    assert code == 0 and 'Final test accuracy' in out
    code, out, _ = tfgraft(capsys, 'train', '--bottleneck_dir', bottleneck_dir, '--model_dir', model_dir,
                           '--how_many_training_steps', 300)
    assert code == 0 and 'already trained to step 300' in out


def test_evaluate_writes_json_and_png(trained, capsys, tmp_path):
    import skimage.io
    bottleneck_dir, model_dir = trained
    code, out, _ = tfgraft(capsys, 'evaluate', '--model_dir', model_dir, '--bottleneck_dir',
                           bottleneck_dir, '--output_dir', tmp_path, '--print_misclassified_test_images')
    assert code == 0
    report = json.load(open(str(tmp_path / 'report.json')))
    assert report['count'] == 60 and sum(map(sum, report['confusion_matrix'])) == 60
    assert 'Test accuracy = %.1f%%' % (report['accuracy'] * 100) in out
    assert 'MISCLASSIFIED' in out and [row['class'] for row in report['per_class']] == ['ants', 'bees', 'wasps']
    from PIL import Image
    for name in ('confusion.png', 'per_class.png'):
        image = Image.open(str(tmp_path / name))
        assert image.size[0] >= 400 and image.info['Software'].startswith('Matplotlib')
    assert skimage.io.imread(str(tmp_path / 'confusion.png')).shape[2] in (3, 4)
    import tensorflow as tf
    tags = {value.tag: value.image.width
            for path in glob.glob(os.path.join(model_dir, 'eval_test', 'events.out.tfevents.*'))
            for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}
    assert tags['confusion_matrix'] == Image.open(str(tmp_path / 'confusion.png')).size[0]
    assert tags['per_class'] >= 400


def test_one_class_records_are_refused(tmp_path, capsys):
    records = str(tmp_path / 'records')
    write_synthetic_records(records, classes=('ants',))
    code, _, err = tfgraft(capsys, 'train', '--bottleneck_dir', records, '--model_dir', tmp_path / 'm')
    one_line_error(code, err, 'at least 2')


def test_a_model_dir_of_other_classes_or_graph_is_refused(trained, tmp_path, capsys):
    _, model_dir = trained
    other = str(tmp_path / 'other')
    write_synthetic_records(other, classes=('ants', 'bees', 'hornets'))
    for command in ('train', 'evaluate'):
        code, _, err = tfgraft(capsys, command, '--bottleneck_dir', other, '--model_dir', model_dir)
        one_line_error(code, err, 'classes', model_dir)
    regraphed = str(tmp_path / 'regraphed')
    write_synthetic_records(regraphed, graph=fake_graph('c' * 64, 'another_net'))
    code, _, err = tfgraft(capsys, 'evaluate', '--bottleneck_dir', regraphed, '--model_dir', model_dir)
    one_line_error(code, err, 'another_net', 'fake_net')
    code, _, err = tfgraft(capsys, 'train', '--bottleneck_dir', trained[0], '--model_dir', model_dir,
                           '--head', 'dnn')
    one_line_error(code, err, 'head softmax, not dnn')


def test_missing_checkpoint_and_empty_split_are_refused(trained, tmp_path, capsys):
    bottleneck_dir, model_dir = trained
    empty_model = str(tmp_path / 'm')
    os.makedirs(empty_model)
    with open(os.path.join(empty_model, 'params.json'), 'w') as handle:
        handle.write(open(os.path.join(model_dir, 'params.json')).read())
    for argv in (['evaluate', '--bottleneck_dir', bottleneck_dir],
                 ['export', '--output_graph', tmp_path / 'g.pb'],
                 ['predict', '--image_path', __file__]):
        code, _, err = tfgraft(capsys, *argv, '--model_dir', empty_model)
        one_line_error(code, err, 'no checkpoint')
    code, _, err = tfgraft(capsys, 'evaluate', '--bottleneck_dir', bottleneck_dir,
                           '--model_dir', tmp_path / 'nothing')
    one_line_error(code, err, 'not a tfgraft model_dir')
    no_test = str(tmp_path / 'no_test')
    write_synthetic_records(no_test, counts={'train': 30, 'validation': 9, 'test': 0})
    code, _, err = tfgraft(capsys, 'evaluate', '--bottleneck_dir', no_test, '--model_dir', model_dir)
    one_line_error(code, err, 'test split holds no records')


def test_predict_refuses_bad_images_and_top_k(trained, tmp_path, capsys):
    _, model_dir = trained
    code, _, err = tfgraft(capsys, 'predict', '--model_dir', model_dir, '--image_path', __file__,
                           '--top_k', 4)
    one_line_error(code, err, '--top_k 4', '3 classes')
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'\xff\xd8\xff\xe0' + b'\0' * 100)
    code, _, err = tfgraft(capsys, 'predict', '--model_dir', model_dir, '--image_path', broken)
    one_line_error(code, err, 'cannot read image', 'broken.jpg')
    code, _, err = tfgraft(capsys, 'predict', '--model_dir', model_dir, '--image_path', tmp_path / 'gone.jpg')
    one_line_error(code, err, 'image not found')


def test_bad_numbers_are_refused(trained, tmp_path, capsys):
    code, _, err = tfgraft(capsys, 'train', '--bottleneck_dir', trained[0], '--model_dir', tmp_path,
                           '--train_batch_size', 0)
    one_line_error(code, err, '--train_batch_size')


def test_summaries_dir_gets_train_and_validation_events(trained, tmp_path, capsys):
    bottleneck_dir, _ = trained
    summaries = tmp_path / 'logs'
    code, _, _ = tfgraft(capsys, 'train', '--bottleneck_dir', bottleneck_dir, '--model_dir',
                         tmp_path / 'model', '--how_many_training_steps', 20,
                         '--summaries_dir', summaries)
    assert code == 0
    for run in ('train', 'validation'):
        assert [name for name in os.listdir(str(summaries / run)) if name.startswith('events.out')]


@pytest.mark.slow
def test_a_killed_training_run_leaves_a_loadable_checkpoint(trained, tmp_path, capsys):
    """SIGKILL at an arbitrary moment (maybe mid-save), then evaluate and resume."""
    import signal
    import subprocess
    import sys
    import time
    import tensorflow as tf
    bottleneck_dir, _ = trained
    model_dir = str(tmp_path / 'model')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    worker = subprocess.Popen(
        [sys.executable, '-m', 'tfgraft.tools.train', '--bottleneck_dir', bottleneck_dir,
         '--model_dir', model_dir, '--how_many_training_steps', '10000000',
         '--save_checkpoints_steps', '200', '--eval_step_interval', '100'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            latest = tf.compat.v1.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
            if latest and int(latest.rsplit('-', 1)[1]) >= 2000:
                break
            time.sleep(0.05)
        assert worker.poll() is None, 'training ended early'
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    latest = tf.compat.v1.train.latest_checkpoint(model_dir)
    saved_step = int(latest.rsplit('-', 1)[1])
    assert saved_step >= 2000
    code, out, _ = tfgraft(capsys, 'evaluate', '--model_dir', model_dir, '--bottleneck_dir', bottleneck_dir)
    assert code == 0 and 'model.ckpt-%d' % saved_step in out
    code, _, _ = tfgraft(capsys, 'train', '--bottleneck_dir', bottleneck_dir, '--model_dir', model_dir,
                         '--how_many_training_steps', saved_step + 100)
    assert code == 0
    assert tf.compat.v1.train.latest_checkpoint(model_dir).endswith('-%d' % (saved_step + 100))


def test_one_vocabulary_across_commands(capsys):
    """The same idea has the same flag and type in every command; old spellings still parse."""
    import argparse
    from tfgraft.tools import bottlenecks, finetune, retrain, train
    parsers = {}
    for name, module in (('bottlenecks', bottlenecks), ('train', train), ('finetune', finetune),
                         ('retrain', retrain)):
        parsers[name] = argparse.ArgumentParser()
        module.add_arguments(parsers[name])
    kinds = {}
    for name, parser in parsers.items():
        for action in parser._actions:
            for option in action.option_strings:
                kinds.setdefault(option, set()).add((action.dest, action.type))
    for flag in ('--validation_percentage', '--train_batch_size', '--how_many_training_steps',
                 '--learning_rate', '--image_dir', '--bottleneck_dir', '--seed'):
        assert len(kinds[flag]) == 1, (flag, kinds[flag])
    assert kinds['--validation_percentage'] == {('validation_percentage', float)}
    old = parsers['finetune'].parse_args(['--batch_size', '8', '--validation_percentage', '12.5'])
    assert old.train_batch_size == 8 and old.validation_percentage == 12.5
    with pytest.raises(SystemExit):
        main(['finetune', '--help'])
    assert 'old spelling: --batch_size' in ' '.join(capsys.readouterr().out.split())
