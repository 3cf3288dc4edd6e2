"""A SavedModel folder read as a Keras model file: its layer config and its weights.

Folders from Keras 2 `model.save('dir')`, Keras 3 `model.export('dir')` or
`tf.saved_model.save`. Nothing from the folder runs:
  ops      the serving signature and every function it calls may use only the
           allowlist of graphs/safety.py, plus reading its variables and calling
           its own functions; anything else refuses the folder
  weights  each variable of the saved object graph is named `layer/weight`; its
           value is read from variables/ by its checkpoint key (TensorFlow's
           checkpoint reader, no restore op of the folder)
  config   Keras 2 keeps the model config in keras_metadata.pb; other folders
           keep none, so their layers must be a known application
           (keras_convert.APPLICATIONS), recognised by the weights' layer names
           and rebuilt from keras.applications at the width the weights have.
The config then goes through graphs/keras_model.py like a .h5 file's.
"""
import json
import os

from tfgraft.graphs.errors import GraftError

# Besides the allowlist: what a serving function does to read its variables and call itself.
SIGNATURE_OPS = frozenset(('VarHandleOp', 'ReadVariableOp', 'StatefulPartitionedCall',
                           'PartitionedCall'))
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def is_saved_model(path):
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, 'saved_model.pb'))


def read_saved_model(path):
    """The folder's MetaGraphDef (the one it serves from), parsed, nothing run."""
    from google.protobuf import message
    from tensorflow.core.protobuf import saved_model_pb2
    saved = saved_model_pb2.SavedModel()
    try:
        with open(os.path.join(path, 'saved_model.pb'), 'rb') as handle:
            saved.ParseFromString(handle.read())
    except (message.DecodeError, ValueError, RuntimeError) as error:
        raise GraftError('%s/saved_model.pb is not a SavedModel: %s' % (path, error)) from None
    if len(saved.meta_graphs) != 1:
        raise GraftError('%s holds %d meta graphs; tfgraft reads a SavedModel with one'
                         % (path, len(saved.meta_graphs)))
    return saved.meta_graphs[0]


def serving_signature(meta_graph, path):
    signatures = {name: value for name, value in meta_graph.signature_def.items()
                  if not name.startswith('__')}
    signature = signatures.get('serving_default') or signatures.get('serve')
    if signature is None:
        raise GraftError('%s has no serving signature (it has %s)'
                         % (path, ', '.join(sorted(signatures)) or 'none'))
    if len(signature.inputs) != 1:
        raise GraftError('%s: its serving signature takes %d inputs; tfgraft reads models with one '
                         'image input' % (path, len(signature.inputs)))
    return signature


def _called_functions(node):
    for value in node.attr.values():
        if value.HasField('func'):
            yield value.func.name
        for function in value.list.func:
            yield function.name


def check_signature_ops(meta_graph, signature, path):
    """Refuse the folder when the serving signature, or a function it calls, uses an op
    outside the allowlist (or calls a function the folder does not hold)."""
    from tfgraft.graphs.safety import ALLOWED_OPS
    allowed = ALLOWED_OPS | SIGNATURE_OPS
    nodes = {node.name: node for node in meta_graph.graph_def.node}
    library = {function.signature.name: function for function in meta_graph.graph_def.library.function}
    refused, seen_nodes, seen_functions = {}, set(), set()
    stack = [info.name.split(':')[0] for info in signature.outputs.values()]
    calls = []
    while stack:
        name = stack.pop()
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        if node.op not in allowed:
            refused.setdefault(node.op, name)
        calls.extend(_called_functions(node))
        stack.extend(item.lstrip('^').split(':')[0] for item in node.input)
    while calls:
        name = calls.pop()
        if name in seen_functions:
            continue
        if name not in library:
            raise GraftError('%s: its serving signature calls %s, a function it does not hold'
                             % (path, name))
        seen_functions.add(name)
        for node in library[name].node_def:
            if node.op not in allowed and node.op not in library:
                refused.setdefault(node.op, '%s in %s' % (node.name, name))
            if node.op in library:
                calls.append(node.op)
            calls.extend(_called_functions(node))
    if refused:
        raise GraftError('%s refused: its serving signature uses ops outside the allowlist of pure '
                         'math and image ops: %s' % (path, '; '.join(
                             '%s (%s)' % item for item in sorted(refused.items()))))


