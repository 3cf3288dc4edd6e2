"""Unfreeze a frozen GraphDef from a chosen layer, and fold it back after training.

A *layer* is one weighted op -- Conv2D, Conv3D, DepthwiseConv2dNative or MatMul
whose second input is constant -- together with the bias and batch norm that
follow it up to the next weighted op. Layers are numbered from 0 in
topological order from the input (GraphDef order breaks ties), counting only
those between the card's input and its bottleneck; a layer is named by the
name scope of its weights, e.g. `MobilenetV1/Conv2d_0`.

Every float Const feeding a layer gets a role, from its name or from what
the graph does with it:
  trainable: weights, bias, gamma (batch-norm scale), beta (offset), parameter
  fixed:     moving_mean, moving_variance, epsilon, constant (any scalar)
Batch norm is recognised both unfolded (Rsqrt(variance + eps) * gamma, as in
TF-slim graphs and Keras 3 conversions) and as FusedBatchNorm(V2/V3) inputs.
It stays in inference mode: moving statistics are never variables.

`unfreeze` imports the graph with the trainable Consts of layers K.. replaced
by tf.compat.v1 variables (scope `backbone_trainable/<const name>`) holding
their values, so nothing changes until training does; every op is the
graph's own. `fold_to_frozen` writes trained values back into the Consts:
the result is again one frozen GraphDef for plain TensorFlow.

8-bit graphs (official quantized MobileNets) hold weights as Dequantize of
quint8 Consts: each such Dequantize is first replaced by the float Const it
computes (same node name, TensorFlow's own Dequantize values), which then
trains like any weight; fold_to_frozen writes trained ones back as float Consts.
"""
import collections
import dataclasses
import heapq
import re

import numpy as np
import tensorflow as tf

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.shapes import flat_rows

tf1 = tf.compat.v1

TRAINABLE_SCOPE = 'backbone_trainable'
WEIGHTED_OPS = ('Conv2D', 'Conv3D', 'DepthwiseConv2dNative', 'MatMul')
FUSED_BATCH_NORM_OPS = ('FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3')
FUSED_BATCH_NORM_ROLES = (None, 'gamma', 'beta', 'moving_mean', 'moving_variance')
PASS_THROUGH_OPS = ('Identity', 'Reshape', 'Squeeze', 'ExpandDims', 'Cast')
TRAINABLE_ROLES = ('weights', 'bias', 'gamma', 'beta', 'parameter')
FIXED_ROLES = ('moving_mean', 'moving_variance', 'epsilon', 'constant')
FLOAT_TYPES = frozenset(t.as_datatype_enum for t in (tf.float16, tf.bfloat16, tf.float32, tf.float64))


@dataclasses.dataclass(frozen=True)
class Layer:
    index: int
    name: str       # name scope of the weights, e.g. MobilenetV1/Conv2d_0
    op: str         # the weighted op's type
    node: str       # the weighted op's node name
    params: tuple   # ((const name, role), ...) in graph order

    @property
    def trainable(self):
        return tuple(name for name, role in self.params if role in TRAINABLE_ROLES)

    @property
    def fixed(self):
        return tuple(name for name, role in self.params if role in FIXED_ROLES)

    def describe(self):
        """One line for a layer table: index, name, op, roles of its constants."""
        roles = [role for _, role in self.params]
        train = [r for r in roles if r in TRAINABLE_ROLES]
        fixed = [r for r in roles if r in FIXED_ROLES]
        return '%3d  %-44s %-22s train: %s%s' % (
            self.index, self.name, self.op, ', '.join(train),
            '; fixed: ' + ', '.join(fixed) if fixed else '')


def _node_name(tensor_name):
    return tensor_name.lstrip('^').split(':')[0]


def _data_inputs(node):
    return [_node_name(name) for name in node.input if not name.startswith('^')]


