"""Optimizers by name, and the learning rate schedule they follow.

TensorFlow is imported only when an optimizer is made, so the command line can
list the names (tools/flags.py) without loading it.
"""
from tfgraft.graphs.errors import GraftError

# name -> (tf.compat.v1.train class, its keyword arguments besides the rate)
OPTIMIZERS = {
    'sgd': ('GradientDescentOptimizer', {}),
    'momentum': ('MomentumOptimizer', {'momentum': 0.9}),
    'adam': ('AdamOptimizer', {}),
    'rmsprop': ('RMSPropOptimizer', {}),
}


def learning_rate(base_rate, global_step, decay_rate=1.0, decay_steps=1000):
    """base_rate * decay_rate ** (global_step / decay_steps), or a constant."""
    import tensorflow as tf
    if decay_rate == 1.0:
        return tf.constant(float(base_rate), tf.float32, name='learning_rate')
    return tf.compat.v1.train.exponential_decay(float(base_rate), global_step, int(decay_steps),
                                                float(decay_rate), name='learning_rate')


def make_optimizer(name, rate):
    import tensorflow as tf
    if name not in OPTIMIZERS:
        raise GraftError('unknown optimizer %r; choose one of %s' % (name, ', '.join(OPTIMIZERS)))
    class_name, options = OPTIMIZERS[name]
    return getattr(tf.compat.v1.train, class_name)(rate, **options)
