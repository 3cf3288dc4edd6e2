"""Inference-time rewriting of a frozen GraphDef, done once when it is loaded.

What serving stacks do before they run a graph, on the part between the input
and the bottleneck:
  - Identity chains are dropped (consumers read what the Identity read);
  - math on constants only (unfolded batch norm's Rsqrt/Mul/Add/Sub,
    Dequantize of 8-bit weights) is computed once, by TensorFlow's own kernels,
    and stored as float constants;
  - a convolution's per-channel Mul/Add/Sub/BiasAdd of constants, and an
    inference FusedBatchNorm after it, are folded into its weights and one
    BiasAdd, the pattern Grappler's remapper fuses with a following Relu6.
The vectors differ from the file's graph by float rounding only (tests check
1e-4 on the real graphs). REWRITE_VERSION is part of the bottleneck cache key:
change it whenever the rewriting changes what a graph computes.
"""
import numpy as np
import tensorflow as tf

from tfgraft.graphs.shapes import needed_nodes, node_name

tf1 = tf.compat.v1

REWRITE_VERSION = 1

# Ops computed once when all their inputs are constants (pure and cheap to store:
# nothing here makes a constant much bigger than its inputs).
FOLDABLE_OPS = frozenset('''
Add AddV2 Dequantize Div Maximum Minimum Mul Neg RealDiv Reciprocal Rsqrt Sqrt Square Sub
'''.split())
CONVOLUTIONS = ('Conv2D', 'DepthwiseConv2dNative')
BATCH_NORMS = ('FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3')


def _is_control(reference):
    return reference.startswith('^')


def _port(reference):
    parts = reference.split(':')
    return int(parts[1]) if len(parts) > 1 else 0


def optimize_for_inference(graph_def, input_node, output_node):
    """A rewritten copy of `graph_def` computing `output_node` from `input_node`."""
    # The file's constants are never changed, so only the other nodes are copied.
    nodes = [node if node.op == 'Const' else _copy(node) for node in graph_def.node]
    protected = {input_node, output_node}
    _drop_identities(nodes, protected)
    _fold_constants(nodes, protected)
    _fold_into_convolutions(nodes, protected)
    return _reachable(graph_def, nodes, output_node, input_node)


def _copy(node):
    copy = tf1.NodeDef()
    copy.CopyFrom(node)
    return copy


def _constant(name, array):
    """A Const node holding a float32 array (its bytes written directly: make_tensor_proto
    took 2 ms a constant)."""
    array = np.ascontiguousarray(array, np.float32)
    node = tf1.NodeDef(name=name, op='Const')
    node.attr['dtype'].type = tf.float32.as_datatype_enum
    tensor = node.attr['value'].tensor
    tensor.dtype = tf.float32.as_datatype_enum
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = array.tobytes()
    return node


def _value(node):
    tensor = node.attr['value'].tensor
    if tensor.tensor_content and tensor.dtype == tf.float32.as_datatype_enum:
        shape = [dim.size for dim in tensor.tensor_shape.dim]
        return np.frombuffer(tensor.tensor_content, np.float32).reshape(shape)
    return tf.make_ndarray(tensor)


def _drop_identities(graph, protected):
    """Consumers of an Identity (or a chain of them) read its source instead."""
    nodes = {node.name: node for node in graph}

    def source(reference):
        seen = set()
        while True:
            node = nodes.get(node_name(reference))
            if node is None or node.op != 'Identity' or node.name in protected or \
                    node.name in seen or any(_is_control(i) for i in node.input):
                return reference
            seen.add(node.name)
            reference = node.input[0]

    for node in graph:
        if node.op == 'Const':
            continue
        for i, reference in enumerate(node.input):
            if not _is_control(reference):
                node.input[i] = source(reference)