class _GraphIndex:
    """Nodes by name, their positions, and who consumes each node (data edges only)."""

    def __init__(self, graph_def):
        self.nodes = {node.name: node for node in graph_def.node}
        self.position = {node.name: i for i, node in enumerate(graph_def.node)}
        self.consumers = collections.defaultdict(list)
        for node in graph_def.node:
            for slot, name in enumerate(_data_inputs(node)):
                self.consumers[name].append((node.name, slot))

    def descendants(self, roots, inside=None):
        return self._walk(roots, lambda n: [c for c, _ in self.consumers[n]], inside)

    def ancestors(self, roots, inside=None):
        return self._walk(roots, lambda n: _data_inputs(self.nodes[n]), inside)

    def _walk(self, roots, step, inside):
        seen, stack = set(roots), list(roots)
        while stack:
            for name in step(stack.pop()):
                if name not in seen and name in self.nodes and (inside is None or inside(name)):
                    seen.add(name)
                    stack.append(name)
        return seen

    def uses(self, name):
        """(consumer, slot) pairs of a value, looking through Identity/Reshape/Cast..."""
        found = []
        for consumer, slot in self.consumers[name]:
            if self.nodes[consumer].op in PASS_THROUGH_OPS and slot == 0:
                found.extend(self.uses(consumer))
            else:
                found.append((consumer, slot))
        return found

    def source(self, name):
        """The node a value comes from, looking back through pass-through ops."""
        node = self.nodes[name]
        while node.op in PASS_THROUGH_OPS and node.input:
            node = self.nodes[_data_inputs(node)[0]]
        return node

    def topological(self, names):
        """`names` in topological order; GraphDef position breaks ties."""
        pending = {n: sum(1 for i in _data_inputs(self.nodes[n]) if i in names) for n in names}
        ready = [(self.position[n], n) for n, count in pending.items() if count == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, name = heapq.heappop(ready)
            order.append(name)
            for consumer, _ in self.consumers[name]:
                if consumer in pending:
                    pending[consumer] -= 1
                    if pending[consumer] == 0:
                        heapq.heappush(ready, (self.position[consumer], consumer))
        return order


def _dequantized_values(nodes, wanted):
    """{name: float array} each Dequantize of Consts in `wanted` computes, run in a graph
    of its own (the caller may be building another graph)."""
    ops = {}
    with tf.Graph().as_default():
        for node in wanted:
            inputs = [nodes.get(name) for name in _data_inputs(node)]
            if len(inputs) != 3 or any(i is None or i.op != 'Const' for i in inputs):
                continue
            values = [tf.make_ndarray(i.attr['value'].tensor) for i in inputs]
            options = {'mode': node.attr['mode'].s.decode() or 'MIN_COMBINED'}
            if 'axis' in node.attr:
                options['axis'] = node.attr['axis'].i
            if 'narrow_range' in node.attr:
                options['narrow_range'] = node.attr['narrow_range'].b
            ops[node.name] = tf.raw_ops.Dequantize(
                input=tf.constant(values[0], tf.as_dtype(inputs[0].attr['dtype'].type)),
                min_range=values[1], max_range=values[2], **options)
        if not ops:
            return {}
        with tf1.Session() as sess:
            return sess.run(ops)


def dequantized(graph_def, names=None):
    """A copy of `graph_def` with Dequantize-of-Consts nodes (all, or those in `names`) turned
    into float Consts of the same name; the graph itself when it has none."""
    nodes = {node.name: node for node in graph_def.node}
    wanted = [node for node in graph_def.node if node.op == 'Dequantize'
              and (names is None or node.name in names)]
    values = _dequantized_values(nodes, wanted) if wanted else {}
    if not values:
        return graph_def
    result = tf1.GraphDef()
    result.CopyFrom(graph_def)
    for node in result.node:
        if node.name in values:
            dtype = node.attr['dtype'].type or tf.float32.as_datatype_enum
            node.op = 'Const'
            del node.input[:]
            node.ClearField('attr')
            node.attr['dtype'].type = dtype
            node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(
                values[node.name].astype(tf.as_dtype(dtype).as_numpy_dtype)))
    # The quint8 Consts and ranges nothing reads any more go.
    orphans = {_node_name(i) for name in values for i in nodes[name].input}
    orphans -= {_node_name(i) for node in result.node for i in node.input}
    kept = [node for node in result.node if node.name not in orphans]
    del result.node[:]
    result.node.extend(kept)
    return result


def _rank(node):
    return len(node.attr['value'].tensor.tensor_shape.dim)


