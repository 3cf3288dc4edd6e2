"""Fine-tune deeper layers of a backbone on the Estimator: images -> backbone -> head.

Two kinds of model_dir, told apart by params['fine_tune']['kind']:

  frozen  a frozen graph's layers from K on (graphs/unfreeze.py) under the
          head `tfgraft train` grafted (heads.py, same variable names). Stage 1
          is that head trained on cached bottlenecks; stage 2 (here) restores
          the head from stage 1's checkpoint, starts the backbone variables
          from the graph's constants, and trains both with a new optimizer.
  npy     AlexNet / VGG16 from a weight dict as kratzert's finetune_alexnet:
          fc8 re-initialised for the new classes, --train_layers variables,
          every other layer constant. fc8 is the head: final_result = softmax(fc8).

params.json gains
    fine_tune: {kind, fine_tune_at (frozen) | network, train_layers (npy),
                stages: [{stage, start_step, optimizer, learning_rate}, ...]}
and `restored_backbone` gives predict/export the backbone with its trained values.
"""
import os

import numpy as np
import tensorflow as tf

from tfgraft.engine import heads
from tfgraft.engine.augment import augment
from tfgraft.engine.estimator import ModeKeys
from tfgraft.engine.inputs import Inputs
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.factory import load_described
from tfgraft.graphs.preprocessing import load_preprocessed
from tfgraft.records.pipeline import usable_cores, without_autotune

tf1 = tf.compat.v1

NPY_HEAD_LAYER = 'fc8'
NPY_KEEP_PROB = 0.5          # dropout in fc6/fc7 while training, as kratzert's finetune.py


def image_input_fn(paths, labels, card, batch_size, training, augmentation=None, seed=0,
                   num_shards=1, shard_index=0):
    """Images decoded, preprocessed (and augmented) in tf.data; features {'image': [N, h, w, 3]}.

    training: shuffled endless batches. Otherwise every image in one batch, repeated
    (the Estimator's validation runs one batch), and `batches` = 1. On a cluster a
    worker reads every num_shards-th image (Dataset.shard).
    """
    paths, labels = list(paths), np.asarray(labels, np.int64)

    @tf.autograph.experimental.do_not_convert    # plain graph code (tf.cond where it branches)
    def load(path, label):
        return load_preprocessed(path, card), label

    @tf.autograph.experimental.do_not_convert
    def load_augmented(draw, example):
        image, label = load(*example)
        return augment(image, augmentation, card, tf.stack([tf.constant(seed, tf.int64), draw])), label

    def input_fn():
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        if num_shards > 1:
            dataset = dataset.shard(num_shards, shard_index)
        if training:
            dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()
            if augmentation:     # draw k of the run gets the stateless seed (seed, k)
                dataset = dataset.enumerate()
            dataset = dataset.map(load_augmented if augmentation else load,
                                  num_parallel_calls=usable_cores())
            dataset = dataset.batch(batch_size, drop_remainder=True)
        else:
            dataset = dataset.map(load).batch(batch_size or len(paths)).repeat()
        iterator = tf1.data.make_one_shot_iterator(without_autotune(dataset.prefetch(2)))

        def next_batch():
            images, truth = iterator.get_next()
            return {'image': images}, truth
        batches = None if training else -(-len(paths) // (batch_size or len(paths)))
        return Inputs(next_batch, batches, [])
    return input_fn


def _frozen_bottlenecks(images, params):
    from tfgraft.graphs.unfreeze import UnfrozenBackbone
    backbone = UnfrozenBackbone(load_described(params['graph']),
                                fine_tune_at=params['fine_tune']['fine_tune_at'])
    return backbone.build(images, 'backbone')


def _npy_logits(images, params, training):
    from tfgraft.graphs.networks import get_network
    backbone = load_described(params['graph'])
    tuned = params['fine_tune']
    train_layers = [name for name in tuned['train_layers'] if name != NPY_HEAD_LAYER]
    logits, _ = get_network(tuned['network']).builder(
        images, backbone.weights, num_classes=len(params['classes']),
        keep_prob=NPY_KEEP_PROB if training else 1.0, train_layers=train_layers,
        skip_layers=(NPY_HEAD_LAYER,), width_divisor=backbone.width_divisor, scope=tuned['network'])
    return logits


def _npy_loss(class_count):
    """kratzert's finetune.py: softmax cross-entropy on fc8."""
    def loss(logits, labels):
        one_hot = tf.one_hot(labels, class_count)
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=one_hot, logits=logits),
                              name='cross_entropy')
    return loss


