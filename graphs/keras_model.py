"""A user's whole Keras model file -> its pretrained backbone as a frozen graph + card.

Reads a Keras 2 `.h5` from model.save (Teachable Machine exports included), a
Keras 3 `.keras` file, or a SavedModel folder (graphs/keras_savedmodel.py gives
its config and weights). Nothing from the file runs: its config JSON is read here,
every layer is rebuilt from the known classes of graphs/keras_layers.py (nested
Sequential / Functional models are flattened into one graph), and the weights
are copied in by layer name (h5py for .h5; for .keras, Keras's own loader with
safe_mode=True, only after the whole config passed the same check; for a
SavedModel, TensorFlow's checkpoint reader).

The backbone ends at the last global pooling layer before the first Dense or
Flatten (the user's head), or at the last 4-D output before it, average-pooled;
`layer` picks another cut. The preprocessing comes from the application the
layer names show (MobileNetV2: RGB to [-1, 1]; SqueezeNet, VGG, ResNet: Caffe
BGR minus means). The card lists the backbone's layers in Keras's own order
(`keras_layers`), so `--fine_tune_at K` can mean Keras layer K
(graphs/unfreeze.py `keras_numbered`).
"""
import dataclasses
import json
import os
import zipfile

from tfgraft.graphs import registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.keras_layers import (
    CONTAINERS, CONVOLUTIONS, GLOBAL_POOLS, HEAD_LAYERS, build_layer, keras_name)

# Layer names that tell which application a backbone is -> keras preprocess_input mode.
APPLICATION_SIGNATURES = (
    ('MobileNetV2', {'Conv1', 'expanded_conv_project', 'block_1_expand'}, 'tf'),
    ('MobileNet', {'conv1', 'conv_dw_1', 'conv_pw_1'}, 'tf'),
    ('InceptionV3', {'mixed0', 'mixed1'}, 'tf'),
    ('Xception', {'block1_conv1', 'block14_sepconv1'}, 'tf'),
    ('SqueezeNet', {'fire2/squeeze1x1', 'fire2/expand3x3'}, 'caffe'),
    ('ResNet50', {'conv1_conv', 'conv2_block1_1_conv'}, 'caffe'),
    ('VGG16', {'block1_conv1', 'block5_conv3'}, 'caffe'),
)


@dataclasses.dataclass
class Leaf:
    """One layer of the flattened model."""
    name: str                 # as in the file
    class_name: str
    container: tuple          # names of the models holding it, outermost first
    keras_index: int          # its index in its own container's `layers`
    layer: object = None      # the rebuilt Keras layer
    output: object = None     # its symbolic output


def _entry_name(entry):
    return entry.get('name') or entry.get('config', {}).get('name')


def _inbound(entry):
    """Names of the layers whose outputs feed this entry (Keras 2 and 3 spellings)."""
    nodes = entry.get('inbound_nodes') or []
    if len(nodes) > 1:
        raise GraftError('layer %s is applied %d times (a shared layer); tfgraft reads each layer '
                         'applied once' % (_entry_name(entry), len(nodes)))
    if not nodes:
        return []
    node = nodes[0]
    names = []

    def visit(item):
        if isinstance(item, dict):
            if item.get('class_name') == '__keras_tensor__':
                names.append(item['config']['keras_history'][0])
            else:
                for value in item.values():
                    visit(value)
        elif isinstance(item, list):
            if len(item) >= 3 and isinstance(item[0], str) and isinstance(item[1], int):
                names.append(item[0])       # Keras 2: [layer, node, tensor, kwargs]
            else:
                for value in item:
                    visit(value)
    visit(node['args'] if isinstance(node, dict) else node)
    return names


def _endpoints(config, key):
    value = config.get(key) or []
    if value and isinstance(value[0], str):
        value = [value]
    return [item[0] for item in value]


