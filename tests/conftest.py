"""Shared fixtures and helpers. Real assets come from $TFGRAFT_ASSETS or ../shared/assets.

In CI (CI=true) a test that needs them fails when they are missing; elsewhere
it is skipped. Tests marked `slow` (registered in pyproject.toml) are left out
by `python -m pytest tests -m "not slow"`, the quick local loop.
"""
import json
import os

import numpy as np
import pytest

from tfgraft.tools.cli import configure_tensorflow

configure_tensorflow()     # before TensorFlow is imported: the tests run what `tfgraft` runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNTHETIC_SIZE = 32      # bottleneck size of the synthetic records


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: runs the pipeline over a whole real data set '
                                       '(minutes); deselect with -m "not slow"')


def assets_root():
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(ROOT, '..', 'shared', 'assets')


def need_asset(*parts):
    path = os.path.join(assets_root(), *parts)
    if not os.path.exists(path):
        message = 'real asset missing: %s (set TFGRAFT_ASSETS)' % path
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope='session')
def mobilenet_pb():
    return need_asset('mobilenet_v1_0.25_128', 'frozen_graph.pb')


@pytest.fixture(scope='session')
def cats_and_dogs():
    return need_asset('cats_and_dogs_filtered')


@pytest.fixture(scope='session')
def mobilenet_backbone(mobilenet_pb):
    from tfgraft.graphs.frozen import load_frozen_backbone
    return load_frozen_backbone(mobilenet_pb)


@pytest.fixture(scope='session')
def cats_dogs_records(tmp_path_factory, mobilenet_backbone, cats_and_dogs):
    """Bottleneck records of the whole real cats-vs-dogs set (folder splits), made once."""
    return records_in_new_folder(tmp_path_factory, 'cats_dogs_records', cats_and_dogs,
                                 mobilenet_backbone)


@pytest.fixture(scope='session')
def cats_dogs_model(tmp_path_factory, cats_dogs_records):
    """A softmax head trained on the real cats-vs-dogs bottlenecks (1000 steps), made once."""
    from tfgraft.tools.cli import main
    model_dir = str(tmp_path_factory.mktemp('cats_dogs_model'))
    code = main(['train', '--bottleneck_dir', cats_dogs_records, '--model_dir', model_dir,
                 '--how_many_training_steps', '1000', '--eval_step_interval', '500'])
    assert code == 0
    return model_dir


# ---------------------------------------------------------------- helpers

def records_in_new_folder(tmp_path_factory, name, image_dir, backbone, batch_size=64):
    """The in-process bottlenecks job of image_dir into a new temp folder (its path)."""
    from tfgraft.records.extract import write_bottlenecks
    out = str(tmp_path_factory.mktemp(name))
    write_bottlenecks(image_dir, backbone, out, batch_size=batch_size, progress=False)
    return out


def copy_real_photos(cats_and_dogs, per_class, make_dir, copy=os.symlink):
    """The first per_class photos of each class of train/ and validation/ of the real set:
    copy(source, target) into the folder make_dir(split, class) makes and returns."""
    for split in ('train', 'validation'):
        for name in ('cats', 'dogs'):
            source = os.path.join(cats_and_dogs, split, name)
            folder = make_dir(split, name)
            for file_name in sorted(os.listdir(source))[:per_class]:
                copy(os.path.join(source, file_name), folder + '/' + file_name)


def local_folders(root):
    """A make_dir for copy_real_photos: root/split/class, made."""
    def make_dir(split, name):
        folder = os.path.join(str(root), split, name)
        os.makedirs(folder)
        return folder
    return make_dir


def fake_graph(sha='a' * 64, name='fake_net'):
    """A manifest's graph entry for records that no real graph made."""
    from tfgraft.graphs.registry import GraphCard
    card = GraphCard(name=name, input_tensor='input:0', input_kind='image', input_size=(8, 8),
                     input_range=(-1.0, 1.0), bottleneck_tensor='pool:0',
                     bottleneck_size=SYNTHETIC_SIZE)
    return {'card': card.to_dict(), 'sha256': sha, 'path': '/nonexistent/%s.pb' % name, 'layer': None}


def write_synthetic_records(folder, classes=('ants', 'bees', 'wasps'), counts=None,
                            size=SYNTHETIC_SIZE, seed=0, graph=None, spread=1.0):
    """A bottleneck dir of Gaussian clusters, one per class, with a manifest."""
    import tensorflow as tf
    from tfgraft.records import schema
    counts = counts or {'train': 300, 'validation': 90, 'test': 60}
    rng = np.random.RandomState(seed)
    centres = rng.randn(len(classes), size).astype(np.float32) * 2
    os.makedirs(folder, exist_ok=True)
    manifest = {'schema_version': schema.SCHEMA_VERSION, 'bottleneck_size': size,
                'classes': list(classes), 'graph': graph or fake_graph(), 'splits': {}}
    for split, count in counts.items():
        labels = np.arange(count) % len(classes)
        vectors = centres[labels] + spread * rng.randn(count, size).astype(np.float32)
        shards = []
        if count:
            shards = [schema.shard_name(split, 0, 1)]
            with tf.io.TFRecordWriter(os.path.join(folder, shards[0])) as writer:
                for index, (vector, label) in enumerate(zip(vectors, labels)):
                    digest = '%064x' % (index + 1)
                    writer.write(schema.make_example(vector, label, classes[label],
                                                     '%s/%s_%d.jpg' % (classes[label], split, index), digest))
        manifest['splits'][split] = {
            'count': count, 'shards': shards,
            'per_class': {c: int((labels == i).sum()) for i, c in enumerate(classes)}}
    with open(os.path.join(folder, 'labels.txt'), 'w') as handle:
        handle.write(''.join(c + '\n' for c in classes))
    with open(os.path.join(folder, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)
    return manifest


def anonymized(graph_def):
    """The same graph with every Const renamed c0, c1, ...: only structure is left."""
    import tensorflow as tf
    renames = {node.name: 'c%d' % i for i, node in enumerate(graph_def.node) if node.op == 'Const'}
    result = tf.compat.v1.GraphDef()
    result.CopyFrom(graph_def)
    for node in result.node:
        node.name = renames.get(node.name, node.name)
        node.input[:] = [renames.get(name, name) for name in node.input]
    return result


def tfgraft(capsys, *argv):
    """(exit code, stdout, stderr) of `tfgraft argv...`."""
    from tfgraft.tools.cli import main
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *words):
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith('tfgraft: error:')]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]
