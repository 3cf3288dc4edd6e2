"""A GraphDef is untrusted input: only pure math and image ops may run.

Ops that touch files, run Python, keep state or start input pipelines
(ReadFile, WriteFile, Save/Restore, PyFunc, queues, datasets...) are refused
before any session sees the graph. `--allow_op` extends the list on purpose.
"""
import math

import tensorflow as tf

from tfgraft.graphs.errors import GraftError

MAX_CONSTANT_ELEMENTS = 1 << 28

ALLOWED_OPS = frozenset('''
Abs Add AddN AddV2 ArgMax ArgMin AvgPool AvgPool3D BatchMatMul BatchMatMulV2
BatchMatMulV3 BatchNormWithGlobalNormalization BatchToSpaceND BiasAdd Cast Ceil
CheckNumerics Concat ConcatV2 Const Conv2D Conv3D DecodeBmp DecodeGif DecodeJpeg
DecodeImage DecodePng Dequantize DepthToSpace DepthwiseConv2dNative Dilation2D Div DivNoNan Einsum Elu
Equal Erf Exp ExpandDims Fill Floor FloorDiv FloorMod FusedBatchNorm
FusedBatchNormV2 FusedBatchNormV3 Gather GatherNd GatherV2 Greater GreaterEqual
Identity IdentityN L2Loss LRN LeakyRelu Less LessEqual Log Log1p LogSoftmax
LogicalAnd LogicalNot LogicalOr MatMul Max MaxPool MaxPoolV2 Maximum Mean Min
Minimum MirrorPad Mul Neg NoOp NotEqual OneHot OnesLike Pack Pad PadV2
Placeholder PlaceholderWithDefault Pow Prod Range Rank RealDiv Reciprocal Relu
Relu6 Reshape ResizeArea ResizeBicubic ResizeBilinear ResizeNearestNeighbor
Round Rsqrt Select SelectV2 Selu Shape ShapeN Sigmoid Sign Sin Cos Size Slice
Softmax Softplus Softsign SpaceToBatchND SpaceToDepth Split SplitV Sqrt Square
SquaredDifference Squeeze StopGradient StridedSlice Sub Sum Tanh Tile TopKV2
Transpose Unpack ZerosLike
'''.split())


def check_graph_ops(graph_def, allow_ops=(), source='graph'):
    """Raise GraftError naming every op outside the allowlist (and its nodes)."""
    allowed = ALLOWED_OPS | frozenset(allow_ops)
    refused = {}
    for node in _all_nodes(graph_def):
        if node.op not in allowed:
            refused.setdefault(node.op, []).append(node.name)
    if refused:
        parts = ['%s (%s)' % (op, ', '.join(names[:3]) + (' ...' if len(names) > 3 else ''))
                 for op, names in sorted(refused.items())]
        raise GraftError('%s refused: it uses ops outside the allowlist of pure math and '
                         'image ops: %s; pass --allow_op OP to allow one deliberately'
                         % (source, '; '.join(parts)))


def _all_nodes(graph_def):
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return nodes


def check_constants(graph_def, source='graph'):
    """Raise GraftError for a Const TensorFlow could not build (it would abort the process)."""
    for node in _all_nodes(graph_def):
        if node.op != 'Const':
            continue
        tensor = node.attr['value'].tensor
        try:
            dtype = tf.dtypes.as_dtype(tensor.dtype)
        except TypeError:
            raise GraftError('%s: constant %s has an unknown dtype (%d)'
                             % (source, node.name, tensor.dtype)) from None
        if dtype in (tf.resource, tf.variant) or dtype._is_ref_dtype or \
                node.attr['dtype'].type != tensor.dtype:
            raise GraftError('%s: constant %s holds %s, not its declared type'
                             % (source, node.name, dtype.name))
        dims = [dim.size for dim in tensor.tensor_shape.dim]
        count = math.prod(dims)
        if min(dims, default=0) < 0 or count > MAX_CONSTANT_ELEMENTS:
            raise GraftError('%s: constant %s has an impossible shape %s' % (source, node.name, dims))
        if tensor.tensor_content:
            if dtype == tf.string or len(tensor.tensor_content) != count * dtype.size:
                raise GraftError('%s: constant %s holds %d bytes, its shape %s needs %d'
                                 % (source, node.name, len(tensor.tensor_content), dims,
                                    count * (dtype.size if dtype != tf.string else 0)))
            continue
        try:
            tf.make_ndarray(tensor)
        except (TypeError, ValueError) as error:
            raise GraftError('%s: constant %s does not fit its shape %s: %s'
                             % (source, node.name, dims, str(error).splitlines()[0])) from None