class _Flattener:
    """Rebuilds the file's (nested) model as one chain of Keras 3 layers."""

    def __init__(self):
        self.leaves = []
        self.by_name = {}
        self.input_shape = None

    def container(self, entry, inputs, path):
        class_name, config = entry['class_name'], entry['config']
        path = path + (config.get('name', class_name),)
        layers = config.get('layers') or []
        if class_name == 'Sequential':
            index = 0
            outputs = inputs
            for layer in layers:
                if layer['class_name'] == 'InputLayer':
                    outputs = self.input_layer(layer, outputs, path, None)
                    continue
                outputs = self.apply(layer, [outputs], path, index)
                index += 1
            return outputs
        outputs = {}
        input_names = _endpoints(config, 'input_layers')
        if len(input_names) != 1 or len(_endpoints(config, 'output_layers')) != 1:
            raise GraftError('model %s has %d inputs and %d outputs; tfgraft reads models with one '
                             'image input and one output' % (path[-1], len(input_names),
                                                             len(_endpoints(config, 'output_layers'))))
        for index, layer in enumerate(layers):
            name = _entry_name(layer)
            if layer['class_name'] == 'InputLayer':
                outputs[name] = self.input_layer(layer, inputs, path, index)
                continue
            sources = _inbound(layer)
            missing = [source for source in sources if source not in outputs]
            if missing or not sources:
                raise GraftError('layer %s of model %s is fed by %s, not yet defined'
                                 % (name, path[-1], ', '.join(missing) or 'nothing'))
            outputs[name] = self.apply(layer, [outputs[source] for source in sources], path, index)
        return outputs[_endpoints(config, 'output_layers')[0]]

    def input_layer(self, entry, inputs, path, index):
        config = entry['config']
        shape = config.get('batch_input_shape') or config.get('batch_shape')
        if self.input_shape is None:
            self.input_shape = shape
        if index is not None:
            self.leaves.append(Leaf(_entry_name(entry), 'InputLayer', path, index))
        return inputs

    def apply(self, entry, inputs, path, index):
        class_name = entry['class_name']
        if class_name in CONTAINERS:
            if len(inputs) != 1:
                raise GraftError('model %s takes %d inputs' % (_entry_name(entry), len(inputs)))
            first = len(self.leaves)
            output = self.container(entry, inputs[0], path)
            if first == len(self.leaves):
                raise GraftError('model %s holds no layers' % _entry_name(entry))
            return output
        name = _entry_name(entry)
        if name in self.by_name or keras_name(name) in {keras_name(n) for n in self.by_name}:
            raise GraftError('two layers are named %s; tfgraft matches weights by layer name' % name)
        layer = build_layer(class_name, entry['config'])
        if inputs[0] is None:
            raise GraftError('the model does not start with an input of known shape')
        try:
            output = layer(inputs if len(inputs) > 1 else inputs[0])
        except (ValueError, TypeError) as error:
            raise GraftError('cannot rebuild layer %s: %s' % (name, str(error).splitlines()[0])) from None
        leaf = Leaf(name, class_name, path, index, layer, output)
        self.leaves.append(leaf)
        self.by_name[name] = leaf
        return output


def read_model(path):
    """(model config dict, kind, weights by layer or None) of a Keras 2 .h5 full model, a Keras 3
    .keras file or a SavedModel folder (whose weights come with it: graphs/keras_savedmodel.py)."""
    from tfgraft.graphs.keras_savedmodel import is_saved_model, read_saved_model_folder
    if is_saved_model(path):
        config, weights = read_saved_model_folder(path)
        return config, 'savedmodel', weights
    return read_model_config(path) + (None,)