def model_fn(features, labels, mode, params):
    """The Estimator model_fn of a fine-tuned model: features {'image': preprocessed batch}."""
    if params['fine_tune']['kind'] == 'npy':
        logits = _npy_logits(features['image'], params, mode == ModeKeys.TRAIN)
        return heads.classifier_spec(logits, tf.nn.softmax(logits, name='final_result'), labels,
                                     mode, params, _npy_loss(len(params['classes'])))
    bottlenecks = _frozen_bottlenecks(features['image'], params)
    return heads.model_fn({'bottleneck': bottlenecks}, labels, mode, params)


def warm_start(estimator, input_fn):
    """Write a first checkpoint for a new stage: what the latest checkpoint holds of
    the model's trainable variables (and the global step) restored, the rest (backbone
    variables from the constants, fc8, the new optimizer's slots) initialised.

    Returns the global step it starts at.
    """
    previous = tf1.train.latest_checkpoint(estimator.model_dir) if os.path.isdir(estimator.model_dir) else None
    saved = tf.train.load_checkpoint(previous).get_variable_to_shape_map() if previous else {}
    with estimator.new_graph().as_default():
        global_step = tf1.train.get_or_create_global_step()
        estimator.call_model_fn(input_fn(), ModeKeys.TRAIN)
        wanted = tf1.trainable_variables() + [global_step]
        restored = [v for v in wanted if v.op.name in saved
                    and saved[v.op.name] == v.shape.as_list()]
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            if restored:
                tf1.train.Saver(restored).restore(session, previous)
            tf1.train.Saver().save(session, os.path.join(estimator.model_dir, 'model.ckpt'),
                                   global_step=global_step)
            return int(session.run(global_step)), [v.op.name for v in restored]


def predict_rows(model_dir, params, checkpoint, paths, batch_size=16):
    """{'probabilities', 'class_id'} per image file of a fine-tuned model_dir, restored from checkpoint."""
    from tfgraft.engine.estimator import Estimator
    card = load_described(params['graph']).card
    inputs = image_input_fn(paths, [0] * len(paths), card, batch_size, False)
    return Estimator(model_fn, model_dir, params).predict(inputs, checkpoint)


def restored_backbone(params, checkpoint):
    """The model's backbone with fine-tuned values from `checkpoint` (frozen graphs), for
    predict/export; a model_dir not fine-tuned gets its backbone as described."""
    backbone = load_described(params['graph'])
    tuned = params.get('fine_tune')
    if not tuned:
        return backbone
    if tuned['kind'] != 'frozen':
        raise GraftError('this model_dir is a fine-tuned %s whose fc8 is the head; it cannot be '
                         'exported as backbone + head yet (`tfgraft predict` reads it)' % tuned['network'])
    from tfgraft.graphs.frozen import FrozenGraphBackbone
    from tfgraft.graphs.unfreeze import checkpoint_values, fold_to_frozen
    values = checkpoint_values(checkpoint, backbone.graph_def)
    return FrozenGraphBackbone(fold_to_frozen(backbone.graph_def, values), backbone.card,
                               backbone.sha256, backbone.path)


def _stage_scalar(summaries_dir, stage, step):
    from tfgraft.engine.estimator import scalar_summary
    with tf.Graph().as_default():
        writer = tf1.summary.FileWriter(os.path.join(summaries_dir, 'train'))
        writer.add_summary(scalar_summary('stage', stage), step)
        writer.close()


