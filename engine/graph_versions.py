"""The producer version an exported GraphDef declares, so clients read its shapes back.

A GraphDef imported from an old frozen graph (the 2015-2017 releases carry no
`versions`, i.e. producer 0) lowers the whole graph's producer to 0; for a
producer below 22 TensorFlow reads a Placeholder's empty shape attribute as
"unknown" instead of "scalar", so a client looking at `DecodeJpeg/contents`
sees no rank. The exported graph is re-stamped with the newest producer its
ops allow: TensorFlow's own, or just below the version that removed an op it
still holds (an op removed at version 9 keeps the old producer).
"""
import tensorflow as tf
from tensorflow.python.framework import op_def_registry

SCALAR_SHAPES_FROM = 22    # TensorFlow reads an empty Placeholder shape as scalar from this producer


def highest_producer(graph_def):
    """The newest producer under which every op of graph_def still exists."""
    producer = tf.version.GRAPH_DEF_VERSION
    for op in {node.op for node in graph_def.node}:
        op_def = op_def_registry.get(op)
        if op_def is not None and op_def.HasField('deprecation'):
            producer = min(producer, op_def.deprecation.version - 1)
    return producer


def declare_current_producer(graph_def):
    """Stamp graph_def (in place) with highest_producer; returns True when shapes read back."""
    graph_def.versions.producer = max(graph_def.versions.producer, highest_producer(graph_def))
    return graph_def.versions.producer >= SCALAR_SHAPES_FROM
