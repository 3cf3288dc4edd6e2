"""retrain.py users switch unchanged: its split rule (--split_rule retrain_py) and every one of its flags."""
import collections
import glob
import hashlib
import os
import re

import pytest

from conftest import one_line_error, tfgraft
from tfgraft.graphs.errors import GraftError
from tfgraft.records.listing import hash_split, list_images

# TensorFlow Hub's examples/image_retraining/retrain.py, every flag of its argparse.
RETRAIN_PY_FLAGS = (
    'image_dir', 'output_graph', 'intermediate_output_graphs_dir', 'intermediate_store_frequency',
    'output_labels', 'summaries_dir', 'how_many_training_steps', 'learning_rate',
    'testing_percentage', 'validation_percentage', 'eval_step_interval', 'train_batch_size',
    'test_batch_size', 'validation_batch_size', 'print_misclassified_test_images', 'bottleneck_dir',
    'final_tensor_name', 'flip_left_right', 'random_crop', 'random_scale', 'random_brightness',
    'tfhub_module', 'saved_model_dir', 'logging_verbosity', 'checkpoint_path')


def retrain_py_lists(image_dir, testing_percentage, validation_percentage):
    """retrain.py's create_image_lists, rewritten with the standard library: {class folder:
    {'training'|'testing'|'validation': [file names]}}. Walks every folder, globs the four
    extensions in image_dir/<folder basename>/, hashes the glob's path as typed."""
    result = collections.OrderedDict()
    sub_dirs = sorted(root for root, _, _ in os.walk(image_dir))[1:]    # the root sorts first
    for sub_dir in sub_dirs:
        dir_name = os.path.basename(sub_dir)
        file_list = []
        for extension in ['jpg', 'jpeg', 'JPG', 'JPEG']:
            file_list.extend(glob.glob(os.path.join(image_dir, dir_name, '*.' + extension)))
        if not file_list:
            continue
        lists = {'training': [], 'testing': [], 'validation': []}
        for file_name in file_list:
            base_name = os.path.basename(file_name)
            hash_name = re.sub(r'_nohash_.*$', '', file_name)
            hashed = hashlib.sha1(hash_name.encode('utf-8')).hexdigest()
            percentage = (int(hashed, 16) % (2 ** 27 - 1 + 1)) * (100.0 / (2 ** 27 - 1))
            if percentage < validation_percentage:
                lists['validation'].append(base_name)
            elif percentage < testing_percentage + validation_percentage:
                lists['testing'].append(base_name)
            else:
                lists['training'].append(base_name)
        result[dir_name] = lists
    return result


SPLIT_NAMES = {'training': 'train', 'testing': 'test', 'validation': 'validation'}


def as_entries(lists):
    """{(class/file): split} of retrain_py_lists' result."""
    return {'%s/%s' % (name, base): SPLIT_NAMES[split]
            for name, splits in lists.items() for split, bases in splits.items() for base in bases}