def _fold_constants(graph, protected):
    """Replace every foldable node whose inputs are all constant by its value.

    Float math is done in numpy in float32, as TensorFlow's kernels do it (to a
    rounding); Dequantize runs TensorFlow's own kernel.
    """
    nodes = {node.name: node for node in graph}
    values = _dequantized(nodes)

    def value_of(reference):
        if _port(reference) != 0:
            return None
        name = node_name(reference)
        if name in values:
            return values[name]
        node = nodes.get(name)
        values[name] = None     # cycles and unknown ops stay unfolded
        if node is None or name in protected:
            return None
        if node.op == 'Const':
            values[name] = _value(node)
        elif node.op in FOLDABLE_OPS and node.input and \
                not any(_is_control(i) for i in node.input):
            inputs = [value_of(i) for i in node.input]
            if all(v is not None for v in inputs):
                values[name] = _compute(node, inputs)
        return values[name]

    replaced = {}
    for node in list(graph):
        if node.op == 'Const' or (node.op in FOLDABLE_OPS and value_of(node.name) is not None):
            continue
        for i, reference in enumerate(node.input):
            if _is_control(reference):
                continue
            source = nodes.get(node_name(reference))
            if source is None or source.op not in FOLDABLE_OPS:
                continue
            value = value_of(reference)
            if value is None:
                continue
            name = node_name(reference)
            if name not in replaced:
                replaced[name] = name + '/folded'
                graph.append(_constant(replaced[name], value))
            node.input[i] = replaced[name]


def _dequantized(nodes):
    """{name: float32 value} of every Dequantize of constants, from TensorFlow's own
    kernel in one session run (a numpy copy of the kernel differed by an ulp in a few
    weights, and that moved MobileNet 0.75's vectors by 3e-4)."""
    wanted = [node for node in nodes.values() if node.op == 'Dequantize' and
              node.attr['dtype'].type in (0, tf.float32.as_datatype_enum) and
              all(_port(i) == 0 and not _is_control(i) and
                  getattr(nodes.get(node_name(i)), 'op', '') == 'Const' for i in node.input)]
    if not wanted:
        return {}
    part = tf1.GraphDef()
    names = set()
    for node in wanted:
        names.add(node.name)
        names.update(node_name(i) for i in node.input)
    part.node.extend(nodes[name] for name in sorted(names))
    with tf.Graph().as_default() as graph:   # its own graph: callers may be building one
        outputs = tf.import_graph_def(part, return_elements=[n.name + ':0' for n in wanted],
                                      name='')
    with tf1.Session(graph=graph, config=tf1.ConfigProto(
            graph_options=tf1.GraphOptions(rewrite_options=_no_grappler()))) as session:
        return dict(zip([n.name for n in wanted], session.run(outputs)))


def _no_grappler():
    from tensorflow.core.protobuf import rewriter_config_pb2
    return rewriter_config_pb2.RewriterConfig(
        disable_meta_optimizer=True, disable_tfg_optimizer=True)


def _compute(node, inputs):
    """The value of a FOLDABLE_OPS node on constant inputs, or None if not handled."""
    if node.op == 'Dequantize':
        return None     # done beforehand, by _dequantized
    if any(v.dtype != np.float32 for v in inputs):
        return None
    unary = {'Rsqrt': lambda x: np.float32(1) / np.sqrt(x), 'Sqrt': np.sqrt, 'Neg': np.negative,
             'Square': np.square, 'Reciprocal': lambda x: np.float32(1) / x}
    binary = {'Add': np.add, 'AddV2': np.add, 'Sub': np.subtract, 'Mul': np.multiply,
              'RealDiv': np.divide, 'Div': np.divide, 'Maximum': np.maximum,
              'Minimum': np.minimum}
    with np.errstate(all='ignore'):
        if node.op in unary and len(inputs) == 1:
            return np.asarray(unary[node.op](inputs[0]), np.float32)
        if node.op in binary and len(inputs) == 2:
            return np.asarray(binary[node.op](inputs[0], inputs[1]), np.float32)
    return None


def _consumers(graph, protected):
    counts = {}
    for node in graph:
        for reference in node.input:
            counts.setdefault(node_name(reference), []).append((node, reference))
    for name in protected:
        counts.setdefault(name, []).append((None, name))
    return counts


def _per_channel(value, channels):
    """A constant's value as a vector over the last axis, or None if it is not per channel."""
    value = np.asarray(value)
    if value.dtype != np.float32:
        return None
    if value.size == 1:
        return np.full([channels], float(value.reshape(())), np.float64)
    if value.shape[-1] == channels and value.size == channels:
        return value.reshape([channels]).astype(np.float64)
    return None