def read_model_config(path):
    """(model config dict, kind) of a Keras 2 .h5 full model or a Keras 3 .keras file."""
    if os.path.isdir(path):
        raise GraftError('%s is a folder without saved_model.pb; tfgraft reads Keras model files '
                         '(.h5, .keras) and SavedModel folders' % path)
    if not os.path.isfile(path):
        raise GraftError('Keras model file not found: %s' % path)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read('config.json')), 'keras'
        except (KeyError, ValueError, zipfile.BadZipFile) as error:
            raise GraftError('%s is not a Keras 3 .keras file: %s' % (path, error)) from None
    import h5py
    try:
        handle = h5py.File(path, 'r')
    except OSError:
        raise GraftError('%s is neither a Keras .h5 nor a .keras file' % path) from None
    with handle:
        text = handle.attrs.get('model_config')
        if text is None:
            raise GraftError('%s holds weights only, no model config; give a file from '
                             "model.save('model.h5'), or --application with --weights" % path)
        try:
            return json.loads(text.decode('utf-8') if isinstance(text, bytes) else text), 'h5'
        except ValueError as error:
            raise GraftError('%s: its model_config is not JSON: %s' % (path, error)) from None


def h5_layer_weights(path, leaf_names=()):
    """{layer name: [(weight name, array), ...]} of a Keras 2 .h5 (full model or weights only).

    A nested model's group holds its layers' weights as 'Conv1/kernel:0'; a layer's
    own group may name them anything (keras-squeezenet: 'uniform1', 'conv1_b').
    """
    import h5py
    import numpy as np

    def text(value):
        return value.decode('utf-8') if isinstance(value, bytes) else str(value)
    weights = {}
    try:
        with h5py.File(path, 'r') as handle:
            group = handle['model_weights'] if 'model_weights' in handle else handle
            for top in group.attrs.get('layer_names', []):
                top_group = group[text(top)]
                for weight_name in top_group.attrs.get('weight_names', []):
                    weight_name = text(weight_name)
                    prefix = weight_name.rsplit('/', 1)[0] if '/' in weight_name else None
                    owner = prefix if prefix in leaf_names else text(top)
                    weights.setdefault(owner, []).append(
                        (weight_name.rsplit('/', 1)[-1].split(':')[0],
                         np.asarray(top_group[weight_name][()], np.float32)))
    except (KeyError, ValueError, TypeError) as error:
        raise GraftError('%s: its weights do not follow the Keras .h5 layout: %s'
                         % (path, str(error).splitlines()[0])) from None
    return weights


def check_keras3_config(path, config):
    """Refuse a .keras config naming anything outside Keras itself before Keras reads it."""
    def visit(item):
        if isinstance(item, dict):
            module, registered = item.get('module'), item.get('registered_name')
            if 'class_name' in item and item['class_name'] in ('Lambda', '__lambda__', 'function'):
                raise GraftError('%s holds Python code (%s); tfgraft does not run code from model '
                                 'files' % (path, item['class_name']))
            if isinstance(module, str) and module != 'keras' and not module.startswith('keras.'):
                raise GraftError('%s names a class outside Keras (%s.%s); custom objects are refused'
                                 % (path, module, item.get('class_name')))
            if registered not in (None, item.get('class_name')):
                raise GraftError('%s names a registered custom object (%s); custom objects are '
                                 'refused' % (path, registered))
            for value in item.values():
                visit(value)
        elif isinstance(item, list):
            for value in item:
                visit(value)
    visit(config)


def keras_file_weights(path):
    """{layer name: [(weight name, array), ...]} of a .keras file, loaded with safe_mode."""
    import keras
    check_keras3_config(path, read_model_config(path)[0])
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise GraftError('Keras cannot load %s: %s' % (path, str(error).splitlines()[0])) from None
    weights = {}

    def visit(layer):
        inner = getattr(layer, 'layers', None)
        if inner is not None and type(layer).__name__ in CONTAINERS:
            for child in inner:
                visit(child)
        elif layer.weights:
            weights[layer.name] = [(v.name, v.numpy()) for v in layer.weights]
    visit(model)
    return weights


