"""The new layers grafted on a bottleneck, as the tutorials built them, and their model_fn.

    softmax  Inception-v3 retrain.py: one FC layer (weights truncated_normal
             stddev 0.001, zero bias), softmax cross-entropy, plain SGD 0.01.
    dnn      VGG16 tutorial: hidden FC layers (--hidden_units 1024,512) with
             ReLU and dropout, then the softmax layer.
    logit    MobileNetV2 tutorial: dropout 0.2, one unit, sigmoid
             cross-entropy; two classes only.

Every head reads `BottleneckInputPlaceholder` and ends in `final_result`, the
per-class probabilities ([1 - p, p] for the logit head); training graphs
also get `GroundTruthInput` (class indices).
"""
import tensorflow as tf

from tfgraft.engine import optimizers
from tfgraft.engine.estimator import EstimatorSpec, ModeKeys
from tfgraft.engine.model_dir import HEAD_DEFAULTS
from tfgraft.graphs.errors import GraftError

tf1 = tf.compat.v1

HEADS = tuple(HEAD_DEFAULTS)


@tf.custom_gradient
def matmul(inputs, weights):
    """inputs @ weights, with the weight gradient taken as (dy^T inputs)^T.

    TensorFlow's own gradient computes inputs^T dy, which for a narrow dy (a
    few classes) runs at half the speed on CPU (see benchmarks/train.py).
    """
    def gradient(dy):
        return (tf.matmul(dy, weights, transpose_b=True),
                tf.transpose(tf.matmul(dy, inputs, transpose_a=True)))
    return tf.matmul(inputs, weights), gradient


def _dense(inputs, units, scope, initializer):
    with tf1.variable_scope(scope):
        weights = tf1.get_variable('weights', [inputs.shape[-1], units], initializer=initializer)
        biases = tf1.get_variable('biases', [units], initializer=tf1.zeros_initializer())
        return tf.nn.bias_add(matmul(inputs, weights), biases)


def _dropout(inputs, rate, training):
    if training and rate > 0:
        return tf.nn.dropout(inputs, rate=rate)
    return inputs


def _softmax_layer(bottlenecks, class_count):
    """retrain.py's final layer, with its variable names."""
    with tf1.variable_scope('final_training_ops'):
        with tf1.variable_scope('weights'):
            weights = tf1.get_variable(
                'final_weights', [bottlenecks.shape[-1], class_count],
                initializer=tf1.truncated_normal_initializer(stddev=0.001))
        with tf1.variable_scope('biases'):
            biases = tf1.get_variable('final_biases', [class_count],
                                      initializer=tf1.zeros_initializer())
        with tf.name_scope('Wx_plus_b'):
            return matmul(bottlenecks, weights) + biases


class SoftmaxHead:
    def __init__(self, class_count, params):
        self.class_count = class_count
        self.params = params

    def logits(self, bottlenecks, training):
        return _softmax_layer(bottlenecks, self.class_count)

    def loss(self, logits, labels):
        one_hot = tf.one_hot(labels, self.class_count)
        cross_entropy = tf.nn.softmax_cross_entropy_with_logits(labels=one_hot, logits=logits)
        return tf.reduce_mean(cross_entropy, name='cross_entropy')

    def probabilities(self, logits):
        return tf.nn.softmax(logits, name='final_result')


class DnnHead(SoftmaxHead):
    def logits(self, bottlenecks, training):
        net = bottlenecks
        with tf1.variable_scope('dnn'):
            for index, units in enumerate(self.params['hidden_units']):
                net = _dense(net, units, 'hiddenlayer_%d' % index, tf1.glorot_uniform_initializer())
                net = _dropout(tf.nn.relu(net), self.params['dropout'], training)
        return _softmax_layer(net, self.class_count)


class LogitHead:
    def __init__(self, class_count, params):
        if class_count != 2:
            raise GraftError('the logit head is for 2 classes; the records have %d '
                             '(use --head softmax or dnn)' % class_count)
        self.params = params

    def logits(self, bottlenecks, training):
        net = _dropout(bottlenecks, self.params['dropout'], training)
        return _dense(net, 1, 'logit', tf1.glorot_uniform_initializer())

    def loss(self, logits, labels):
        targets = tf.cast(labels, tf.float32)[:, tf.newaxis]
        cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.reduce_mean(cross_entropy, name='cross_entropy')

    def probabilities(self, logits):
        positive = tf.sigmoid(logits)
        return tf.concat([1.0 - positive, positive], axis=1, name='final_result')


HEAD_CLASSES = {'softmax': SoftmaxHead, 'dnn': DnnHead, 'logit': LogitHead}


def make_head(params):
    if params['head'] not in HEAD_CLASSES:
        raise GraftError('unknown head %r; choose one of %s' % (params['head'], ', '.join(HEADS)))
    return HEAD_CLASSES[params['head']](len(params['classes']), params)


def model_fn(features, labels, mode, params):
    """The Estimator model_fn of a grafted head; `params` is the model_dir's params.json."""
    head = make_head(params)
    bottlenecks = tf1.placeholder_with_default(
        features['bottleneck'], [None, params['bottleneck_size']], name='BottleneckInputPlaceholder')
    logits = head.logits(bottlenecks, training=mode == ModeKeys.TRAIN)
    return classifier_spec(logits, head.probabilities(logits), labels, mode, params, head.loss)


def classifier_spec(logits, probabilities, labels, mode, params, loss_fn):
    """The EstimatorSpec of a classifier: predictions; loss and accuracy (labels fed at
    `GroundTruthInput`); one optimizer step at params' learning rate (and decay)."""
    class_ids = tf.argmax(probabilities, axis=1)
    predictions = {'probabilities': probabilities, 'class_id': class_ids}
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions=predictions)

    labels = tf1.placeholder_with_default(labels, [None], name='GroundTruthInput')
    loss = loss_fn(logits, labels)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(class_ids, labels), tf.float32), name='accuracy')
    if mode == ModeKeys.EVAL:
        return EstimatorSpec(mode, predictions=predictions, loss=loss,
                             eval_metrics={'loss': loss, 'accuracy': accuracy})

    global_step = tf1.train.get_global_step()
    rate = optimizers.learning_rate(params['learning_rate'], global_step,
                                    params.get('learning_rate_decay', 1.0),
                                    params.get('decay_steps', 1000))
    optimizer = optimizers.make_optimizer(params['optimizer'], rate)
    train_op = optimizer.minimize(loss, global_step=global_step)
    return EstimatorSpec(mode, predictions=predictions, loss=loss, train_op=train_op,
                         train_scalars={'loss': loss, 'accuracy': accuracy, 'learning_rate': rate})