def _fold_into_convolutions(graph, protected):
    """conv -> per-channel steps on constants -> last becomes conv' -> BiasAdd named last,
    both changed in place (they are copies); the steps between are left unreachable."""
    nodes = {node.name: node for node in graph}
    consumers = _consumers(graph, protected)
    for conv in list(graph):
        if conv.op not in CONVOLUTIONS or conv.attr['data_format'].s not in (b'', b'NHWC'):
            continue
        if conv.attr['T'].type != tf.float32.as_datatype_enum:
            continue
        weights_node = nodes.get(node_name(conv.input[1]))
        if weights_node is None or weights_node.op != 'Const' or _port(conv.input[1]) != 0:
            continue
        weights = _value(weights_node)
        channels = weights.shape[2] * weights.shape[3] if conv.op == 'DepthwiseConv2dNative' \
            else weights.shape[3]
        scale, bias = np.ones([channels]), np.zeros([channels])
        chain, last = [], conv
        while True:
            users = consumers.get(last.name, [])
            if len(users) != 1 or users[0][0] is None:
                break
            user, reference = users[0]
            if _is_control(reference) or _port(reference) != 0:
                break
            step = _fold_step(user, last.name, nodes, channels)
            if step is None:
                break
            if not _only_first_output_read(user, consumers):
                break
            step_scale, step_bias = step
            scale, bias = scale * step_scale, bias * step_scale + step_bias
            chain.append(user)
            last = user
        if not chain:
            continue
        if conv.op == 'DepthwiseConv2dNative':
            factor = scale.reshape(weights.shape[2], weights.shape[3])
        else:
            factor = scale
        folded_weights = (weights.astype(np.float64) * factor).astype(np.float32)
        conv.input[1] = conv.name + '/folded_weights'
        graph.append(_constant(conv.input[1], folded_weights))
        graph.append(_constant(last.name + '/folded_bias', bias))
        last.op = 'BiasAdd'
        del last.input[:]
        last.input.extend([conv.name, last.name + '/folded_bias'])
        last.attr.clear()
        last.attr['T'].type = tf.float32.as_datatype_enum
        last.attr['data_format'].s = b'NHWC'


def _only_first_output_read(node, consumers):
    return all(not _is_control(r) and _port(r) == 0 for _, r in consumers.get(node.name, [])
               if r is not None)


def _fold_step(node, from_name, nodes, channels):
    """(scale, bias) vectors with node(x) = x * scale + bias, x the output of from_name;
    None when node is not such a per-channel step on constants."""
    data = [i for i in node.input if not _is_control(i)]
    if len(data) != len(node.input):
        return None
    if node.op in BATCH_NORMS:
        if node.attr['is_training'].b or data[0] != from_name or \
                node.attr['data_format'].s not in (b'', b'NHWC'):
            return None
        values = []
        for reference in data[1:5]:
            source = nodes.get(node_name(reference))
            if source is None or source.op != 'Const' or _port(reference):
                return None
            values.append(_per_channel(_value(source), channels))
        if any(v is None for v in values):
            return None
        gamma, beta, mean, variance = values
        scale = gamma / np.sqrt(variance + node.attr['epsilon'].f)
        return scale, beta - mean * scale
    if node.op not in ('Mul', 'Add', 'AddV2', 'BiasAdd', 'Sub') or len(data) != 2:
        return None
    if node.attr['T'].type != tf.float32.as_datatype_enum:
        return None
    if node.op == 'BiasAdd' and node.attr['data_format'].s not in (b'', b'NHWC'):
        return None
    if node_name(data[0]) == from_name and _port(data[0]) == 0:
        other, first = data[1], True
    elif node_name(data[1]) == from_name and _port(data[1]) == 0 and node.op != 'BiasAdd':
        other, first = data[0], False
    else:
        return None
    source = nodes.get(node_name(other))
    if source is None or source.op != 'Const' or _port(other):
        return None
    value = _value(source)
    if value.ndim > 4 or any(d != 1 for d in value.shape[:-1]):
        return None     # would broadcast over more than the channels
    vector = _per_channel(value, channels)
    if vector is None:
        return None
    ones, zeros = np.ones([channels]), np.zeros([channels])
    if node.op == 'Mul':
        return vector, zeros
    if node.op == 'Sub':
        return (ones, -vector) if first else (-ones, vector)
    return ones, vector


def _reachable(graph_def, graph, output_node, input_node):
    """A GraphDef of the nodes of `graph` the output needs (graph_def gives versions and
    library)."""
    keep = needed_nodes(graph, output_node, input_node)
    pruned = tf1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.library.CopyFrom(graph_def.library)
    pruned.node.extend(node for node in graph if node.name in keep)
    return pruned
