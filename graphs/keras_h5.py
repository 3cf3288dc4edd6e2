"""Keras VGG16 weights (.h5, the keras.applications layout) as the vgg16 weight dict.

Datasets are found by their Keras layer names (block1_conv1 ... block5_conv3,
fc1 fc2 predictions), mapped to ours (conv1_1 ... fc8) and checked against
VGG16 at the width the file has, up to the layers it holds. h5py comes with
Keras; it is imported when a file is read.
"""
import numpy as np

from tfgraft.graphs import vgg16
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.layers import layer_shapes, layers_up_to
from tfgraft.graphs.npy_backbone import width_divisor_of
from tfgraft.graphs.npy_weights import check_weights


def keras_layer_arrays(handle):
    """{our layer name: [arrays]} from every dataset under a Keras VGG16 layer name."""
    import h5py
    arrays = {}

    def visit(name, item):
        parts = name.split('/')
        if not isinstance(item, h5py.Dataset) or parts[0].startswith('optimizer'):
            return
        keras_layer = next((part for part in parts if part in vgg16.KERAS_LAYER_NAMES), None)
        if keras_layer:
            arrays.setdefault(vgg16.KERAS_LAYER_NAMES[keras_layer], []).append(
                np.asarray(item[()], np.float32))

    handle.visititems(visit)
    return arrays


def vgg16_weights_from_h5(path):
    """The vgg16 weight dict {conv1_1: (weights, biases), ...} of a Keras VGG16 .h5 file."""
    import h5py
    try:
        handle = h5py.File(path, 'r')
    except OSError as error:
        raise GraftError('%s is not an HDF5 (.h5) file: %s' % (path, error)) from None
    with handle:
        arrays = keras_layer_arrays(handle)
        numbered = 'layers' in handle
    if not arrays:
        hint = ('; it numbers its layers (a Keras 3 .weights.h5): save the model with '
                "model.save('model.h5') instead" if numbered else '')
        raise GraftError('%s holds no Keras VGG16 layers (block1_conv1 ...)%s' % (path, hint))
    weights = {}
    for layer, found in arrays.items():
        kernels = [array for array in found if array.ndim >= 2]
        biases = [array for array in found if array.ndim == 1]
        if len(kernels) != 1 or len(biases) != 1:
            raise GraftError('%s: layer %s holds %d arrays, expected a kernel and a bias'
                             % (path, layer, len(found)))
        weights[layer] = (kernels[0], biases[0])
    # Check against VGG16 (at the width the file has) up to what the file holds.
    num_classes = weights['fc8'][1].shape[0] if 'fc8' in weights else 1000
    table = vgg16.layer_table(num_classes, width_divisor_of('vgg16', weights))
    table = layers_up_to('vgg16', table, 'fc8' if 'fc6' in weights else 'pool5')
    _, shapes = layer_shapes('vgg16', table, (vgg16.INPUT_SIZE, vgg16.INPUT_SIZE, 3))
    check_weights('vgg16', weights, shapes)
    return weights
