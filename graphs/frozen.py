"""Frozen GraphDef backbones, imported with tf.compat.v1 as the tutorials do."""
import hashlib
import os

import tensorflow as tf
from google.protobuf import message

from tfgraft.graphs import registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.safety import check_constants, check_graph_ops

tf1 = tf.compat.v1


def sha256_file(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def load_graph_def(path, allow_ops=()):
    """Parse a frozen GraphDef and check its ops; nothing is run."""
    if not os.path.isfile(path):
        raise GraftError('graph file not found: %s' % path)
    with open(path, 'rb') as handle:
        data = handle.read()
    graph_def = tf1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except (message.DecodeError, ValueError, RuntimeError) as error:
        raise GraftError('%s is not a GraphDef (.pb) file: %s' % (path, error)) from None
    if not graph_def.node:
        raise GraftError('%s is not a GraphDef (.pb) file: it holds no nodes' % path)
    check_graph_ops(graph_def, allow_ops, source=path)
    check_constants(graph_def, source=path)
    return graph_def


def _node_map(graph_def):
    return {node.name: node for node in graph_def.node}


def _shape_of(node):
    if 'shape' not in node.attr:
        return None
    dims = node.attr['shape'].shape.dim
    return [d.size for d in dims]


def match_card(graph_def):
    """The known card whose tensor names the graph holds, or None."""
    nodes = _node_map(graph_def)
    if 'DecodeJpeg/contents' in nodes and 'pool_3/_reshape' in nodes:
        return registry.INCEPTION_V3
    if 'input' in nodes and 'MobilenetV1/Logits/AvgPool_1a/AvgPool' in nodes:
        shape = _shape_of(nodes['input']) or [-1, 224, 224, 3]
        size = shape[1] if len(shape) == 4 and shape[1] > 0 else 224
        weights = nodes.get('MobilenetV1/Conv2d_13_pointwise/weights')
        channels = 1024
        if weights is not None and weights.op == 'Const':
            channels = weights.attr['value'].tensor.tensor_shape.dim[-1].size
        depth = {1024: '1.0', 768: '0.75', 512: '0.50', 256: '0.25'}.get(channels)
        if depth is None:
            return None
        card = registry.mobilenet_v1_card(depth, size)
        return registry.KNOWN_CARDS.get(card.name, card)
    return None


def card_from_flags(graph_def, name, input_tensor=None, bottleneck_tensor=None, input_size=None,
                    input_range=None, channel_order='RGB'):
    """A card for a graph tfgraft does not know, from the command-line flags."""
    missing = [flag for flag, value in (('--input_tensor', input_tensor),
                                        ('--bottleneck_tensor', bottleneck_tensor),
                                        ('--input_size', input_size)) if not value]
    if missing:
        raise GraftError('graph not recognised as a known backbone; give %s' % ', '.join(missing))
    nodes = _node_map(graph_def)
    for tensor in (input_tensor, bottleneck_tensor):
        if tensor.split(':')[0] not in nodes:
            raise GraftError('tensor %s is not in the graph' % tensor)
    input_node = nodes[input_tensor.split(':')[0]]
    kind = 'jpeg' if input_node.attr['dtype'].type == tf.string.as_datatype_enum else 'image'
    size = _bottleneck_size(graph_def, input_tensor, bottleneck_tensor, input_size, kind)
    return registry.GraphCard(
        name=name, input_tensor=input_tensor, input_kind=kind,
        input_size=(input_size, input_size), input_range=tuple(input_range or (-1.0, 1.0)),
        bottleneck_tensor=bottleneck_tensor, bottleneck_size=size, channel_order=channel_order)


def _bottleneck_size(graph_def, input_tensor, bottleneck_tensor, input_size, kind):
    """Width of the bottleneck, from a shape-only import (no session run)."""
    graph = tf.Graph()
    with graph.as_default():
        if kind == 'jpeg':
            tensor, = tf.import_graph_def(graph_def, return_elements=[bottleneck_tensor], name='')
        else:
            images = tf1.placeholder(tf.float32, [None, input_size, input_size, 3])
            try:
                tensor, = tf.import_graph_def(graph_def, input_map={input_tensor: images},
                                              return_elements=[bottleneck_tensor], name='')
            except ValueError as error:
                raise GraftError('cannot feed %s: %s' % (input_tensor, str(error).splitlines()[0])) from None
    dims = tensor.shape.as_list()
    size = 1
    for dim in dims[1:]:
        if dim is None:
            raise GraftError('bottleneck %s has no static size (shape %s)' % (bottleneck_tensor, dims))
        size *= dim
    return size


def prune_graph_def(graph_def, output_node, input_node):
    """Only the nodes between input and output: nothing else is imported or shape-checked."""
    nodes = _node_map(graph_def)
    keep, stack = set(), [output_node]
    while stack:
        name = stack.pop()
        if name in keep or name not in nodes:
            continue
        keep.add(name)
        if name != input_node:
            stack.extend(i.lstrip('^').split(':')[0] for i in nodes[name].input)
    pruned = tf1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name == input_node and node.op != 'Placeholder':
            # Fed through input_map: what computed it (e.g. a JPEG decoder) is not needed.
            feed = pruned.node.add(name=node.name, op='Placeholder')
            feed.attr['dtype'].type = tf.float32.as_datatype_enum
        elif node.name in keep:
            pruned.node.add().CopyFrom(node)
    return pruned


class FrozenGraphBackbone:
    """A frozen GraphDef that maps a float image batch to a bottleneck batch."""

    def __init__(self, graph_def, card, sha256, path=''):
        self.graph_def = prune_graph_def(graph_def, card.batch_bottleneck_tensor.split(':')[0],
                                         card.batch_input_tensor.split(':')[0])
        self.card = card
        self.sha256 = sha256
        self.path = path

    def build(self, images, name='backbone'):
        """Import the graph into the default graph, fed by `images` [N, H, W, 3].

        Returns the bottleneck batch [N, bottleneck_size].
        """
        card = self.card
        if card.input_kind == 'jpeg' and not card.image_tensor:
            raise GraftError('graph %s takes one JPEG at a time and its card names no '
                             'image tensor to feed batches to' % card.name)
        try:
            output, = tf.import_graph_def(
                self.graph_def, input_map={card.batch_input_tensor: images},
                return_elements=[card.batch_bottleneck_tensor], name=name)
        except (ValueError, KeyError) as error:
            raise GraftError('graph %s does not fit its card: %s'
                             % (card.name, str(error).splitlines()[0])) from None
        return tf.reshape(output, [-1, card.bottleneck_size], name=name + '_bottleneck')


def card_file_for(graph_path):
    """The sidecar card written beside converted graphs: model.pb -> model.card.json."""
    return os.path.splitext(graph_path)[0] + '.card.json'


def write_card_file(card, graph_path):
    import json
    with open(card_file_for(graph_path), 'w', encoding='utf-8') as handle:
        json.dump(card.to_dict(), handle, indent=2)


def read_card_file(graph_path):
    import json
    path = card_file_for(graph_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as handle:
            return registry.GraphCard.from_dict(json.load(handle))
    except (ValueError, TypeError) as error:
        raise GraftError('%s is not a graph card: %s' % (path, error)) from None


def load_frozen_backbone(path, allow_ops=(), card=None, **flags):
    """Load, check and match a .pb file; `flags` build a card for unknown graphs.

    The card comes from (first that applies): the caller, a sidecar
    `<name>.card.json`, the known graphs' tensor names, the flags.
    """
    graph_def = load_graph_def(path, allow_ops)
    if card is None:
        card = read_card_file(path)
    if card is None:
        card = match_card(graph_def)
    if card is None:
        card = card_from_flags(graph_def, name=os.path.splitext(os.path.basename(path))[0], **flags)
    else:
        nodes = _node_map(graph_def)
        for tensor in (card.batch_input_tensor, card.batch_bottleneck_tensor):
            if tensor.split(':')[0] not in nodes:
                raise GraftError('%s: tensor %s of card %s is not in the graph'
                                 % (path, tensor, card.name))
    return FrozenGraphBackbone(graph_def, card, sha256_file(path), path)
