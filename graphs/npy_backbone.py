"""Backbones built from .npy/.npz weight dicts: AlexNet and VGG16.

`load_npy_backbone('vgg16', 'vgg16.npy', 'relu6')` reads the weights safely,
checks them against the architecture up to the chosen layer, and gives an
object like the frozen-graph backbones: `card`, `sha256`, `path`, `layer`,
`build(images, name)`. Default layers: alexnet relu7 (fc7 after its ReLU, the
4096-d DeCAF-style features), vgg16 relu6 (the VGG tutorial's 4096-d codes).
Any layer name of the network's table can be asked for (pool5, fc7, ...);
the vector is that layer's output flattened.
"""
import dataclasses
import math
import os

import tensorflow as tf

from tfgraft.graphs.frozen import sha256_file
from tfgraft.graphs.layers import layer_shapes, layers_up_to
from tfgraft.graphs.networks import get_network
from tfgraft.graphs.npy_weights import check_weights, fc8_width, load_weights
from tfgraft.graphs.shapes import flat_rows

tf1 = tf.compat.v1

def width_divisor_of(network, weights):
    """How many times narrower than the real network the weights are (1 for the real files)."""
    first = get_network(network).layer_table()[0]
    if first.name not in weights or weights[first.name][0].ndim != 4:
        return 1
    depth = weights[first.name][0].shape[-1]
    return first.depth // depth if depth and first.depth % depth == 0 else 1


class NpyBackbone:
    """A network built from a weight dict, read at one layer."""

    def __init__(self, network, weights, card, sha256, path, layer, width_divisor=1):
        self.network = network
        self.weights = weights
        self.card = card
        self.sha256 = sha256
        self.path = path
        self.layer = layer
        self.width_divisor = width_divisor

    def _end_points(self, images, scope):
        _, end_points = get_network(self.network).builder(
            images, self.weights, last_layer=self.layer, width_divisor=self.width_divisor,
            scope=scope)
        return end_points

    def build(self, images, name='backbone'):
        """Add the network fed by `images` (preprocessed per the card); returns [N, D]."""
        output = self._end_points(images, name)[self.layer]
        return flat_rows(output, self.card.bottleneck_size, name + '_bottleneck')

    def write_frozen_graph(self, graph_path):
        """Write a frozen GraphDef ('input' -> the layer) and its sidecar card; returns the card."""
        from tfgraft.graphs.frozen import write_frozen_graph
        height, width = self.card.input_size
        graph = tf.Graph()
        with graph.as_default():
            images = tf1.placeholder(tf.float32, [None, height, width, 3], name='input')
            tf.identity(self._end_points(images, self.network)[self.layer], name=self.layer)
        card = dataclasses.replace(
            self.card, name=os.path.splitext(os.path.basename(graph_path))[0],
            input_tensor='input:0', bottleneck_tensor=self.layer + ':0', network='')
        return write_frozen_graph(graph.as_graph_def(), card, graph_path, graph_path)


def load_npy_backbone(network, weights_path, layer=None):
    """Load and check `network`'s weights for reading `layer` (default: the card's)."""
    spec = get_network(network)
    card = spec.card
    layer = layer or card.bottleneck_tensor
    weights = load_weights(weights_path)
    width_divisor = width_divisor_of(network, weights)
    table = layers_up_to(network, spec.layer_table(fc8_width(weights), width_divisor), layer)
    outputs, shapes = layer_shapes(network, table, (spec.input_size, spec.input_size, 3))
    check_weights(network, weights, shapes)
    card = dataclasses.replace(card, bottleneck_tensor=layer,
                               bottleneck_size=math.prod(outputs[layer]))
    weights = {name: weights[name] for name in shapes}   # the layers after `layer` are not kept
    return NpyBackbone(network, weights, card, sha256_file(weights_path), weights_path, layer,
                       width_divisor)
