"""Shared fixtures. Real assets come from $TFGRAFT_ASSETS or ../shared/assets.

In CI (CI=true) a test that needs them fails when they are missing; elsewhere
it is skipped.
"""
import os

import pytest

from tfgraft.tools.cli import configure_tensorflow

configure_tensorflow()     # before TensorFlow is imported: the tests run what `tfgraft` runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    from tfgraft.records.extract import write_bottlenecks
    out = str(tmp_path_factory.mktemp('cats_dogs_records'))
    write_bottlenecks(cats_and_dogs, mobilenet_backbone, out, batch_size=64, progress=False)
    return out


@pytest.fixture(scope='session')
def cats_dogs_model(tmp_path_factory, cats_dogs_records):
    """A softmax head trained on the real cats-vs-dogs bottlenecks (1000 steps), made once."""
    from tfgraft.tools.cli import main
    model_dir = str(tmp_path_factory.mktemp('cats_dogs_model'))
    code = main(['train', '--bottleneck_dir', cats_dogs_records, '--model_dir', model_dir,
                 '--how_many_training_steps', '1000', '--eval_step_interval', '500'])
    assert code == 0
    return model_dir