class _Roles:
    """What each constant is for, from its name first, then from the ops it feeds."""

    def __init__(self, index, data_path):
        self.index = index
        self.data_path = data_path
        outside = lambda name: name not in data_path  # noqa: E731
        roots = [n for n, node in index.nodes.items()
                 if node.op in ('Rsqrt', 'Sqrt', 'Reciprocal') and n not in data_path]
        self.variance_side = index.ancestors(roots, outside) - set(roots)
        self.normalizer = index.descendants(roots, outside)   # Rsqrt(var + eps) and what it scales

    def role(self, name):
        node = self.index.nodes[name]
        for fixed in ('moving_mean', 'moving_variance'):
            if name.endswith(fixed):
                return fixed
        uses = self.index.uses(name)
        for consumer, slot in uses:
            if self.index.nodes[consumer].op in FUSED_BATCH_NORM_OPS and 1 <= slot <= 4:
                return FUSED_BATCH_NORM_ROLES[slot]
        if name in self.variance_side:
            return 'moving_variance' if _rank(node) else 'epsilon'
        if not _rank(node):
            return 'constant'
        for consumer, slot in uses:
            role = self._role_at(consumer, slot)
            if role:
                return role
        return 'parameter'

    def _role_at(self, consumer, slot):
        node = self.index.nodes[consumer]
        if consumer in self.data_path:
            if node.op in WEIGHTED_OPS and slot == 1:
                return 'weights'
            if node.op in ('BiasAdd', 'Add', 'AddV2'):
                return 'bias'
            if node.op == 'Sub' and slot == 1:
                return 'moving_mean'       # batch norm written as (x - mean) * scale + beta
            return None
        inputs = _data_inputs(node)
        other = inputs[1 - slot] if len(inputs) == 2 else None
        if other not in self.normalizer:
            return None
        if node.op == 'Mul':
            # gamma scales the normalizer; mean * scale is then subtracted from beta.
            subtracted = any(self.index.nodes[c].op == 'Neg' or (self.index.nodes[c].op == 'Sub' and s == 1)
                             for c, s in self.index.uses(consumer))
            return 'moving_mean' if subtracted else 'gamma'
        if node.op == 'Sub' and slot == 0:
            return 'beta'
        return None


def _endpoints(index, card):
    """Input roots and the bottleneck node (None: every float Placeholder, whole graph)."""
    if card is not None:
        return [_node_name(card.batch_input_tensor)], _node_name(card.batch_bottleneck_tensor)
    roots = [n for n, node in index.nodes.items()
             if node.op == 'Placeholder' and node.attr['dtype'].type in FLOAT_TYPES]
    return roots, None


# Grappler's constant folding renames a folded node `<name>/_<n>__cf__<n>`.
_FOLDED_SUFFIX = re.compile(r'/_\d+__cf__\d+$')


def layer_scope(weights_name):
    """The layer's name from its weights' node: `MobilenetV1/Conv2d_0/weights` and the
    8-bit graphs' folded `MobilenetV1/Conv2d_0/weights/read/_82__cf__82` both give
    `MobilenetV1/Conv2d_0`."""
    name = _FOLDED_SUFFIX.sub('', weights_name)
    if name.endswith('/read'):
        name = name[:-len('/read')]
    return name.rsplit('/', 1)[0]


def list_layers(graph_def, card=None):
    """The layers between the card's input and bottleneck, numbered from the input.

    Without a card: every layer fed by a float Placeholder.
    """
    index = _GraphIndex(dequantized(graph_def))
    roots, bottleneck = _endpoints(index, card)
    for name in roots + [bottleneck] * (bottleneck is not None):
        if name not in index.nodes:
            raise GraftError('graph has no node %s' % name)
    data_path = index.descendants(roots)
    relevant = data_path
    if bottleneck is not None:
        relevant = data_path & index.ancestors([bottleneck])
    layer_of, weighted = {}, []
    for name in index.topological(relevant):
        node = index.nodes[name]
        inputs = _data_inputs(node)
        if node.op in WEIGHTED_OPS and len(inputs) > 1 and inputs[1] not in data_path and name not in roots:
            layer_of[name] = len(weighted)
            weighted.append(name)
        else:
            below = [layer_of[i] for i in inputs if layer_of.get(i) is not None]
            layer_of[name] = max(below) if below else None
    params = [[] for _ in weighted]
    roles = _Roles(index, data_path)
    outside = lambda name: name not in data_path  # noqa: E731
    for name, node in index.nodes.items():
        if node.op != 'Const' or node.attr['dtype'].type not in FLOAT_TYPES:
            continue
        reached = index.descendants([name], outside) | {name}
        joins = {c for n in reached for c, _ in index.consumers[n] if c in data_path}
        layers = [layer_of[j] for j in joins if layer_of.get(j) is not None]
        if layers:
            params[min(layers)].append(name)
    layers = []
    for number, name in enumerate(weighted):
        node = index.nodes[name]
        scope = layer_scope(index.source(_data_inputs(node)[1]).name)
        consts = sorted(params[number], key=index.position.get)
        layers.append(Layer(number, scope, node.op, name,
                            tuple((c, roles.role(c)) for c in consts)))
    return layers