def _image_splits(image_dir, validation_percentage):
    from tfgraft.records.listing import list_images
    listed = list_images(image_dir, validation_percentage, 0)
    splits = {}
    for entry in listed.entries:
        path = os.path.join(listed.image_dir, entry.path)
        splits.setdefault(entry.split, ([], []))
        splits[entry.split][0].append(path)
        splits[entry.split][1].append(entry.label)
    if not splits.get('train'):
        raise GraftError('%s has no training images' % image_dir)
    return listed.classes, splits


STAGE_TWO_LEARNING_RATE = 3e-5


def frozen_params(params, graph, fine_tune_at, fine_tune_from, learning_rate, optimizer, model_dir):
    """Stage 2's params from stage 1's: same head and classes, the backbone unfrozen from K."""
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.graphs.factory import describe, load_backbone
    from tfgraft.graphs.unfreeze import first_tuned_at, list_layers
    backbone = load_backbone(graph=graph)
    model_dirs.check_same_graph(params, describe(backbone), model_dir, graph)
    # fine_tune_at counts as the card does (Keras's layer index for converted Keras models).
    first = first_tuned_at(list_layers(backbone.graph_def, backbone.card), backbone.card,
                           fine_tune_at, fine_tune_from)
    tuned = params.get('fine_tune')
    if tuned and tuned['fine_tune_at'] != first:
        raise GraftError('%s is fine-tuned from layer %d, not %d; use another --model_dir'
                         % (model_dir, tuned['fine_tune_at'], first))
    params = dict(params)
    if not tuned:
        params['optimizer'] = optimizer or 'rmsprop'
        # The MobileNetV2 tutorial's stage 2: RMSprop at 3e-5 (its Adam 3e-4 over 10). Stage 1's
        # own rate / 10 would be 1e-3 after the softmax head's SGD 0.01: too high for the base.
        params['learning_rate'] = learning_rate or STAGE_TWO_LEARNING_RATE
        params['learning_rate_decay'] = 1.0
        params['fine_tune'] = {'kind': 'frozen', 'fine_tune_at': first, 'stages': []}
    return params


def npy_params(params, classes, network, weights, train_layers, learning_rate, optimizer, model_dir):
    """A new (or the saved) .npy fine-tuning model's params."""
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.graphs.factory import describe, load_backbone
    backbone = load_backbone(network=network, weights=weights, layer='relu7')
    # No grafted head and no bottleneck: the network's own fc8 (fine_tune.head_layer) is the
    # head. Files from before this naming say 'head': 'fc8', 'bottleneck_size': len(classes);
    # nothing reads those two keys of a fine-tuned .npy model_dir, so they still load.
    wanted = {'params_version': model_dirs.PARAMS_VERSION, 'head': None,
              'classes': list(classes), 'graph': describe(backbone),
              'optimizer': optimizer or 'sgd', 'learning_rate': learning_rate or 0.01,
              'fine_tune': {'kind': 'npy', 'network': network, 'head_layer': NPY_HEAD_LAYER,
                            'train_layers': sorted(train_layers), 'stages': []}}
    if params is None:
        return wanted
    if params.get('fine_tune', {}).get('train_layers') != wanted['fine_tune']['train_layers'] \
            or params['classes'] != wanted['classes']:
        raise GraftError('%s was fine-tuned with other classes or --train_layers; use another --model_dir'
                         % model_dir)
    model_dirs.check_same_graph(params, wanted['graph'], model_dir, weights)
    return params