def _copy_weights(leaf, found):
    """Set the rebuilt layer's variables from the file's arrays (by name, else by order)."""
    import numpy as np
    targets = leaf.layer.weights
    if not targets:
        return
    if found is None:
        raise GraftError('the file holds no weights for layer %s' % leaf.name)
    aliases = {'depthwise_kernel': 'kernel'}
    by_name = {aliases.get(name, name): array for name, array in found}
    names = [v.name for v in targets]
    if len(by_name) == len(found) and set(names) == set(by_name) and len(found) == len(targets):
        arrays = [by_name[name] for name in names]
    elif len(found) == len(targets):
        arrays = [array for _, array in found]
    else:
        raise GraftError('layer %s holds %d arrays in the file; the rebuilt layer has %d (%s)'
                         % (leaf.name, len(found), len(targets), ', '.join(names)))
    for variable, array in zip(targets, arrays):
        if tuple(variable.shape) != tuple(np.shape(array)):
            raise GraftError('layer %s %s: the file holds shape %s, the model config says %s'
                             % (leaf.name, variable.name, list(np.shape(array)), list(variable.shape)))
        variable.assign(array)


def application_of(names):
    """(application, preprocess_input mode) whose layer names are all among `names`, or Nones."""
    for application, signature, mode in APPLICATION_SIGNATURES:
        if signature <= names:
            return application, mode
    return None, None


def _cut(leaves, layer_name):
    """Index in `leaves` of the backbone's last layer."""
    built = [i for i, leaf in enumerate(leaves) if leaf.layer is not None]
    if layer_name:
        for i in built:
            if layer_name in (leaves[i].name, keras_name(leaves[i].name)):
                return i
        raise GraftError('the model has no layer %r; its layers: %s ... %s'
                         % (layer_name, ', '.join(leaves[i].name for i in built[:3]), leaves[built[-1]].name))
    head = next((i for i in built if leaves[i].class_name in HEAD_LAYERS), len(leaves))
    before = [i for i in built if i < head]
    pools = [i for i in before if leaves[i].class_name in GLOBAL_POOLS]
    if pools:
        return pools[-1]
    spatial = [i for i in before if len(leaves[i].output.shape) == 4]
    if not spatial:
        raise GraftError('no recognisable backbone: no image layers before the head')
    return spatial[-1]


def _numbering(leaves, cut):
    """Names of the backbone's layers in Keras's own order (index = Keras layer index)."""
    convs = [leaf for leaf in leaves[:cut + 1] if leaf.class_name in CONVOLUTIONS]
    containers = {leaf.container for leaf in convs}
    if len(containers) == 1:
        home = containers.pop()
        own = sorted((leaf for leaf in leaves if leaf.container == home), key=lambda l: l.keras_index)
        if [leaf.keras_index for leaf in own] == list(range(len(own))):
            return tuple(keras_name(leaf.name) for leaf in own)
    return tuple(keras_name(leaf.name) for leaf in leaves)