def first_tuned_layer(layers, fine_tune_at=None, fine_tune_from=None):
    """Index of the first layer to train: `fine_tune_at` K, or the first layer named `fine_tune_from...`."""
    if (fine_tune_at is None) == (fine_tune_from is None):
        raise GraftError('give exactly one of fine_tune_at (a layer number) and '
                         'fine_tune_from (a layer name)')
    if not layers:
        raise GraftError('the graph has no layers with weights to fine-tune')
    if fine_tune_from is not None:
        for layer in layers:
            if layer.name.startswith(fine_tune_from):
                return layer.index
        raise GraftError('no layer name starts with %r; layers are %s ... %s'
                         % (fine_tune_from, ', '.join(layer.name for layer in layers[:3]), layers[-1].name))
    if not 0 <= int(fine_tune_at) < len(layers):
        raise GraftError('fine_tune_at %s is out of range: the graph has layers 0 to %d'
                         % (fine_tune_at, len(layers) - 1))
    return int(fine_tune_at)


def const_name_of(variable):
    """The Const a `backbone_trainable/...` variable stands for."""
    name = variable.op.name
    return name[name.index(TRAINABLE_SCOPE + '/') + len(TRAINABLE_SCOPE) + 1:]


def unfreeze(graph_def, card, images, fine_tune_at=None, fine_tune_from=None, name='backbone'):
    """Import the graph fed by `images` with layers K.. trainable.

    Returns (bottleneck [N, bottleneck_size], variables, tuned layers). The
    variables are trainable resource variables named
    `backbone_trainable/<const name>` (tf1.trainable_variables(TRAINABLE_SCOPE)
    finds them; a second call in the same graph shares them), initialised to
    the Consts' values. Batch norm has no update ops: it stays in inference mode.
    """
    if card.input_kind == 'jpeg' and not card.image_tensor:
        raise GraftError('graph %s takes one JPEG at a time and its card names no image tensor '
                         'to feed batches to' % card.name)
    graph_def = dequantized(graph_def)
    layers = list_layers(graph_def, card)
    tuned = layers[first_tuned_layer(layers, fine_tune_at, fine_tune_from):]
    consts = {c for layer in tuned for c in layer.trainable}
    stripped = tf1.GraphDef()
    stripped.versions.CopyFrom(graph_def.versions)
    stripped.library.CopyFrom(graph_def.library)
    variables, input_map = [], {card.batch_input_tensor: images}
    with tf1.variable_scope(TRAINABLE_SCOPE, reuse=tf1.AUTO_REUSE):
        for node in graph_def.node:
            if node.name not in consts:
                stripped.node.add().CopyFrom(node)
                continue
            variable = tf1.get_variable(node.name, initializer=tf.make_ndarray(node.attr['value'].tensor))
            variables.append(variable)
            input_map[node.name + ':0'] = variable.value()
            placeholder = stripped.node.add(name=node.name, op='Placeholder')
            placeholder.attr['dtype'].CopyFrom(node.attr['dtype'])
            placeholder.attr['shape'].shape.CopyFrom(node.attr['value'].tensor.tensor_shape)
    try:
        output, = tf.import_graph_def(stripped, input_map=input_map,
                                      return_elements=[card.batch_bottleneck_tensor], name=name)
    except (ValueError, KeyError) as error:
        raise GraftError('graph %s does not fit its card: %s'
                         % (card.name, str(error).splitlines()[0])) from None
    bottleneck = flat_rows(output, card.bottleneck_size, name + '_bottleneck')
    return bottleneck, variables, tuned


