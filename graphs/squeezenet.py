"""SqueezeNet v1.1 without its top, as keras-squeezenet lays it out, from its .h5 weights.

conv1 (3x3/2, 64) and ReLU, max pool 3/2, fire2 fire3, pool3, fire4 fire5, pool5,
fire6 ... fire9; a fire module is squeeze1x1 (ReLU) feeding expand1x1 and
expand3x3 (ReLU each), concatenated. The bottleneck is fire9 average-pooled:
512-d. Weights are the Caffe release's: BGR input, the Caffe ImageNet means
subtracted, no scaling, 227x227. The weights are read by layer name with h5py
(graphs/keras_model.py h5_layer_weights) and the network is frozen as the Keras
conversions are (graphs/keras_convert.py), layers named `fire2_squeeze1x1` ...
"""
import dataclasses
import os

from tfgraft.graphs import registry
from tfgraft.graphs.errors import GraftError

INPUT_SIZE = 227
MIN_INPUT_SIZE = 35
# fire module id -> (squeeze, expand) depths; a max pool 3/2 comes before fire4 and fire6.
FIRE_MODULES = ((2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128),
                (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256))
POOL_BEFORE = {4: 'pool3', 6: 'pool5'}

CARD = registry.GraphCard(
    name='squeezenet_v1.1', input_tensor='input:0', input_kind='image',
    input_size=(INPUT_SIZE, INPUT_SIZE), input_range=(0.0, 255.0), bottleneck_tensor='bottleneck:0',
    bottleneck_size=512, channel_order='BGR', channel_mean=(103.939, 116.779, 123.68))


def layer_names():
    """The weighted layers in order, as the .h5 names them."""
    names = ['conv1']
    for fire, _, _ in FIRE_MODULES:
        names += ['fire%d/squeeze1x1' % fire, 'fire%d/expand1x1' % fire, 'fire%d/expand3x3' % fire]
    return names


def build_squeezenet(input_size=INPUT_SIZE):
    """The Keras model images -> pooled fire9 (random weights), and its Keras layer order."""
    import keras
    from keras import layers
    if input_size < MIN_INPUT_SIZE:
        raise GraftError('SqueezeNet needs an input of at least %dx%d, got %d'
                         % (MIN_INPUT_SIZE, MIN_INPUT_SIZE, input_size))
    keras.backend.clear_session()
    images = keras.Input((input_size, input_size, 3), name='images')
    x = layers.Conv2D(64, 3, strides=2, padding='valid', activation='relu', name='conv1')(images)
    x = layers.MaxPooling2D(3, 2, name='pool1')(x)
    for fire, squeeze, expand in FIRE_MODULES:
        if fire in POOL_BEFORE:
            x = layers.MaxPooling2D(3, 2, name=POOL_BEFORE[fire])(x)
        prefix = 'fire%d_' % fire
        x = layers.Conv2D(squeeze, 1, activation='relu', name=prefix + 'squeeze1x1')(x)
        left = layers.Conv2D(expand, 1, activation='relu', name=prefix + 'expand1x1')(x)
        right = layers.Conv2D(expand, 3, padding='same', activation='relu', name=prefix + 'expand3x3')(x)
        x = layers.Concatenate(axis=-1, name=prefix + 'concat')([left, right])
    output = layers.GlobalAveragePooling2D(name='pool10')(x)
    return keras.Model(images, output, name='squeezenet_v1.1')


def load_squeezenet(weights_path, input_size=INPUT_SIZE):
    """(Keras model with the file's weights, card)."""
    import numpy as np
    from tfgraft.graphs.keras_model import h5_layer_weights
    if not os.path.isfile(weights_path):
        raise GraftError('weights file not found: %s' % weights_path)
    try:
        found = h5_layer_weights(weights_path)
    except OSError as error:
        raise GraftError('%s is not an HDF5 (.h5) file: %s' % (weights_path, error)) from None
    model = build_squeezenet(input_size)
    for name in layer_names():
        arrays = [array for _, array in found.get(name, [])]
        kernels = [a for a in arrays if a.ndim == 4]
        biases = [a for a in arrays if a.ndim == 1]
        if len(kernels) != 1 or len(biases) != 1:
            raise GraftError('%s has no SqueezeNet layer %s (a kernel and a bias); is it the '
                             'keras-squeezenet v1.1 weights file?' % (weights_path, name))
        layer = model.get_layer(name.replace('/', '_'))
        for variable, array in zip(layer.weights, (kernels[0], biases[0])):
            if tuple(variable.shape) != array.shape:
                raise GraftError('%s layer %s: expected shape %s, found %s'
                                 % (weights_path, name, list(variable.shape), list(array.shape)))
            variable.assign(np.asarray(array, np.float32))
    # keras-squeezenet's own layer order (its ReLUs are layers there), as the file lists it.
    import h5py
    with h5py.File(weights_path, 'r') as handle:
        listed = [name.decode() if isinstance(name, bytes) else str(name)
                  for name in handle.attrs.get('layer_names', [])]
    card = dataclasses.replace(CARD, input_size=(input_size, input_size),
                               keras_layers=tuple(name.replace('/', '_') for name in listed))
    return model, card


def convert_squeezenet(weights_path, output_pb, input_size=INPUT_SIZE):
    """Write the frozen graph and its sidecar card; return the card."""
    from tfgraft.graphs.frozen import write_frozen_graph
    from tfgraft.graphs.keras_convert import freeze_model
    model, card = load_squeezenet(weights_path, input_size)
    card = dataclasses.replace(card, name=os.path.splitext(os.path.basename(output_pb))[0])
    return write_frozen_graph(freeze_model(model, card), card, output_pb, 'SqueezeNet conversion')
