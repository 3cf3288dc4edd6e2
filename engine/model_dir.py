"""A model_dir describes itself: params.json names the head, the classes and the graph.

    head, classes, bottleneck_size, hidden_units, dropout, optimizer,
    learning_rate, learning_rate_decay, decay_steps, train_batch_size,
    graph: {card, sha256, path, layer}   (as in the records' manifest)

Checkpoints (model.ckpt-<step>) and TensorBoard events sit beside it.
"""
import os

from tfgraft.graphs.errors import GraftError
from tfgraft.records.atomic import atomic_write_json, read_json

# What each head trains with unless told otherwise (the tutorials' choices).
HEAD_DEFAULTS = {
    'softmax': {'optimizer': 'sgd', 'learning_rate': 0.01, 'dropout': 0.0, 'hidden_units': []},
    'dnn': {'optimizer': 'adam', 'learning_rate': 0.001, 'dropout': 0.5, 'hidden_units': [1024, 512]},
    'logit': {'optimizer': 'rmsprop', 'learning_rate': 0.0001, 'dropout': 0.2, 'hidden_units': []},
}

PARAMS_NAME = 'params.json'
PARAMS_VERSION = 1
# What shapes the variables in a checkpoint: these must not change on resume.
STRUCTURE_KEYS = ('head', 'classes', 'bottleneck_size', 'hidden_units', 'optimizer')


def make_params(manifest, head='softmax', **flags):
    """params.json for a new model on a bottleneck dir's records; None flags take the head's default."""
    if head not in HEAD_DEFAULTS:
        raise GraftError('unknown head %r; choose one of %s' % (head, ', '.join(HEAD_DEFAULTS)))
    if len(manifest['classes']) < 2:
        raise GraftError('the records hold %d class (%s); training needs at least 2'
                         % (len(manifest['classes']), ', '.join(manifest['classes'])))
    if head == 'logit' and len(manifest['classes']) != 2:
        raise GraftError('the logit head is for 2 classes; the records have %d '
                         '(use --head softmax or dnn)' % len(manifest['classes']))
    params = {'params_version': PARAMS_VERSION, 'head': head,
              'classes': list(manifest['classes']),
              'bottleneck_size': int(manifest['bottleneck_size']),
              'graph': manifest['graph'],
              'learning_rate_decay': 1.0, 'decay_steps': 1000, 'train_batch_size': 100}
    params.update(HEAD_DEFAULTS[head])
    params.update({key: value for key, value in flags.items() if value is not None})
    params['hidden_units'] = [int(units) for units in params['hidden_units']]
    return params


def read_params(model_dir):
    path = os.path.join(model_dir, PARAMS_NAME)
    params = read_json(path)
    if params is None:
        raise GraftError('%s is not a tfgraft model_dir (no readable %s); train one first'
                         % (model_dir, PARAMS_NAME))
    return params


def write_params(model_dir, params):
    os.makedirs(model_dir, exist_ok=True)
    atomic_write_json(os.path.join(model_dir, PARAMS_NAME), params)


def check_same_model(saved, wanted, model_dir):
    """Refuse to resume a model_dir with a different head, class list or graph."""
    for key in STRUCTURE_KEYS:
        if saved.get(key) != wanted.get(key):
            raise GraftError('%s was trained with %s %s, not %s; use another --model_dir'
                             % (model_dir, key, _short(saved.get(key)), _short(wanted.get(key))))
    check_same_graph(saved, wanted['graph'], model_dir, 'these records')


def check_same_graph(params, graph, model_dir, what):
    if params['graph']['sha256'] != graph['sha256']:
        raise GraftError('%s was trained on bottlenecks of graph %s (sha256 %s...), %s come from '
                         '%s (sha256 %s...)' % (model_dir, params['graph']['card']['name'],
                                                params['graph']['sha256'][:12], what,
                                                graph['card']['name'], graph['sha256'][:12]))


def check_records_match(params, manifest, model_dir, bottleneck_dir):
    """Refuse records of another graph or class list than the model_dir's."""
    check_same_graph(params, manifest['graph'], model_dir, bottleneck_dir)
    if list(manifest['classes']) != list(params['classes']):
        raise GraftError('%s was trained on classes %s; %s holds %s'
                         % (model_dir, _short(params['classes']), bottleneck_dir,
                            _short(manifest['classes'])))


def _short(value, limit=80):
    text = ','.join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= limit else text[:limit] + '...'
