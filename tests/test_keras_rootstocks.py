"""Reference accuracies of the Keras rootstocks in the real assets, through the whole pipeline.

Each file is checked by sha256, converted (`tfgraft convert`), run over all of
cats_and_dogs_filtered (2000 train + 1000 validation images, one extraction per
file for the session), and tfgraft's default head (softmax, `tfgraft train`
defaults) is scored on the 1000 validation images. Floors: the README's probe
figure minus one point for the Teachable Machine MobileNetV2 0.35/224 (96.9%);
SqueezeNet v1.1 measured 96.8% (benchmarks/README.md), floor 95.8%.
"""
import pytest

from conftest import need_asset
from tfgraft.graphs.frozen import sha256_file
from tfgraft.tools.cli import main
from tfgraft.engine.evaluation import evaluate_model

# name: (asset path, sha256, convert arguments, least validation accuracy)
ROOTSTOCKS = {
    'teachable_mobilenet_v2': (
        ('keras_mobilenet_v2_0.35_224', 'keras_model.h5'),
        'e3707c88306f397693ceab670a4ed1c6966719c4fc5c2cc97deebcd6e5e84c08',
        ['keras', '--model'], 0.959),
    'squeezenet_v1.1': (
        ('keras_squeezenet_v1.1', 'squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5'),
        '17154246284f555591549ac2c83e127abfbf4307dc4b0060fdaa2931d0fa38da',
        ['squeezenet', '--weights'], 0.958),
}
WIDTHS = {'teachable_mobilenet_v2': 1280, 'squeezenet_v1.1': 512}


@pytest.fixture(scope='session')
def keras_rootstock_records(tmp_path_factory, cats_and_dogs):
    """{name: (graph, bottleneck_dir)}, each converted and extracted once when first asked for."""
    made = {}

    def records(name):
        if name not in made:
            parts, sha256, convert, _ = ROOTSTOCKS[name]
            path = need_asset(*parts)
            assert sha256_file(path) == sha256, 'asset %s is not the expected file' % path
            folder = tmp_path_factory.mktemp(name)
            graph = str(folder / (name + '.pb'))
            assert main(['convert'] + convert + [path, '--output_graph', graph]) == 0
            bottleneck_dir = str(folder / 'records')
            assert main(['bottlenecks', '--image_dir', cats_and_dogs, '--graph', graph,
                         '--bottleneck_dir', bottleneck_dir]) == 0
            made[name] = graph, bottleneck_dir
        return made[name]
    return records


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(ROOTSTOCKS))
def test_default_head_reaches_the_reference(keras_rootstock_records, tmp_path, name):
    import json
    import os
    _, bottleneck_dir = keras_rootstock_records(name)
    with open(os.path.join(bottleneck_dir, 'manifest.json')) as handle:
        manifest = json.load(handle)
    assert manifest['graph']['card']['bottleneck_size'] == WIDTHS[name]
    counts = {split: info['count'] for split, info in manifest['splits'].items()}
    assert counts['train'] == 2000 and counts['validation'] == 1000
    model_dir = str(tmp_path / 'model')
    assert main(['train', '--bottleneck_dir', bottleneck_dir, '--model_dir', model_dir]) == 0
    report = evaluate_model(model_dir, bottleneck_dir, 'validation')
    print('%s: default head validation accuracy %.3f' % (name, report['accuracy']))
    assert report['count'] == 1000
    assert report['accuracy'] >= ROOTSTOCKS[name][3]
