"""Weight dicts of the .npy-built networks, and the layers that read them by name.

A weight dict maps a layer name to (weights, biases), float32 arrays:
{'conv1': (w [11, 11, 3, 96], b [96]), ...}, as bvlc_alexnet.npy and
vgg16.npy hold them. Those files are pickles (np.save of a dict), and
unpickling runs whatever the file names, so they are read here with an
unpickler that admits only numpy arrays and plain containers: anything else
is refused before it runs. tfgraft writes .npz files (no pickle at all):
one array per 'layer/weights' and 'layer/biases'.

The networks (graphs/alexnet.py, graphs/vgg16.py) are tables of the layers
below. From a table alone every layer's output shape and weight shapes follow,
so a weight dict is checked against the architecture before any op is added.
"""
import dataclasses
import math
import os
import pickle
import zipfile

import numpy as np
import tensorflow as tf
from numpy.lib import format as npy_format

from tfgraft.graphs.errors import GraftError

tf1 = tf.compat.v1

PARTS = ('weights', 'biases')

# numpy's own helpers for rebuilding arrays and scalars, taken from numpy
# itself so that both the numpy 1 (numpy.core) and numpy 2 (numpy._core)
# names in old and new files resolve to them without importing either path.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]
SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy.core.multiarray', 'scalar'): _SCALAR,
    ('numpy._core.multiarray', 'scalar'): _SCALAR,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dicts, lists, tuples, strings and numbers only."""

    def find_class(self, module, name):
        found = SAFE_GLOBALS.get((module, name))
        if found is None:
            raise GraftError('refused: the pickle in the weight file asks for %s.%s; only numpy '
                             'arrays and plain containers are allowed' % (module, name))
        return found

    def persistent_load(self, pid):
        raise GraftError('refused: the pickle in the weight file uses persistent ids')


def _unpickle_npy(path):
    """The object an np.save(allow_pickle=True) file holds, unpickled safely."""
    with open(path, 'rb') as handle:
        try:
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(handle)
            else:
                raise GraftError('%s: .npy format version %d.%d is not supported'
                                 % ((path,) + version))
        except ValueError as error:
            raise GraftError('%s is not a .npy file: %s' % (path, error)) from None
        if not dtype.hasobject:
            raise GraftError('%s holds one %s array of shape %s, not a dict of layer weights'
                             % (path, dtype, shape))
        try:
            # latin1 reads the Python 2 pickles the published files are.
            return _ArraysOnlyUnpickler(handle, encoding='latin1').load()
        except GraftError as error:
            raise GraftError('%s %s' % (path, error)) from None
        except Exception as error:  # untrusted bytes: any failure is a bad file
            raise GraftError('%s is truncated or not a weight dict (%s: %s)'
                             % (path, type(error).__name__, error)) from None


def _text(key):
    return key.decode('latin1') if isinstance(key, bytes) else key


def _float_array(value, path, layer, part):
    if not isinstance(value, np.ndarray) or value.dtype.kind not in 'fiu':
        raise GraftError('%s: layer %s %s is not a numeric array' % (path, layer, part))
    return value.astype(np.float32, copy=False)


def _layer_entry(entry, path, layer):
    """[weights, biases] or {'weights': w, 'biases': b} -> (w, b) float32."""
    if isinstance(entry, dict):
        entry = {_text(key): value for key, value in entry.items()}
        if set(entry) != set(PARTS):
            raise GraftError('%s: layer %s holds %s; expected weights and biases'
                             % (path, layer, ', '.join(sorted(map(str, entry)))))
        entry = [entry[part] for part in PARTS]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2:
        raise GraftError('%s: layer %s is not a [weights, biases] pair' % (path, layer))
    return tuple(_float_array(value, path, layer, part) for value, part in zip(entry, PARTS))


def _weights_from_pickle(path):
    held = _unpickle_npy(path)
    if isinstance(held, np.ndarray) and held.shape == () and held.dtype.hasobject:
        held = held.item()
    if not isinstance(held, dict):
        raise GraftError('%s holds a %s, not a dict of layer weights' % (path, type(held).__name__))
    weights = {}
    for key, entry in held.items():
        layer = _text(key)
        if not isinstance(layer, str):
            raise GraftError('%s: layer name %r is not a string' % (path, key))
        weights[layer] = _layer_entry(entry, path, layer)
    return weights


def _weights_from_npz(path):
    try:
        with np.load(path, allow_pickle=False) as arrays:
            parts = {key: arrays[key] for key in arrays.files}
    except ValueError as error:  # object arrays need pickle: refused
        raise GraftError('%s: %s' % (path, str(error).splitlines()[0])) from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise GraftError('%s is truncated or not an .npz file: %s' % (path, error)) from None
    except MemoryError:
        raise GraftError('%s: an array header claims more memory than there is' % path) from None
    layers = {}
    for key, value in parts.items():
        layer, _, part = key.rpartition('/')
        if not layer or part not in PARTS:
            raise GraftError("%s: array %r is not named 'layer/weights' or 'layer/biases'"
                             % (path, key))
        layers.setdefault(layer, {})[part] = value
    return {layer: _layer_entry(entry, path, layer) for layer, entry in layers.items()}


def load_weights(path):
    """{layer: (weights, biases)} from an .npy weight dict (pickle) or an .npz file."""
    if not os.path.isfile(path):
        raise GraftError('weight file not found: %s' % path)
    with open(path, 'rb') as handle:
        magic = handle.read(6)
    if magic == npy_format.MAGIC_PREFIX:
        return _weights_from_pickle(path)
    if magic[:4] == b'PK\x03\x04':
        return _weights_from_npz(path)
    raise GraftError('%s is neither an .npy nor an .npz weight file' % path)


def save_weights(weights, path):
    """Write {layer: (weights, biases)} as .npz ('layer/weights', 'layer/biases')."""
    if not path.endswith('.npz'):
        raise GraftError('weight files are written as .npz: %s' % path)
    arrays = {}
    for layer, (layer_weights, biases) in weights.items():
        arrays[layer + '/weights'] = np.asarray(layer_weights, np.float32)
        arrays[layer + '/biases'] = np.asarray(biases, np.float32)
    partial = path + '.partial'
    with open(partial, 'wb') as handle:
        np.savez(handle, **arrays)
    os.replace(partial, path)
    return path


def check_weights(network, weights, expected):
    """Raise a one-line GraftError unless weights hold every layer of `expected`.

    `expected` maps a layer name to (weights shape, biases shape).
    """
    for layer, (weights_shape, biases_shape) in expected.items():
        if layer not in weights:
            raise GraftError('%s weights have no layer %s (expected weights %s, biases %s)'
                             % (network, layer, list(weights_shape), list(biases_shape)))
        found = tuple(tuple(array.shape) for array in weights[layer])
        if found != (tuple(weights_shape), tuple(biases_shape)):
            raise GraftError('%s layer %s: expected weights %s, biases %s; '
                             'found weights %s, biases %s'
                             % (network, layer, list(weights_shape), list(biases_shape),
                                list(found[0]), list(found[1])))


# The layers the networks' tables are written in. Shapes leave out the batch.

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


def fc8_width(weights, num_classes=None):
    """num_classes if given, else the classes fc8 holds in `weights` (1000, ImageNet's, without fc8)."""
    if num_classes is not None:
        return num_classes
    return weights['fc8'][1].shape[0] if 'fc8' in weights else 1000


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