def build_backbone(path, layer=None, input_size=None, preprocessing=None):
    """(Keras model images -> bottleneck, card fields, weights check) for a user's model file."""
    import keras
    config, kind, saved_weights = read_model(path)
    if config.get('class_name') not in CONTAINERS:
        raise GraftError('%s holds a %s, not a Keras model' % (path, config.get('class_name')))
    flattener = _Flattener()
    shape = _declared_input_shape(config)
    if not shape or len(shape) != 4 or shape[-1] != 3:
        raise GraftError('%s: the model input is %s, not RGB images [N, H, W, 3]' % (path, shape))
    height, width = shape[1], shape[2]
    if input_size:
        if height not in (None, input_size) or width not in (None, input_size):
            raise GraftError('%s declares input %dx%d; --input_size %d disagrees'
                             % (path, height, width, input_size))
        height = width = input_size
    if not height or not width:
        raise GraftError('%s declares no input size; give --input_size' % path)
    keras.backend.clear_session()
    images = keras.Input((height, width, 3), name='images')
    flattener.container(config, images, ())
    leaves = flattener.leaves
    cut = _cut(leaves, layer)
    if not any(leaf.class_name in CONVOLUTIONS for leaf in leaves[:cut + 1]):
        raise GraftError('no recognisable backbone in %s: no convolution before layer %s'
                         % (path, leaves[cut].name))
    output = leaves[cut].output
    if len(output.shape) == 4:
        output = keras.layers.GlobalAveragePooling2D(name='tfgraft_pool')(output)
    elif len(output.shape) != 2:
        raise GraftError('layer %s gives shape %s; a bottleneck is 4-D (pooled) or 2-D'
                         % (leaves[cut].name, list(output.shape)))
    model = keras.Model(images, output)
    if kind == 'h5':
        weights = h5_layer_weights(path, {leaf.name for leaf in leaves})
    else:
        weights = saved_weights if kind == 'savedmodel' else keras_file_weights(path)
    used = {layer.name for layer in model.layers}
    for leaf in leaves[:cut + 1]:
        if leaf.layer is not None and keras_name(leaf.name) in used:
            _copy_weights(leaf, weights.get(leaf.name))
    names = {leaf.name for leaf in leaves[:cut + 1]}
    application, mode = application_of(names)
    if preprocessing:
        mode = preprocessing
    if mode is None:
        raise GraftError('%s: the backbone is no known application (%s), so its preprocessing is '
                         'unknown; give --preprocessing tf (RGB to [-1, 1]) or caffe (BGR minus means)'
                         % (path, ', '.join(a for a, _, _ in APPLICATION_SIGNATURES)))
    from tfgraft.graphs.keras_convert import BOTTLENECK_NAME, INPUT_NAME, PREPROCESSING
    card = registry.GraphCard(
        name='keras_%s' % (application or 'model').lower(), input_tensor=INPUT_NAME + ':0',
        input_kind='image', input_size=(height, width), bottleneck_tensor=BOTTLENECK_NAME + ':0',
        bottleneck_size=int(model.output_shape[-1]), keras_layers=_numbering(leaves, cut),
        **PREPROCESSING[mode])
    return model, card, leaves[cut].name


def _declared_input_shape(config):
    """The first InputLayer's batch shape anywhere in the (nested) config."""
    for layer in config.get('config', {}).get('layers') or []:
        if layer['class_name'] == 'InputLayer':
            inner = layer['config']
            return inner.get('batch_input_shape') or inner.get('batch_shape')
        if layer['class_name'] in CONTAINERS:
            found = _declared_input_shape(layer)
            if found:
                return found
        inner = layer.get('config', {}).get('batch_input_shape')
        if inner:
            return inner
    return None


def keras_model_graph(path, layer=None, input_size=None, preprocessing=None):
    """(frozen GraphDef of the model's backbone, its card, the cut layer), made in memory."""
    from tfgraft.graphs.keras_convert import freeze_model
    model, card, cut = build_backbone(path, layer, input_size, preprocessing)
    return freeze_model(model, card), card, cut


def is_keras_model_path(path):
    """A Keras model file (.h5, .hdf5, .keras) or a SavedModel folder, by its name or contents."""
    from tfgraft.graphs.keras_savedmodel import is_saved_model
    return is_saved_model(path) or (os.path.isfile(path) and
                                    path.lower().endswith(('.h5', '.hdf5', '.keras')))


def convert_keras_model(path, output_pb, layer=None, input_size=None, preprocessing=None):
    """Write `output_pb` (frozen graph of the model's backbone) and its card; return (card, cut layer)."""
    from tfgraft.graphs.frozen import write_frozen_graph
    graph_def, card, cut = keras_model_graph(path, layer, input_size, preprocessing)
    card = dataclasses.replace(card, name=os.path.splitext(os.path.basename(output_pb))[0])
    write_frozen_graph(graph_def, card, output_pb, '%s conversion' % path)
    return card, cut
