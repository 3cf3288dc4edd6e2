"""A GraphDef is untrusted input: only pure math and image ops may run.

Ops that touch files, run Python, keep state or start input pipelines
(ReadFile, WriteFile, Save/Restore, PyFunc, queues, datasets...) are refused
before any session sees the graph. `--allow_op` extends the list on purpose.
"""
from tfgraft.graphs.errors import GraftError

ALLOWED_OPS = frozenset('''
Abs Add AddN AddV2 ArgMax ArgMin AvgPool AvgPool3D BatchMatMul BatchMatMulV2
BatchMatMulV3 BatchNormWithGlobalNormalization BatchToSpaceND BiasAdd Cast Ceil
CheckNumerics Concat ConcatV2 Const Conv2D Conv3D DecodeBmp DecodeGif DecodeJpeg
DecodeImage DecodePng DepthToSpace DepthwiseConv2dNative Dilation2D Div DivNoNan Einsum Elu
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
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    for node in nodes:
        if node.op not in allowed:
            refused.setdefault(node.op, []).append(node.name)
    if refused:
        parts = ['%s (%s)' % (op, ', '.join(names[:3]) + (' ...' if len(names) > 3 else ''))
                 for op, names in sorted(refused.items())]
        raise GraftError('%s refused: it uses ops outside the allowlist of pure math and '
                         'image ops: %s; pass --allow_op OP to allow one deliberately'
                         % (source, '; '.join(parts)))