def saved_model_weights(path, meta_graph):
    """{layer name: [(weight name, array), ...]} from the variables the object graph names."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2
    try:
        reader = tf.train.load_checkpoint(os.path.join(path, 'variables', 'variables'))
        checkpoint_graph = trackable_object_graph_pb2.TrackableObjectGraph()
        checkpoint_graph.ParseFromString(reader.get_tensor('_CHECKPOINTABLE_OBJECT_GRAPH'))
    except (tf.errors.OpError, ValueError) as error:
        raise GraftError('%s: cannot read its variables/: %s' % (path, str(error).splitlines()[0])) from None
    saved_nodes = meta_graph.object_graph_def.nodes
    if len(checkpoint_graph.nodes) != len(saved_nodes):
        raise GraftError('%s: its variables/ do not belong to its saved_model.pb' % path)
    weights, values = {}, {}
    for saved, checkpointed in zip(saved_nodes, checkpoint_graph.nodes):
        if saved.WhichOneof('kind') != 'variable' or '/' not in saved.variable.name:
            continue
        keys = [a.checkpoint_key for a in checkpointed.attributes if a.name == 'VARIABLE_VALUE']
        if len(keys) != 1:
            continue
        name = saved.variable.name.split(':')[0]
        array = np.asarray(reader.get_tensor(keys[0]), np.float32)
        if name in values:          # one variable tracked twice (Keras 3 exports)
            if values[name].shape != array.shape or not np.array_equal(values[name], array):
                raise GraftError('%s holds two different variables named %s; tfgraft matches '
                                 'weights by layer name' % (path, name))
            continue
        values[name] = array
        layer, weight = name.rsplit('/', 1)
        weights.setdefault(layer, []).append((weight, array))
    if not weights:
        raise GraftError('%s holds no named variables (layer/weight); it is not a Keras model' % path)
    return weights


def _untuple(item):
    """Keras 2 metadata spells tuples {'class_name': '__tuple__', 'items': [...]}: plain lists."""
    if isinstance(item, dict):
        if item.get('class_name') == '__tuple__' and 'items' in item:
            return [_untuple(value) for value in item['items']]
        return {key: _untuple(value) for key, value in item.items()}
    if isinstance(item, list):
        return [_untuple(value) for value in item]
    return item


def keras2_config(path):
    """The model config Keras 2 wrote into keras_metadata.pb, or None without that file."""
    metadata_path = os.path.join(path, 'keras_metadata.pb')
    if not os.path.isfile(metadata_path):
        return None
    from google.protobuf import message
    try:
        from tensorflow.python.keras.protobuf import saved_metadata_pb2
    except ImportError:     # TensorFlow without its legacy Keras copy
        try:
            from tf_keras.protobuf import saved_metadata_pb2
        except ImportError:
            raise GraftError('%s is a Keras 2 SavedModel; reading its keras_metadata.pb needs '
                             'tf_keras (pip install tf_keras)' % path) from None
    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        with open(metadata_path, 'rb') as handle:
            metadata.ParseFromString(handle.read())
        root = next(node for node in metadata.nodes if node.node_path == 'root')
        found = json.loads(root.metadata)
    except (message.DecodeError, StopIteration, ValueError) as error:
        raise GraftError('%s is not Keras metadata: %s' % (metadata_path, error or 'no root')) from None
    config = found.get('model_config') or (
        {'class_name': found['class_name'], 'config': found['config']} if 'config' in found else None)
    if not config:
        raise GraftError('%s: its model (%s) saved no config; tfgraft rebuilds models from their '
                         'config' % (path, found.get('class_name')))
    return _untuple(config)


def _input_shape(signature):
    info = next(iter(signature.inputs.values()))
    shape = [dim.size if dim.size >= 0 else None for dim in info.tensor_shape.dim]
    if len(shape) != 4 or shape[-1] != 3:
        raise GraftError('its serving signature takes %s, not RGB images [N, H, W, 3]' % shape)
    return tuple(shape[1:])


def application_config(path, signature, weights):
    """The config of the known application whose layers the weights name (no config saved)."""
    import keras
    from tfgraft.graphs.keras_convert import APPLICATIONS
    from tfgraft.graphs.keras_model import application_of
    application, _ = application_of(set(weights))
    if application not in APPLICATIONS:
        raise GraftError('%s keeps no Keras config (no keras_metadata.pb) and its layers are no known '
                         'application (%s): no recognisable backbone; save the model with '
                         "model.save('model.keras') instead" % (path, ', '.join(APPLICATIONS)))
    try:
        input_shape = _input_shape(signature)
    except GraftError as error:
        raise GraftError('%s: %s' % (path, error)) from None
    for alpha in MOBILENET_V2_ALPHAS if application == 'MobileNetV2' else (None,):
        options = {} if alpha is None else {'alpha': alpha}
        keras.backend.clear_session()
        try:
            model = getattr(keras.applications, application)(
                include_top=False, weights=None, input_shape=input_shape, **options)
        except ValueError as error:
            raise GraftError('cannot build %s for %s: %s'
                             % (application, path, str(error).splitlines()[0])) from None
        if _shapes_fit(model, weights):
            # Through JSON, as a .keras file's config.json is (tuples become lists).
            return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    raise GraftError('%s: its %s layers do not have the shapes of keras.applications.%s at any '
                     'width' % (path, application, application))


def _shapes_fit(model, weights):
    for layer in model.layers:
        found = weights.get(layer.name)
        if layer.weights and (found is None or sorted(tuple(a.shape) for _, a in found)
                              != sorted(tuple(v.shape) for v in layer.weights)):
            return False
    return True


def read_saved_model_folder(path):
    """(model config, weights by layer) of a SavedModel folder, its ops checked first."""
    meta_graph = read_saved_model(path)
    signature = serving_signature(meta_graph, path)
    check_signature_ops(meta_graph, signature, path)
    weights = saved_model_weights(path, meta_graph)
    config = keras2_config(path) or application_config(path, signature, weights)
    return config, weights
