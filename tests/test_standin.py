"""`tfgraft standin` writes files the real loading code takes as the real thing."""
import pytest

from tfgraft.graphs.frozen import load_frozen_backbone
from tfgraft.graphs.npy_backbone import load_npy_backbone
from tfgraft.tools import cli


def test_inception_standin_command(tmp_path):
    path = str(tmp_path / 'tensorflow_inception_graph.pb')
    assert cli.main(['standin', 'inception_v3', '--output', path]) == 0
    assert load_frozen_backbone(path).card.name == 'inception_v3'


@pytest.mark.parametrize('network, layer, size', [('alexnet', 'relu7', 4096 // 4),
                                                  ('vgg16', 'relu6', 4096 // 4)])
@pytest.mark.parametrize('suffix', ['.npy', '.npz'])
def test_npy_standin_command(tmp_path, network, layer, size, suffix):
    path = str(tmp_path / (network + suffix))
    assert cli.main(['standin', network, '--output', path, '--width_divisor', '4']) == 0
    backbone = load_npy_backbone(network, path)
    assert backbone.layer == layer and backbone.card.bottleneck_size == size
