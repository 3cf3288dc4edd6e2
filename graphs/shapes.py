"""A frozen graph's input size and bottleneck width, measured from the graph.

A card's name only chooses tensors and preprocessing; the numbers come from
here. The input size is the static shape of the tensor a batch is fed to (a
placeholder's declared shape, or what the graph's own front end computes).
The bottleneck width comes from static shape inference with a batch of any
size fed there, or, where that leaves a dimension unknown, from one run on a
batch of two zero images. A bottleneck whose first dimension does not follow
the batch would glue images' vectors together, so it is refused.
"""
import collections
import math

import numpy as np
import tensorflow as tf

from tfgraft.graphs.errors import GraftError

tf1 = tf.compat.v1

MeasuredShapes = collections.namedtuple('MeasuredShapes', 'input_size bottleneck_size bottleneck_shape')


def node_name(tensor_name):
    return tensor_name.lstrip('^').split(':')[0]


def needed_nodes(nodes, output_node, input_node=None):
    """The names of the nodes `output_node` reads, directly or not, stopping at `input_node`."""
    by_name = {node.name: node for node in nodes}
    keep, stack = set(), [output_node]
    while stack:
        name = stack.pop()
        if name in keep or name not in by_name:
            continue
        keep.add(name)
        if name != input_node:
            stack.extend(node_name(i) for i in by_name[name].input)
    return keep


def prune_graph_def(graph_def, output_node, input_node=None):
    """Only the nodes `output_node` needs, not looking past `input_node`; an input
    node that is not a placeholder becomes one (it is fed through input_map, so what
    computed it, e.g. a JPEG decoder, is not needed)."""
    keep = needed_nodes(graph_def.node, output_node, input_node)
    pruned = tf1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.library.CopyFrom(graph_def.library)
    for node in graph_def.node:
        if node.name == input_node and node.op != 'Placeholder':
            feed = pruned.node.add(name=node.name, op='Placeholder')
            feed.attr['dtype'].type = tf.float32.as_datatype_enum
        elif node.name in keep:
            pruned.node.add().CopyFrom(node)
    return pruned


def static_shape(graph_def, tensor_name):
    """A tensor's static shape as a list (None for unknown dimensions), or None if
    its rank is unknown. A placeholder's is its declared shape; any other tensor's
    comes from shape inference over what it depends on."""
    node = next((n for n in graph_def.node if n.name == node_name(tensor_name)), None)
    if node is not None and node.op == 'Placeholder':
        shape = node.attr['shape'].shape
        if 'shape' not in node.attr or shape.unknown_rank:
            return None
        if not shape.dim and graph_def.versions.producer < 22:
            return None     # before GraphDef version 22 an empty shape meant "unknown"
        return [dim.size if dim.size >= 0 else None for dim in shape.dim]
    with tf.Graph().as_default():
        try:
            tensor, = tf.import_graph_def(prune_graph_def(graph_def, node_name(tensor_name)),
                                          return_elements=[tensor_name], name='')
        except (ValueError, KeyError) as error:
            raise GraftError('cannot read the shape of %s: %s'
                             % (tensor_name, str(error).splitlines()[0])) from None
    return tensor.shape.as_list() if tensor.shape.rank is not None else None


def declared_input_size(graph_def, input_tensor):
    """(height, width) the input tensor's static shape fixes, or None where it does not."""
    dims = static_shape(graph_def, input_tensor)
    if dims is None:
        return None
    if len(dims) != 4:
        raise GraftError('input %s has shape %s; an image batch [N, H, W, 3] is needed'
                         % (input_tensor, dims))
    if dims[3] not in (None, 3):
        raise GraftError('input %s has %d channels; tfgraft feeds RGB (3)' % (input_tensor, dims[3]))
    if dims[1] is None or dims[2] is None:
        return None
    return (dims[1], dims[2])


def _bottleneck_static_shape(graph_def, input_tensor, bottleneck_tensor, input_size):
    sub = prune_graph_def(graph_def, node_name(bottleneck_tensor), node_name(input_tensor))
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, input_size[0], input_size[1], 3], name='images')
        try:
            output, = tf.import_graph_def(sub, input_map={input_tensor: images},
                                          return_elements=[bottleneck_tensor], name='')
        except (ValueError, KeyError) as error:
            raise GraftError('cannot feed a batch of %dx%d images to %s: %s'
                             % (input_size[0], input_size[1], input_tensor,
                                str(error).splitlines()[0])) from None
    return graph, images, output


def measure(graph_def, input_tensor, bottleneck_tensor, fallback_input_size=None):
    """MeasuredShapes of a graph fed float image batches at `input_tensor`.

    fallback_input_size: the size to feed when the graph does not fix one (from
    a card or a flag); measured input_size is then None.
    """
    input_size = declared_input_size(graph_def, input_tensor)
    feed_size = input_size or (tuple(fallback_input_size) if fallback_input_size else None)
    if feed_size is None:
        raise GraftError('input %s declares no image size; give --input_size' % input_tensor)
    graph, images, output = _bottleneck_static_shape(graph_def, input_tensor, bottleneck_tensor,
                                                     feed_size)
    dims = output.shape.as_list() if output.shape.rank is not None else None
    if dims is not None and len(dims) not in (2, 4):
        raise GraftError('bottleneck %s has shape %s: tfgraft reads a 2-D [N, D] or 4-D '
                         '[N, H, W, C] tensor' % (bottleneck_tensor, dims))
    if dims is None or None in dims[1:]:
        dims = _run_on_zeros(graph, images, output, feed_size, bottleneck_tensor)
    elif dims[0] is not None:
        raise GraftError('bottleneck %s has a fixed batch of %d (shape %s): its rows do not '
                         'follow the images fed, so batches cannot be read from it'
                         % (bottleneck_tensor, dims[0], dims))
    return MeasuredShapes(input_size, math.prod(dims[1:]), tuple(dims[1:]))


def _run_on_zeros(graph, images, output, feed_size, bottleneck_tensor):
    """The bottleneck's shape from one run on a batch of two zero images."""
    with tf1.Session(graph=graph) as session:
        try:
            value = session.run(output, {images: np.zeros((2,) + tuple(feed_size) + (3,), np.float32)})
        except tf.errors.OpError as error:
            raise GraftError('graph failed on a batch of zero images at %s: %s'
                             % (bottleneck_tensor, ' '.join(error.message.split())[:200])) from None
    if value.ndim not in (2, 4):
        raise GraftError('bottleneck %s has shape %s: tfgraft reads a 2-D [N, D] or 4-D '
                         '[N, H, W, C] tensor' % (bottleneck_tensor, list(value.shape)))
    if value.shape[0] != 2:
        raise GraftError('bottleneck %s gave %d rows for 2 images: its rows do not follow the '
                         'images fed' % (bottleneck_tensor, value.shape[0]))
    return list(value.shape)


def flat_rows(output, width, name):
    """[N, ...] -> [N, width], one row per image: a width that does not fit fails
    the run instead of regrouping rows into other images' vectors."""
    return tf.reshape(output, tf.stack([tf.shape(output)[0], width]), name=name)
