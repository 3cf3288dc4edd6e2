"""input_fns over bottleneck records and image files.

An input_fn takes no arguments and returns `Inputs`:

    next_batch()  builds (features, labels) tensors; features is
                  {'bottleneck': [N, D]}. Each run of them yields the next
                  batch: the Estimator builds them once inside its step loop.
    batches       how many runs make one pass over the data (None: endless
                  random batches, for training).
    hooks         SessionRunHooks that load the data when the session starts.

A split is held in the graph as a variable that no checkpoint saves, loaded
once from a placeholder, so training draws its batches without Python.
"""
import collections

import numpy as np
import tensorflow as tf

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.preprocessing import load_preprocessed
from tfgraft.records import reader

tf1 = tf.compat.v1

Inputs = collections.namedtuple('Inputs', 'next_batch batches hooks')


class LoadArraysHook(tf1.train.SessionRunHook):
    """Runs the initializers of in-graph arrays, feeding their values, once per session."""

    def __init__(self, initializers, feed_dict):
        self.initializers = initializers
        self.feed_dict = feed_dict

    def after_create_session(self, session, coord):
        session.run(self.initializers, self.feed_dict)


def hold_in_graph(arrays):
    """Variables (in no collection: never saved nor re-initialized) holding numpy arrays.

    Returns ({name: variable}, hook that loads them).
    """
    variables, feed = {}, {}
    for name, array in arrays.items():
        value = tf1.placeholder(tf.as_dtype(array.dtype), array.shape, name=name + '_value')
        variables[name] = tf1.Variable(value, trainable=False, collections=[], name=name)
        feed[value] = array
    hook = LoadArraysHook([v.initializer for v in variables.values()], feed)
    return variables, hook


def arrays_input_fn(bottlenecks, labels, batch_size=None):
    """Random batches (with replacement, as retrain.py draws them) or, with
    batch_size None, all rows as one batch."""
    count = len(labels)

    def input_fn():
        held, hook = hold_in_graph({'split_bottlenecks': np.asarray(bottlenecks, np.float32),
                                    'split_labels': np.asarray(labels, np.int64)})
        table, truth = held['split_bottlenecks'], held['split_labels']
        if batch_size is None:
            return Inputs(lambda: ({'bottleneck': table.read_value()}, truth.read_value()), 1, [hook])

        def next_batch():
            picks = tf.random.uniform([batch_size], 0, count, dtype=tf.int32)
            return {'bottleneck': tf.gather(table, picks)}, tf.gather(truth, picks)
        return Inputs(next_batch, None, [hook])
    return input_fn


def records_input_fn(bottleneck_dir, split, batch_size=None, manifest=None):
    """arrays_input_fn over one split of a bottleneck directory (read when called)."""
    data = reader.load_split(bottleneck_dir, split, manifest)
    if not len(data['labels']):
        raise GraftError('%s: the %s split holds no records' % (bottleneck_dir, split))
    return arrays_input_fn(data['bottlenecks'], data['labels'], batch_size)


def images_input_fn(image_paths, backbone, batch_size=16):
    """Image files decoded and preprocessed in the graph, then run through the backbone."""
    card = backbone.card

    @tf.autograph.experimental.do_not_convert
    def load(path):
        return load_preprocessed(path, card)

    def input_fn():
        dataset = tf.data.Dataset.from_tensor_slices(list(image_paths))
        dataset = dataset.map(load).batch(batch_size)
        iterator = tf1.data.make_one_shot_iterator(dataset)

        def next_batch():
            return {'bottleneck': backbone.build(iterator.get_next(), 'backbone')}, None
        return Inputs(next_batch, -(-len(image_paths) // batch_size), [])
    return input_fn
