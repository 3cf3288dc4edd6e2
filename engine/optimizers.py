"""Optimizers by name, and the learning rate schedule they follow."""
import tensorflow as tf

from tfgraft.graphs.errors import GraftError

tf1 = tf.compat.v1

OPTIMIZERS = {
    'sgd': lambda rate: tf1.train.GradientDescentOptimizer(rate),
    'momentum': lambda rate: tf1.train.MomentumOptimizer(rate, momentum=0.9),
    'adam': lambda rate: tf1.train.AdamOptimizer(rate),
    'rmsprop': lambda rate: tf1.train.RMSPropOptimizer(rate),
}


def learning_rate(base_rate, global_step, decay_rate=1.0, decay_steps=1000):
    """base_rate * decay_rate ** (global_step / decay_steps), or a constant."""
    if decay_rate == 1.0:
        return tf.constant(float(base_rate), tf.float32, name='learning_rate')
    return tf1.train.exponential_decay(float(base_rate), global_step, int(decay_steps),
                                       float(decay_rate), name='learning_rate')


def make_optimizer(name, rate):
    if name not in OPTIMIZERS:
        raise GraftError('unknown optimizer %r; choose one of %s' % (name, ', '.join(OPTIMIZERS)))
    return OPTIMIZERS[name](rate)
