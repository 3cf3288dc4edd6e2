"""Known Keras layer classes, rebuilt from a model file's config without running its code.

A model file's config names a class per layer. Only the classes below are
rebuilt, each from the config keys that shape its computation (initialisers,
regularisers and constraints are left out: the weights come from the file).
Anything else -- Lambda (Python code), custom or unknown classes, activation
functions given as objects -- is refused with one line. Keras 2 and Keras 3
spellings of the same config are both read.
"""
from tfgraft.graphs.errors import GraftError

ACTIVATIONS = frozenset('''linear relu relu6 sigmoid softmax tanh swish silu hard_sigmoid
hard_swish hard_silu elu selu gelu softplus softsign leaky_relu'''.split())

_CONV = ('kernel_size', 'strides', 'padding', 'data_format', 'dilation_rate', 'activation', 'use_bias')
_POOL = ('pool_size', 'strides', 'padding', 'data_format')

# class name -> config keys kept (besides name)
LAYER_KEYS = {
    'Conv2D': ('filters', 'groups') + _CONV,
    'DepthwiseConv2D': ('depth_multiplier',) + _CONV,
    'SeparableConv2D': ('filters', 'depth_multiplier') + _CONV,
    'BatchNormalization': ('axis', 'momentum', 'epsilon', 'center', 'scale'),
    'ReLU': ('max_value', 'negative_slope', 'threshold'),
    'Activation': ('activation',),
    'ZeroPadding2D': ('padding', 'data_format'),
    'Add': (),
    'Multiply': (),
    'Concatenate': ('axis',),
    'GlobalAveragePooling2D': ('data_format', 'keepdims'),
    'GlobalMaxPooling2D': ('data_format', 'keepdims'),
    'MaxPooling2D': _POOL,
    'AveragePooling2D': _POOL,
    'Dropout': ('rate',),
    'Dense': ('units', 'activation', 'use_bias'),
    'Flatten': ('data_format',),
    'Reshape': ('target_shape',),
    'Rescaling': ('scale', 'offset'),
}
CONTAINERS = ('Sequential', 'Functional', 'Model')
CONVOLUTIONS = ('Conv2D', 'DepthwiseConv2D', 'SeparableConv2D')
GLOBAL_POOLS = ('GlobalAveragePooling2D', 'GlobalMaxPooling2D')
HEAD_LAYERS = ('Dense', 'Flatten')


def keras_name(name):
    """Keras 3 forbids '/' in layer names (keras-squeezenet's fire2/squeeze1x1)."""
    return name.replace('/', '_')


def _scalar_config(value, what):
    """Only plain JSON values: a nested {'class_name': ...} would be deserialised by Keras."""
    if isinstance(value, dict):
        raise GraftError('%s is an object (%s); tfgraft rebuilds plain values only'
                         % (what, value.get('class_name', 'dict')))
    if isinstance(value, (list, tuple)):
        return [_scalar_config(item, what) for item in value]
    return value


def _check_activation(value, what):
    if value not in ACTIVATIONS:
        raise GraftError('%s uses activation %r; tfgraft rebuilds only the built-in %s'
                         % (what, value, ', '.join(sorted(ACTIVATIONS))))


def build_layer(class_name, config):
    """A new Keras layer of a known class from a file's layer config."""
    import keras
    name = config.get('name', '?')
    what = 'layer %s (%s)' % (name, class_name)
    if class_name == 'Lambda':
        raise GraftError('%s holds Python code; tfgraft does not run code from model files' % what)
    if class_name not in LAYER_KEYS:
        raise GraftError('%s is a custom or unsupported layer class; tfgraft rebuilds only '
                         'built-in Keras layers (%s)' % (what, ', '.join(sorted(LAYER_KEYS))))
    if config.get('data_format', 'channels_last') != 'channels_last':
        raise GraftError('%s is channels_first; only channels_last models are read' % what)
    kwargs = {key: _scalar_config(config[key], what + ' ' + key)
              for key in LAYER_KEYS[class_name] if key in config and config[key] is not None}
    if 'activation' in kwargs:
        _check_activation(kwargs['activation'], what)
    if class_name == 'BatchNormalization' and isinstance(kwargs.get('axis'), list):
        if len(kwargs['axis']) != 1:
            raise GraftError('%s normalises over axes %s; only one axis is read' % (what, kwargs['axis']))
        kwargs['axis'] = kwargs['axis'][0]
    for key in ('kernel_size', 'strides', 'dilation_rate', 'pool_size', 'target_shape'):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    if isinstance(kwargs.get('padding'), list):
        kwargs['padding'] = tuple(tuple(side) if isinstance(side, list) else side
                                  for side in kwargs['padding'])
    try:
        return getattr(keras.layers, class_name)(name=keras_name(name), **kwargs)
    except (TypeError, ValueError) as error:
        raise GraftError('cannot rebuild %s: %s' % (what, str(error).splitlines()[0])) from None
