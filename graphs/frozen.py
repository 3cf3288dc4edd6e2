"""Frozen GraphDef backbones, imported with tf.compat.v1 as the tutorials do."""
import hashlib
import os

import tensorflow as tf
from google.protobuf import message

from tfgraft.graphs import registry, shapes
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.safety import check_constants, check_graph_ops
from tfgraft.records.atomic import atomic_write_bytes

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


MOBILENET_V1_BOTTLENECK = 'MobilenetV1/Logits/AvgPool_1a/AvgPool:0'
MOBILENET_V1_DEPTH_BY_WIDTH = {1024: '1.0', 768: '0.75', 512: '0.50', 256: '0.25'}


def match_card(graph_def):
    """The known card whose tensor names the graph holds, or None."""
    return _match(graph_def)[0]


def _match(graph_def):
    """(card or None, its MeasuredShapes where matching measured them)."""
    nodes = _node_map(graph_def)
    if 'DecodeJpeg/contents' in nodes and 'pool_3/_reshape' in nodes:
        return registry.INCEPTION_V3, None
    if 'input' in nodes and shapes.node_name(MOBILENET_V1_BOTTLENECK) in nodes:
        # The names say MobileNet v1; the depth and size are measured.
        measured = shapes.measure(graph_def, 'input:0', MOBILENET_V1_BOTTLENECK,
                                  fallback_input_size=(224, 224))
        height, width = measured.input_size or (224, 224)
        depth = MOBILENET_V1_DEPTH_BY_WIDTH.get(measured.bottleneck_size)
        if depth is None or height != width:
            return None, None
        card = registry.mobilenet_v1_card(depth, height)
        return registry.KNOWN_CARDS.get(card.name, card), measured
    return None, None


def card_from_flags(graph_def, name, input_tensor=None, bottleneck_tensor=None, input_size=None,
                    input_range=None, channel_order='RGB'):
    """A card for a graph tfgraft does not know, from the command-line flags; the
    input size may be left to the graph when its input declares one."""
    missing = [flag for flag, value in (('--input_tensor', input_tensor),
                                        ('--bottleneck_tensor', bottleneck_tensor)) if not value]
    if missing:
        raise GraftError('graph not recognised as a known backbone; give %s' % ', '.join(missing))
    nodes = _node_map(graph_def)
    for tensor in (input_tensor, bottleneck_tensor):
        if shapes.node_name(tensor) not in nodes:
            raise GraftError('tensor %s is not in the graph' % tensor)
    input_node = nodes[shapes.node_name(input_tensor)]
    if input_node.attr['dtype'].type == tf.string.as_datatype_enum:
        raise GraftError('%s takes encoded image bytes, one image per run; give the float image '
                         'tensor after its decoder as --input_tensor' % input_tensor)
    wanted = (input_size, input_size) if input_size else None
    measured = shapes.measure(graph_def, input_tensor, bottleneck_tensor, fallback_input_size=wanted)
    if wanted and measured.input_size and measured.input_size != wanted:
        raise GraftError('--input_size %d, but the graph\'s %s declares %dx%d'
                         % ((input_size, input_tensor) + measured.input_size))
    return registry.GraphCard(
        name=name, input_tensor=input_tensor, input_kind='image',
        input_size=measured.input_size or wanted, input_range=tuple(input_range or (-1.0, 1.0)),
        bottleneck_tensor=bottleneck_tensor, bottleneck_size=measured.bottleneck_size,
        channel_order=channel_order)


def check_card(graph_def, card, source, measured=None):
    """The graph's MeasuredShapes, once the card's tensors, input size and bottleneck
    width are those the graph has (`measured`: shapes already taken of these tensors);
    otherwise one error naming both numbers."""
    nodes = _node_map(graph_def)
    for tensor in (card.batch_input_tensor, card.batch_bottleneck_tensor):
        if shapes.node_name(tensor) not in nodes:
            raise GraftError('%s: tensor %s of card %s is not in the graph' % (source, tensor, card.name))
    if card.input_kind == 'jpeg' and not card.image_tensor:
        raise GraftError('%s: card %s feeds one encoded image per run and names no image tensor '
                         'to feed batches to' % (source, card.name))
    measured = measured or shapes.measure(graph_def, card.batch_input_tensor,
                                          card.batch_bottleneck_tensor, card.input_size)
    if measured.input_size and measured.input_size != card.input_size:
        raise GraftError('%s: card %s says input %dx%d, but the graph\'s %s is %dx%d'
                         % ((source, card.name) + card.input_size + (card.batch_input_tensor,)
                            + measured.input_size))
    if measured.bottleneck_size != card.bottleneck_size:
        raise GraftError('%s: card %s says bottleneck_size %d, but the graph\'s %s gives %d '
                         '(shape %s per image)' % (source, card.name, card.bottleneck_size,
                                                   card.batch_bottleneck_tensor,
                                                   measured.bottleneck_size,
                                                   list(measured.bottleneck_shape)))
    return measured


