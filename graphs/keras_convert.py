"""Keras applications -> frozen GraphDef + sidecar card, for the tfgraft pipeline.

The network is built with `weights=None` (nothing is downloaded), then given
the weights of a local .h5 / .weights.h5 file, or random weights from a fixed
seed. Its forward pass in inference mode is traced with tf.function and its
variables turned into Consts. The graph takes `input:0` (float [None, H, W, 3],
already preprocessed) and gives `bottleneck:0` (global average pooling); each
weight Const is named by its Keras variable path (`Conv1/kernel`,
`bn_Conv1/moving_mean`, ...), so graphs.unfreeze can see the layers by name.
"""
import dataclasses
import os

import tensorflow as tf

from tfgraft.graphs import registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import write_frozen_graph

INPUT_NAME = 'input'
BOTTLENECK_NAME = 'bottleneck'


@dataclasses.dataclass(frozen=True)
class Application:
    default_size: int
    min_size: int
    preprocessing: str      # keras preprocess_input mode: 'tf' or 'caffe'


APPLICATIONS = {
    'MobileNetV2': Application(224, 32, 'tf'),
    'InceptionV3': Application(299, 75, 'tf'),
    'ResNet50': Application(224, 32, 'caffe'),
    'VGG16': Application(224, 32, 'caffe'),
}

# keras preprocess_input: 'tf' scales to [-1, 1]; 'caffe' flips to BGR and
# subtracts the ImageNet mean (BGR order) from 0..255 pixels.
PREPROCESSING = {
    'tf': dict(input_range=(-1.0, 1.0), channel_order='RGB', channel_mean=()),
    'caffe': dict(input_range=(0.0, 255.0), channel_order='BGR',
                  channel_mean=(103.939, 116.779, 123.68)),
}


def _application_name(application):
    for name in APPLICATIONS:
        if name.lower() == str(application).lower():
            return name
    raise GraftError('unknown Keras application %r; known: %s' % (application, ', '.join(APPLICATIONS)))


def _input_size(name, input_size):
    spec = APPLICATIONS[name]
    if input_size is None:
        input_size = spec.default_size
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(size) < spec.min_size:
        raise GraftError('%s needs an input size of at least %dx%d, got %s'
                         % (name, spec.min_size, spec.min_size, input_size))
    return tuple(int(v) for v in size)


def build_application(application, weights=None, alpha=1.0, input_size=None, seed=0):
    """The Keras model (include_top=False, pooling='avg') and its graph card.

    Random weights come from `keras.utils.set_random_seed(seed)`, which also
    seeds Python's, NumPy's and TensorFlow's global generators.
    """
    import keras
    name = _application_name(application)
    height, width = _input_size(name, input_size)
    options = {}
    if name == 'MobileNetV2':
        options['alpha'] = alpha
    elif alpha != 1.0:
        raise GraftError('alpha is a MobileNetV2 option; %s has none' % name)
    if weights and not os.path.isfile(weights):
        raise GraftError('weights file not found: %s' % weights)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    try:
        model = getattr(keras.applications, name)(
            include_top=False, weights=None, input_shape=(height, width, 3), pooling='avg', **options)
    except ValueError as error:
        raise GraftError('cannot build %s: %s' % (name, str(error).splitlines()[0])) from None
    if weights:
        try:
            model.load_weights(weights)
        except (ValueError, OSError, KeyError) as error:
            raise GraftError('cannot load %s into %s: %s'
                             % (weights, name, str(error).splitlines()[0])) from None
    size_name = '%d' % height if height == width else '%dx%d' % (height, width)
    card = registry.GraphCard(
        name='keras_%s%s_%s' % (name.lower(), '_%g' % alpha if name == 'MobileNetV2' else '', size_name),
        input_tensor=INPUT_NAME + ':0',
        input_kind='image',
        input_size=(height, width),
        bottleneck_tensor=BOTTLENECK_NAME + ':0',
        bottleneck_size=int(model.output_shape[-1]),
        **PREPROCESSING[APPLICATIONS[name].preprocessing])
    return model, card


def freeze_model(model, card):
    """The model's inference pass as a GraphDef of Consts, input and output renamed."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    height, width = card.input_size
    forward = tf.function(lambda images: model(images, training=False))
    concrete = forward.get_concrete_function(
        tf.TensorSpec([None, height, width, 3], tf.float32, name=INPUT_NAME))
    paths = {id(variable.value.handle): variable.path for variable in model.weights}
    renames = {internal.op.name: paths[id(external)] for external, internal in concrete.graph.captures
               if id(external) in paths}
    frozen = convert_variables_to_constants_v2(concrete)
    renames[frozen.outputs[0].op.name] = BOTTLENECK_NAME
    return _rename_nodes(frozen.graph.as_graph_def(), renames)


def _rename_nodes(graph_def, renames):
    taken = {node.name for node in graph_def.node} - set(renames)
    clashes = taken & set(renames.values())
    if clashes:
        raise GraftError('cannot rename graph nodes: %s already exist' % ', '.join(sorted(clashes)))

    def renamed(tensor_name):
        control = tensor_name.startswith('^')
        node, _, output = tensor_name.lstrip('^').partition(':')
        node = renames.get(node, node)
        return ('^' if control else '') + node + (':' + output if output else '')

    result = tf.compat.v1.GraphDef()
    result.CopyFrom(graph_def)
    for node in result.node:
        node.name = renames.get(node.name, node.name)
        node.input[:] = [renamed(name) for name in node.input]
    return result


def convert_keras_application(application, output_pb, weights=None, alpha=1.0, input_size=None, seed=0):
    """Write `output_pb` (frozen GraphDef) and its sidecar card; return the card."""
    model, card = build_application(application, weights, alpha, input_size, seed)
    return write_frozen_graph(freeze_model(model, card), card, output_pb,
                              '%s conversion' % card.name)