def trained_values(sess, variables):
    """{const name: value} of the unfrozen variables, read from a session."""
    return dict(zip([const_name_of(v) for v in variables], sess.run(variables)))


def checkpoint_values(checkpoint_path, graph_def):
    """{const name: value} of the graph's unfrozen Consts saved in a checkpoint."""
    reader = tf.train.load_checkpoint(checkpoint_path)
    consts = {node.name for node in graph_def.node if node.op in ('Const', 'Dequantize')}
    prefix = TRAINABLE_SCOPE + '/'
    return {key[len(prefix):]: reader.get_tensor(key)
            for key in reader.get_variable_to_shape_map()
            if key.startswith(prefix) and key[len(prefix):] in consts}


def fold_to_frozen(graph_def, values):
    """A copy of `graph_def` with the Consts named in `values` set to those values."""
    folded = tf1.GraphDef()
    folded.CopyFrom(dequantized(graph_def, set(values)))
    nodes = {node.name: node for node in folded.node}
    for const_name, value in values.items():
        node = nodes.get(const_name)
        if node is None or node.op != 'Const':
            raise GraftError('cannot fold %s: the graph has no Const of that name' % const_name)
        dtype = tf.as_dtype(node.attr['dtype'].type)
        shape = [d.size for d in node.attr['value'].tensor.tensor_shape.dim]
        value = np.asarray(value)
        if list(value.shape) != shape:
            raise GraftError('cannot fold %s: trained value has shape %s, the Const %s'
                             % (const_name, list(value.shape), shape))
        node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value.astype(dtype.as_numpy_dtype)))
    return folded


class UnfrozenBackbone:
    """A frozen-graph backbone whose layers from K train; builds like FrozenGraphBackbone.

    After `build`, `variables` holds the trainable variables and `fold(values)`
    gives the fine-tuned frozen GraphDef.
    """

    def __init__(self, backbone, fine_tune_at=None, fine_tune_from=None):
        self.graph_def = backbone.graph_def
        self.card, self.sha256, self.path = backbone.card, backbone.sha256, backbone.path
        self.layers = list_layers(self.graph_def, self.card)
        self.first_tuned = first_tuned_layer(self.layers, fine_tune_at, fine_tune_from)
        self.variables = []

    def build(self, images, name='backbone'):
        bottleneck, self.variables, _ = unfreeze(self.graph_def, self.card, images,
                                                 fine_tune_at=self.first_tuned, name=name)
        return bottleneck

    def fold(self, values):
        return fold_to_frozen(self.graph_def, values)


def keras_numbered(layers, card):
    """[(number, layer)]: the number `fine_tune_at` counts for each layer.

    Cards of converted Keras models list the backbone's layers in Keras's own
    order (`card.keras_layers`); a layer is then numbered by its weights'
    Keras layer index (the batch norm after a convolution shares its layer).
    Other graphs number their layers 0, 1, ... as list_layers does.
    """
    order = {name: i for i, name in enumerate(getattr(card, 'keras_layers', ()) or ())}
    if not order or not all(layer.name in order for layer in layers):
        return [(layer.index, layer) for layer in layers]
    return [(order[layer.name], layer) for layer in layers]


def first_tuned_at(layers, card, fine_tune_at=None, fine_tune_from=None):
    """first_tuned_layer, with fine_tune_at K counted as keras_numbered counts: the first
    layer whose number is K or more (Keras: model.layers[K:] trainable)."""
    if fine_tune_at is not None and fine_tune_from is None and layers:
        numbered = keras_numbered(layers, card)
        if any(number != layer.index for number, layer in numbered):
            for number, layer in numbered:
                if number >= int(fine_tune_at):
                    return layer.index
            raise GraftError('fine_tune_at %s is past the last Keras layer with weights (%d, %s)'
                             % (fine_tune_at, numbered[-1][0], numbered[-1][1].name))
    return first_tuned_layer(layers, fine_tune_at, fine_tune_from)