def _model_params(image_dir, model_dir, classes, graph, network, weights, fine_tune_at,
                  fine_tune_from, train_layers, bottleneck_dir, learning_rate, optimizer, seed,
                  stage_one, progress):
    """This stage's params: stage 2 over a frozen graph's head (stage 1 run first when the
    model_dir has none), or an .npy network's."""
    from tfgraft.engine import model_dir as model_dirs
    has_params = os.path.isfile(os.path.join(model_dir, model_dirs.PARAMS_NAME))
    if network and not graph:
        return npy_params(model_dirs.read_params(model_dir) if has_params else None, classes,
                          network, weights, train_layers, learning_rate, optimizer, model_dir)
    if not graph:
        raise GraftError('give --graph (frozen graph) or --backbone alexnet|vgg16 with --weights')
    if not has_params:
        if not bottleneck_dir:
            raise GraftError('%s holds no trained head; run `tfgraft train` first or give '
                             '--bottleneck_dir for stage 1' % model_dir)
        from tfgraft.engine.training import TrainingRun, head_settings, train_model
        settings, run = stage_one or (head_settings(), TrainingRun(seed=seed))
        train_model(settings, bottleneck_dir, model_dir, run, progress=progress)
    saved = model_dirs.read_params(model_dir)
    if list(saved['classes']) != list(classes):
        raise GraftError('%s was trained on classes %s; %s holds %s'
                         % (model_dir, ','.join(saved['classes']), image_dir, ','.join(classes)))
    return frozen_params(saved, graph, fine_tune_at, fine_tune_from, learning_rate, optimizer,
                         model_dir)


def _start_stage(estimator, params, train_fn):
    """A new stage's first checkpoint and its entry in params' stages (once per stage)."""
    stages = params['fine_tune']['stages']
    if stages:
        return
    if params['fine_tune']['kind'] == 'frozen':
        estimator.latest_checkpoint()    # stage 2 needs stage 1's head: refuse without it
    start, restored = warm_start(estimator, train_fn)
    stage = 2 if params['fine_tune']['kind'] == 'frozen' else 1
    stages.append({'stage': stage, 'start_step': start, 'optimizer': params['optimizer'],
                   'learning_rate': params['learning_rate'], 'restored': restored})
    _stage_scalar(estimator.model_dir, stage, start)


