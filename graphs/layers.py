"""The layers the .npy networks' tables are written in, and the builder that reads them.

A network (graphs/alexnet.py, graphs/vgg16.py) is a tuple of these layers, as
the paper lists them. From a table alone every layer's output shape and weight
shapes follow (shapes leave out the batch), so a weight dict is checked
against the architecture before any op is added; build_network then adds the
layers, each reading its weights by its name.
"""
import dataclasses
import math

import tensorflow as tf

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.npy_weights import PARTS, check_weights, fc8_width

tf1 = tf.compat.v1


def _output_size(size, kernel, stride, padding):
    if padding == 'SAME':
        return -(-size // stride)
    return (size - kernel) // stride + 1


@dataclasses.dataclass(frozen=True)
class Conv:
    """Convolution, bias and ReLU: one layer in both reference models.

    groups=2 splits the input and the filters in two halves (AlexNet's two
    GPUs), so the weights hold half the input depth: conv2 [5, 5, 48, 256].
    """
    name: str
    size: int
    depth: int
    stride: int = 1
    groups: int = 1
    padding: str = 'SAME'

    def weight_shapes(self, shape):
        if shape[-1] % self.groups:
            raise GraftError('layer %s: input depth %d does not split into %d groups'
                             % (self.name, shape[-1], self.groups))
        return (self.size, self.size, shape[-1] // self.groups, self.depth), (self.depth,)

    def output_shape(self, shape):
        return tuple(_output_size(side, self.size, self.stride, self.padding)
                     for side in shape[:2]) + (self.depth,)

    def apply(self, inputs, weights, biases):
        strides = [1, self.stride, self.stride, 1]
        if self.groups == 1:
            outputs = tf.nn.conv2d(inputs, weights, strides, self.padding)
        else:
            outputs = tf.concat([
                tf.nn.conv2d(part, kernel, strides, self.padding)
                for part, kernel in zip(tf.split(inputs, self.groups, axis=3),
                                        tf.split(weights, self.groups, axis=3))], axis=3)
        return tf.nn.relu(tf.nn.bias_add(outputs, biases))


@dataclasses.dataclass(frozen=True)
class FullyConnected:
    """inputs x weights + biases, no activation; flattens NHWC inputs first."""
    name: str
    depth: int

    def weight_shapes(self, shape):
        return (math.prod(shape), self.depth), (self.depth,)

    def output_shape(self, shape):
        return (self.depth,)

    def apply(self, inputs, weights, biases):
        if inputs.shape.rank != 2:
            inputs = tf.reshape(inputs, [-1, math.prod(inputs.shape.as_list()[1:])])
        return tf.nn.bias_add(tf.matmul(inputs, weights), biases)


@dataclasses.dataclass(frozen=True)
class MaxPool:
    name: str
    size: int
    stride: int
    padding: str = 'VALID'

    def output_shape(self, shape):
        return tuple(_output_size(side, self.size, self.stride, self.padding)
                     for side in shape[:2]) + (shape[2],)

    def apply(self, inputs):
        return tf.nn.max_pool2d(inputs, self.size, self.stride, self.padding)


@dataclasses.dataclass(frozen=True)
class LocalResponseNorm:
    name: str
    depth_radius: int
    alpha: float
    beta: float
    bias: float

    def output_shape(self, shape):
        return shape

    def apply(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
            beta=self.beta)


@dataclasses.dataclass(frozen=True)
class ReLU:
    name: str

    def output_shape(self, shape):
        return shape

    def apply(self, inputs):
        return tf.nn.relu(inputs)


@dataclasses.dataclass(frozen=True)
class Dropout:
    """Keeps each unit with probability keep_prob; none at all for a plain 1.0."""
    name: str

    def output_shape(self, shape):
        return shape

    def apply(self, inputs, keep_prob):
        if isinstance(keep_prob, (int, float)) and keep_prob == 1.0:
            return inputs
        return tf.nn.dropout(inputs, rate=1.0 - keep_prob)


def layers_up_to(network, table, last_layer=None):
    """The table's layers up to and including last_layer (all of them for None)."""
    names = [layer.name for layer in table]
    if last_layer is None:
        return tuple(table)
    if last_layer not in names:
        raise GraftError('%s has no layer %r; its layers: %s'
                         % (network, last_layer, ', '.join(names)))
    return tuple(table[:names.index(last_layer) + 1])


def layer_shapes(network, table, input_shape):
    """({layer: output shape}, {layer: (weights shape, biases shape)}) for an input [H, W, C]."""
    outputs, parameters = {}, {}
    shape = tuple(input_shape)
    for layer in table:
        if hasattr(layer, 'weight_shapes'):
            parameters[layer.name] = layer.weight_shapes(shape)
        shape = layer.output_shape(shape)
        if min(shape) < 1:
            raise GraftError('%s: input %s is too small for layer %s'
                             % (network, list(input_shape), layer.name))
        outputs[layer.name] = shape
    return outputs, parameters


def _layer_parameters(layer, shapes, weights, train_layers, skip_layers):
    """(weights, biases) tensors: new or loaded variables, or constants."""
    if layer.name in skip_layers:
        return (tf1.get_variable('weights', shapes[0],
                                 initializer=tf1.glorot_uniform_initializer()),
                tf1.get_variable('biases', shapes[1], initializer=tf1.zeros_initializer()))
    arrays = weights[layer.name]
    if layer.name in train_layers:
        return tuple(tf1.get_variable(part, initializer=array)
                     for part, array in zip(PARTS, arrays))
    return tuple(tf.constant(array, name=part) for part, array in zip(PARTS, arrays))


def build_network(network, table, images, weights, keep_prob=1.0, train_layers=(),
                  skip_layers=(), last_layer=None, scope=None):
    """Add the table's layers fed by `images` [N, H, W, C]; return (output, end_points).

    Layers named in train_layers are trainable tf.compat.v1 variables
    initialised from `weights`; those in skip_layers are new trainable
    variables (Glorot weights, zero biases) and need no entry in `weights`;
    all others are constants. end_points maps every layer name to its output.
    The weights are checked against the table before any op is added.
    """
    weighted = [layer.name for layer in table if hasattr(layer, 'weight_shapes')]
    for flag, names in (('train_layers', train_layers), ('skip_layers', skip_layers)):
        unknown = sorted(set(names) - set(weighted))
        if unknown:
            raise GraftError('%s %s names %s; layers with weights: %s'
                             % (network, flag, ', '.join(unknown), ', '.join(weighted)))
    table = layers_up_to(network, table, last_layer)
    input_shape = images.shape.as_list()[1:]
    if len(input_shape) != 3 or None in input_shape:
        raise GraftError('%s needs images [N, height, width, channels] of static size, got %s'
                         % (network, images.shape))
    _, shapes = layer_shapes(network, table, input_shape)
    check_weights(network, weights, {name: shape for name, shape in shapes.items()
                                     if name not in skip_layers})
    end_points = {}
    outputs = images
    with tf1.variable_scope(scope, default_name=network):
        for layer in table:
            with tf1.variable_scope(layer.name):
                if layer.name in shapes:
                    outputs = layer.apply(outputs, *_layer_parameters(
                        layer, shapes[layer.name], weights, train_layers, skip_layers))
                elif isinstance(layer, Dropout):
                    outputs = layer.apply(outputs, keep_prob)
                else:
                    outputs = layer.apply(outputs)
            end_points[layer.name] = outputs
    return outputs, end_points


def network_builder(network, layer_table):
    """The graph builder of a network written as a layer table (graphs/alexnet.py, vgg16.py):

        builder(images, weights, num_classes=None, keep_prob=1.0, train_layers=(),
                skip_layers=(), last_layer=None, width_divisor=1, scope=network)
            -> (last layer's output, end_points by layer name)

    num_classes: fc8's width; by default as in `weights` (1000 for ImageNet). Give it
    when fc8 is in skip_layers to learn new classes.
    """
    def builder(images, weights, num_classes=None, keep_prob=1.0, train_layers=(),
                skip_layers=(), last_layer=None, width_divisor=1, scope=network):
        table = layer_table(fc8_width(weights, num_classes), width_divisor)
        return build_network(network, table, images, weights, keep_prob, train_layers,
                             skip_layers, last_layer, scope)
    builder.__name__ = builder.__qualname__ = network
    return builder