class FrozenGraphBackbone:
    """A frozen GraphDef that maps a float image batch to a bottleneck batch."""

    def __init__(self, graph_def, card, sha256, path='', card_source='given', measured=None,
                 exact_graph=False):
        self.graph_def = shapes.prune_graph_def(graph_def, card.batch_bottleneck_tensor.split(':')[0],
                                         card.batch_input_tensor.split(':')[0])
        self.card = card
        self.sha256 = sha256
        self.path = path
        self.card_source = card_source      # how the card was found, for `tfgraft inspect`
        self.measured = measured            # shapes.MeasuredShapes, when measured at load
        # graph_def stays the file's graph (unfreezing works on it); build() runs the
        # rewritten one unless exact_graph (graphs/optimize.py).
        self.exact_graph = exact_graph
        self._inference_graph_def = None

    @property
    def rewrite_version(self):
        """0 when build() runs the file's graph as it is, else the rewriting's version."""
        from tfgraft.graphs.optimize import REWRITE_VERSION
        return 0 if self.exact_graph else REWRITE_VERSION

    @property
    def inference_graph_def(self):
        """The graph build() imports: the file's, or its rewrite for inference (made once)."""
        if self.exact_graph:
            return self.graph_def
        if self._inference_graph_def is None:
            from tfgraft.graphs.optimize import optimize_for_inference
            self._inference_graph_def = optimize_for_inference(
                self.graph_def, self.card.batch_input_tensor.split(':')[0],
                self.card.batch_bottleneck_tensor.split(':')[0])
        return self._inference_graph_def

    def build(self, images, name='backbone'):
        """Import the graph into the default graph, fed by `images` [N, H, W, 3].

        Returns the bottleneck batch [N, bottleneck_size].
        """
        card = self.card
        try:
            output, = tf.import_graph_def(
                self.inference_graph_def, input_map={card.batch_input_tensor: images},
                return_elements=[card.batch_bottleneck_tensor], name=name)
        except (ValueError, KeyError) as error:
            raise GraftError('graph %s does not fit its card: %s'
                             % (card.name, str(error).splitlines()[0])) from None
        return shapes.flat_rows(output, card.bottleneck_size, name + '_bottleneck')


def card_file_for(graph_path):
    """The sidecar card written beside converted graphs: model.pb -> model.card.json."""
    return os.path.splitext(graph_path)[0] + '.card.json'


def write_card_file(card, graph_path):
    import json
    text = json.dumps(card.to_dict(), indent=2)
    atomic_write_bytes(card_file_for(graph_path), text.encode('utf-8'))


def write_frozen_graph(graph_def, card, graph_path, source):
    """Check a converted graph's ops, then write its card and the graph, each atomically:
    the card first, so a .pb that exists always has its card beside it."""
    from tfgraft.graphs.safety import check_graph_ops
    check_graph_ops(graph_def, source=source)
    os.makedirs(os.path.dirname(os.path.abspath(graph_path)), exist_ok=True)
    write_card_file(card, graph_path)
    atomic_write_bytes(graph_path, graph_def.SerializeToString(deterministic=True))
    return card


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


def load_frozen_backbone(path, allow_ops=(), card=None, input_tensor=None, bottleneck_tensor=None,
                         input_size=None, input_range=None, exact_graph=False):
    """Load, check and match a .pb file.

    The card comes from (first that applies): the caller, the tensor flags, a
    sidecar `<name>.card.json`, the known graphs' tensor names. Whichever it is,
    its input size and bottleneck width must be the ones measured on the graph.
    exact_graph: build() runs the file's graph, not its rewrite for inference.
    """
    graph_def = load_graph_def(path, allow_ops)
    source, how, measured = path, 'given by the caller', None
    if card is None and (input_tensor or bottleneck_tensor):
        card = card_from_flags(graph_def, os.path.splitext(os.path.basename(path))[0], input_tensor,
                               bottleneck_tensor, input_size, input_range)
        how = 'from the tensor flags'
    if card is None:
        card = read_card_file(path)
        source = card and card_file_for(path)
        how = 'from the sidecar card %s' % source
    if card is None:
        (card, measured), source = _match(graph_def), path
        how = 'matched by tensor names'
    if card is None:
        card_from_flags(graph_def, '', input_tensor, bottleneck_tensor)   # names the missing flags
    measured = check_card(graph_def, card, source, measured)
    return FrozenGraphBackbone(graph_def, card, sha256_file(path), path, how, measured, exact_graph)