def finetune(image_dir, model_dir, graph=None, network=None, weights=None, fine_tune_at=None,
             fine_tune_from=None, train_layers=('fc8',), bottleneck_dir=None, epochs=1,
             learning_rate=None, optimizer=None, train_batch_size=32, validation_percentage=10,
             seed=0, augmentation=None, stage_one=None, progress=False):
    """Fine-tune on image_dir in model_dir; returns {'start_step', 'before', 'after', 'curves'}.

    before/after: validation metrics on the images at the start and end of this stage.
    A frozen-graph model_dir with no head yet gets stage 1 first: engine.training.train_model
    on bottleneck_dir with stage_one = (head settings, TrainingRun); default `tfgraft train`'s
    defaults with this seed.
    """
    from tfgraft.engine import cluster, curves, model_dir as model_dirs
    from tfgraft.engine.estimator import Estimator, RunConfig
    from tfgraft.engine.training import progress_bar as training_progress
    task = cluster.task_from_env()
    if task is not None and not task.is_chief:      # a ps, worker or evaluator (engine/cluster.py)
        return _finetune_task(task, image_dir, model_dir, train_batch_size, validation_percentage,
                              seed, augmentation)
    classes, splits = _image_splits(image_dir, validation_percentage)
    if task is not None and graph and not os.path.isfile(os.path.join(model_dir, model_dirs.PARAMS_NAME)):
        raise GraftError('on a cluster, finetune continues a trained head: run `tfgraft train` '
                         'into %s first' % model_dir)
    params = _model_params(image_dir, model_dir, classes, graph, network, weights, fine_tune_at,
                           fine_tune_from, train_layers, bottleneck_dir, learning_rate, optimizer,
                           seed, stage_one, progress)
    if augmentation:
        print('tfgraft: augmentation is on: images are streamed through the backbone, '
              'bottlenecks are not cached')
    card = load_described(params['graph']).card
    train_paths, train_labels = splits['train']
    steps_per_epoch = max(1, len(train_paths) // train_batch_size)
    batch_size = min(train_batch_size, len(train_paths))
    shards = (task.num_workers, task.worker_index) if task else (1, 0)
    train_fn = image_input_fn(train_paths, train_labels, card,
                              min(batch_size, -(-len(train_paths) // shards[0])), True,
                              augmentation, seed, *shards)
    validation_fn = None
    if splits.get('validation'):
        validation_fn = image_input_fn(*splits['validation'], card, None, False)
    config = RunConfig(save_checkpoints_steps=steps_per_epoch, steps_per_run=steps_per_epoch,
                       tf_random_seed=seed)
    estimator = Estimator(model_fn, model_dir, params, config)
    _start_stage(estimator, params, train_fn)
    model_dirs.write_params(model_dir, params)
    before = estimator.evaluate(validation_fn) if validation_fn else None
    step = int(tf.train.load_checkpoint(estimator.latest_checkpoint()).get_tensor('global_step'))
    max_steps = step + epochs * steps_per_epoch
    print('fine-tuning %s on %d images of %d classes, steps %d to %d, %s at %g'
          % (card.name, len(train_paths), len(classes), step, max_steps, params['optimizer'],
             params['learning_rate']))
    shown = (('loss', 'loss'), ('accuracy', 'acc'), ('validation_accuracy', 'val_acc'))
    bar = training_progress(max_steps, shown, first_step=step, label='fine-tuning') if progress else None
    if task is None:
        estimator.train(train_fn, max_steps, validation_fn, steps_per_epoch, bar)
    else:       # the chief of a cluster: the workers train their parts of the images with it
        cluster.write_stage(model_dir, step, max_steps)
        server = cluster.start_server(task)
        cluster.train(estimator, train_fn, max_steps, task, server, bar)
        cluster.signal_done(task, server)
    after = estimator.evaluate(validation_fn) if validation_fn else None
    if before and after:
        print('validation accuracy: %.1f%% before, %.1f%% after (N=%d)'
              % (before['accuracy'] * 100, after['accuracy'] * 100, after['count']))
    png = curves.save_curves(model_dir, curves.read_history(model_dir))
    return {'start_step': step, 'before': before, 'after': after, 'curves': png, 'params': params}


def _finetune_task(task, image_dir, model_dir, batch_size, validation_percentage, seed,
                   augmentation):
    """A non-chief task of a fine-tuning cluster: the ps serves until the chief is done; a
    worker trains its part of the images in the chief's run; an evaluator evaluates each
    new checkpoint on the validation images."""
    from tfgraft.engine import cluster, model_dir as model_dirs
    from tfgraft.engine.estimator import Estimator, RunConfig
    if task.type == 'ps':
        cluster.run_ps(task)
        return {'task': task}
    classes, splits = _image_splits(image_dir, validation_percentage)
    stage = cluster.wait_for_stage(model_dir, task)
    params = model_dirs.read_params(model_dir)
    if list(params['classes']) != list(classes):
        raise GraftError('%s was trained on classes %s; %s holds %s'
                         % (model_dir, ','.join(params['classes']), image_dir, ','.join(classes)))
    card = load_described(params['graph']).card
    estimator = Estimator(model_fn, model_dir, params, RunConfig(tf_random_seed=seed))
    if task.type == 'evaluator':
        if not splits.get('validation'):
            raise GraftError('the evaluator needs validation images; %s has none' % image_dir)
        result = cluster.run_evaluator(
            estimator, image_input_fn(*splits['validation'], card, None, False), stage['max_steps'])
        return {'task': task, 'after': result}
    paths, labels = splits['train']
    own = -(-len(paths) // task.num_workers)
    train_fn = image_input_fn(paths, labels, card, min(batch_size, own), True, augmentation,
                              seed + task.worker_index, task.num_workers, task.worker_index)
    server = cluster.start_server(task)
    return {'task': task, 'train': cluster.train(estimator, train_fn, stage['max_steps'], task, server)}
