"""The rootstock: a small network tfgraft trains itself, so `tfgraft demo` needs no download.

A few conv + ReLU + max-pool layers learn to tell which bundled photo a patch
was cut from (engine/demo_images.py); the global average of the last conv layer
is the bottleneck. Training runs in one tf.compat.v1 session on variables;
freezing builds the same layer table again on constants named after the
layers, so the .pb holds only Placeholder, Const and math ops and loads
through graphs.frozen like any downloaded graph.
"""
import os
import time

import numpy as np
import tensorflow as tf

from tfgraft.graphs import registry
from tfgraft.graphs.frozen import write_card_file
from tfgraft.graphs.safety import check_graph_ops
from tfgraft.records import demo_images
from tfgraft.records.atomic import atomic_write_bytes
from tfgraft.records.progress import progress_bar

tf1 = tf.compat.v1

INPUT_SIZE = 32
INPUT_RANGE = (-1.0, 1.0)          # x / 127.5 - 1
SCOPE = 'rootstock'

# (name, kernel size, output channels, 2x2 max-pool after?): 32x32x3 -> 4x4x128
ROOTSTOCK_LAYERS = (
    ('conv1', 3, 16, True),
    ('conv2', 3, 32, True),
    ('conv3', 3, 64, True),
    ('conv4', 3, 128, False),
)
BOTTLENECK_SIZE = ROOTSTOCK_LAYERS[-1][2]

DEFAULT_STEPS = 300
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
CROP_MARGIN = 8                    # patches are cut this much larger, then randomly cropped


def rootstock_card():
    return registry.GraphCard(
        name=SCOPE,
        input_tensor='input:0',
        input_kind='image',
        input_size=(INPUT_SIZE, INPUT_SIZE),
        input_range=INPUT_RANGE,
        bottleneck_tensor=SCOPE + '/bottleneck:0',
        bottleneck_size=BOTTLENECK_SIZE,
    )


def initial_params(num_classes, seed):
    """He-normal weights, zero biases, keyed by '<layer>/weights' and '<layer>/biases'."""
    rng = np.random.RandomState(seed)
    params = {}
    channels = 3
    for name, kernel, out_channels, _ in ROOTSTOCK_LAYERS:
        scale = np.sqrt(2.0 / (kernel * kernel * channels))
        params[name + '/weights'] = rng.normal(0.0, scale, (kernel, kernel, channels, out_channels))
        params[name + '/biases'] = np.zeros(out_channels)
        channels = out_channels
    params['logits/weights'] = rng.normal(0.0, np.sqrt(1.0 / channels), (channels, num_classes))
    params['logits/biases'] = np.zeros(num_classes)
    return {name: value.astype(np.float32) for name, value in params.items()}


def rootstock_net(images, params):
    """images [N, S, S, 3] in INPUT_RANGE -> (logits, end_points); params: name -> tensor."""
    end_points = {}
    net = images
    for name, _, _, pool in ROOTSTOCK_LAYERS:
        net = tf.nn.conv2d(net, params[name + '/weights'], 1, 'SAME', name=name + '/Conv2D')
        net = tf.nn.relu(tf.nn.bias_add(net, params[name + '/biases'], name=name + '/BiasAdd'),
                         name=name)
        end_points[name] = net
        if pool:
            pool_name = name.replace('conv', 'pool')
            net = tf.nn.max_pool2d(net, 2, 2, 'VALID', name=pool_name)
            end_points[pool_name] = net
    net = tf.reduce_mean(net, axis=[1, 2], name='bottleneck')
    end_points['bottleneck'] = net
    logits = tf.nn.bias_add(tf.matmul(net, params['logits/weights'], name='logits/MatMul'),
                            params['logits/biases'], name='logits')
    end_points['logits'] = logits
    end_points['predictions'] = tf.nn.softmax(logits, name='predictions')
    return logits, end_points


def to_input_range(pixels):
    low, high = INPUT_RANGE
    return pixels.astype(np.float32) * ((high - low) / 255.0) + low


def augmented_batch(patches, labels, rng):
    """A random batch, each patch randomly cropped to INPUT_SIZE and maybe mirrored."""
    picks = rng.randint(len(patches), size=BATCH_SIZE)
    batch = np.empty((BATCH_SIZE, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    for row, pick in enumerate(picks):
        top, left = rng.randint(patches.shape[1] - INPUT_SIZE + 1, size=2)
        patch = patches[pick, top:top + INPUT_SIZE, left:left + INPUT_SIZE]
        batch[row] = patch[:, ::-1] if rng.rand() < 0.5 else patch
    return to_input_range(batch), labels[picks]


def train_params(patches, labels, num_classes, seed, steps, progress):
    """Train on texture patches; returns the trained params as numpy arrays.

    Every random choice (initial weights, batches, crops, flips) is drawn in
    numpy from `seed`; the graph holds no random op, and the CPU kernels used
    here give bit-identical weights run after run on one machine.
    """
    rng = np.random.RandomState(seed + 1)
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, INPUT_SIZE, INPUT_SIZE, 3], name='images')
        targets = tf1.placeholder(tf.int64, [None], name='labels')
        with tf1.variable_scope(SCOPE):
            params = {name: tf1.get_variable(name, initializer=value)
                      for name, value in initial_params(num_classes, seed).items()}
            logits, _ = rootstock_net(images, params)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=targets, logits=logits))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), targets), tf.float32))
        train_op = tf1.train.AdamOptimizer(LEARNING_RATE).minimize(loss)
        bar = progress_bar(steps, 'rootstock training', 'steps', ['loss', 'accuracy']) if progress else None
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            for step in range(steps):
                batch_images, batch_labels = augmented_batch(patches, labels, rng)
                _, loss_value, accuracy_value = session.run(
                    [train_op, loss, accuracy], {images: batch_images, targets: batch_labels})
                if bar:
                    bar.update(step + 1, [('loss', loss_value), ('accuracy', accuracy_value)])
            return session.run(params)


def frozen_graph_def(params):
    """The inference graph on constants: 'input' -> 'rootstock/bottleneck', '.../predictions'."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, INPUT_SIZE, INPUT_SIZE, 3], name='input')
        with tf.name_scope(SCOPE):
            constants = {name: tf.constant(value, name=name) for name, value in sorted(params.items())}
            rootstock_net(images, constants)
    graph_def = graph.as_graph_def()
    check_graph_ops(graph_def, source='rootstock')
    return graph_def


def build_rootstock(output_pb, seed=0, steps=DEFAULT_STEPS, progress=True):
    """Train the rootstock, freeze it to output_pb with its sidecar card; returns the card."""
    started = time.time()
    patches, labels, class_names = demo_images.texture_patches(
        INPUT_SIZE + CROP_MARGIN, seed=seed)
    if progress:
        print('Training the rootstock network on %d patches of %d bundled photos'
              % (len(patches), len(class_names)))
    params = train_params(patches, labels, len(class_names), seed, steps, progress)
    card = rootstock_card()
    folder = os.path.dirname(os.path.abspath(output_pb))
    os.makedirs(folder, exist_ok=True)
    write_card_file(card, output_pb)     # first: a .pb that exists always has its card
    atomic_write_bytes(output_pb, frozen_graph_def(params).SerializeToString(deterministic=True))
    if progress:
        print('Rootstock written to %s (%.0f s)' % (output_pb, time.time() - started))
    return card