def make_folder(root):
    """Empty files (listing opens nothing): every extension case, _nohash_ variants, a nested
    folder and other image types, which retrain.py does not read."""
    for name in ('daisy', 'roses', 'tulips'):
        folder = os.path.join(root, name)
        os.makedirs(os.path.join(folder, 'more'))
        for i in range(120):
            extension = ('jpg', 'jpeg', 'JPG', 'JPEG')[i % 4]
            open(os.path.join(folder, 'photo_%03d.%s' % (i, extension)), 'w').close()
        for i in range(6):
            open(os.path.join(folder, 'leaf_%d_nohash_%d.jpg' % (i // 2, i)), 'w').close()
        for other in ('x.png', 'y.Jpg', 'z.gif', 'more/nested.jpg'):
            open(os.path.join(folder, other), 'w').close()


@pytest.mark.parametrize('typed', ['photos', './photos/', 'ABSOLUTE'])
def test_retrain_py_rule_is_retrain_pys_split_exactly(tmp_path, monkeypatch, typed):
    make_folder(str(tmp_path / 'photos'))
    monkeypatch.chdir(tmp_path)
    image_dir = str(tmp_path / 'photos') if typed == 'ABSOLUTE' else typed
    listed = list_images(image_dir, 10, 10, split_rule='retrain_py')
    ours = {entry.path: entry.split for entry in listed.entries}
    theirs = as_entries(retrain_py_lists(image_dir, 10, 10))
    assert ours == theirs
    assert len(ours) == 3 * 126 and listed.classes == ['daisy', 'roses', 'tulips']
    assert set(ours.values()) == {'train', 'validation', 'test'}
    assert listed.split_rule.startswith('retrain_py: sha1 of ')


def test_retrain_py_rule_depends_on_the_path_as_typed_and_the_default_does_not(tmp_path, monkeypatch):
    make_folder(str(tmp_path / 'photos'))
    monkeypatch.chdir(tmp_path)
    relative = {e.path: e.split for e in list_images('photos', 10, 10, split_rule='retrain_py').entries}
    absolute = {e.path: e.split for e in list_images(str(tmp_path / 'photos'), 10, 10,
                                                     split_rule='retrain_py').entries}
    assert relative.keys() == absolute.keys() and relative != absolute
    default = list_images('photos', 10, 10)
    assert {e.path: e.split for e in default.entries} == \
        {e.path: e.split for e in list_images(str(tmp_path / 'photos'), 10, 10).entries}
    for entry in default.entries:           # the file-name rule: the name alone is hashed
        assert entry.split == hash_split(os.path.basename(entry.path), 10, 10)
    assert len(default.entries) == 3 * 130          # every file, nested and .png too
    # _nohash_ variants stay together under both rules.
    for listed in (default.entries, list_images('photos', 10, 10, split_rule='retrain_py').entries):
        leaf = {e.split for e in listed if '/leaf_0_nohash_' in e.path and e.path.startswith('daisy')}
        assert len(leaf) == 1


def test_retrain_py_rule_refuses_a_split_folder_layout(tmp_path):
    for split in ('train', 'validation'):
        for name in ('cats', 'dogs'):
            os.makedirs(str(tmp_path / split / name))
            open(str(tmp_path / split / name / 'a.jpg'), 'w').close()
    assert list_images(str(tmp_path)).split_rule == 'folders'
    with pytest.raises(GraftError, match='split_rule retrain_py'):
        list_images(str(tmp_path), split_rule='retrain_py')


def test_retrain_takes_every_retrain_py_flag(capsys):
    from tfgraft.tools.cli import main
    with pytest.raises(SystemExit):
        main(['retrain', '--help'])
    out = capsys.readouterr().out
    for flag in RETRAIN_PY_FLAGS + ('split_rule',):
        assert re.search(r'--%s\b' % flag, out), flag


@pytest.mark.parametrize('flags, words', [
    (['--tfhub_module', 'https://tfhub.dev/google/x/1'], ['--tfhub_module', '--graph']),
    (['--architecture', 'mobilenet_1.0_224'], ['--architecture', '--graph']),
    (['--checkpoint_path', '/tmp/ckpt'], ['--checkpoint_path', '--model_dir']),
    (['--flip_left_right'], ['--flip_left_right', 'tfgraft finetune']),
    (['--random_crop', '10'], ['--random_crop', 'tfgraft finetune']),
    (['--random_scale', '10'], ['--random_scale', 'tfgraft finetune']),
    (['--random_brightness', '10'], ['--random_brightness', 'tfgraft finetune']),
    (['--test_batch_size', '100'], ['--test_batch_size', 'whole test split']),
    (['--validation_batch_size', '100'], ['--validation_batch_size', 'whole validation split']),
    (['--saved_model_dir', os.path.dirname(os.path.abspath(__file__))],
     ['--saved_model_dir', 'not empty', 'tfgraft export --format saved_model']),
])
def test_refused_retrain_py_flags_say_what_to_use(capsys, tmp_path, flags, words):
    code, _, err = tfgraft(capsys, 'retrain', '--image_dir', tmp_path, '--graph', tmp_path / 'none.pb',
                           *flags)
    one_line_error(code, err, *words)
    assert not os.listdir(str(tmp_path))        # refused before anything was written
