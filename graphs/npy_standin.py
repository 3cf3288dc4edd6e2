"""Stand-in weight dicts: the real files' layer names and shapes, random values.

bvlc_alexnet.npy (233 MB) and vgg16.npy (528 MB) cannot be had here, so tests
and `tfgraft standin` make dicts of the same layout. width_divisor > 1 narrows
every conv and fc layer (not fc8, which has num_classes outputs) for fast tests.
"""
import math

import numpy as np

from tfgraft.graphs.layers import layer_shapes
from tfgraft.graphs.networks import get_network
from tfgraft.graphs.npy_weights import save_weights
from tfgraft.records.atomic import atomic_write


def standin_weights(network, width_divisor=1, num_classes=1000, seed=0):
    """{layer: (weights, biases)} float32; He-scaled normal weights, small biases."""
    spec = get_network(network)
    table = spec.layer_table(num_classes, width_divisor)
    _, shapes = layer_shapes(network, table, (spec.input_size, spec.input_size, 3))
    rng = np.random.default_rng(seed)
    weights = {}
    for layer, (weights_shape, biases_shape) in shapes.items():
        scale = np.float32(math.sqrt(2.0 / math.prod(weights_shape[:-1])))
        weights[layer] = (rng.standard_normal(weights_shape, dtype=np.float32) * scale,
                          rng.standard_normal(biases_shape, dtype=np.float32) * np.float32(0.01))
    return weights


def write_npy_standin(network, path, seed=0, width_divisor=1):
    """The real files' format: a pickled {layer: [weights, biases]} dict (.npz if so named)."""
    weights = standin_weights(network, width_divisor=width_divisor, seed=seed)
    if path.endswith('.npz'):
        return save_weights(weights, path)
    held = {name: list(pair) for name, pair in weights.items()}
    atomic_write(path, lambda handle: np.save(handle, held, allow_pickle=True))
    return path
