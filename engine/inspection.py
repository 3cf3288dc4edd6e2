"""`tfgraft inspect PATH`: what tfgraft makes of a graph file, a Keras model (file or SavedModel
folder, converted in memory as `tfgraft convert keras --model` would), a bottleneck dir or a model_dir.

A bottleneck dir or a model_dir is described through the backbone its manifest
or params.json names (its sha256 checked), with what the folder itself holds.
"""
import os

from tfgraft.graphs import inspection
from tfgraft.graphs.errors import GraftError


def inspect_path(path, allow_ops=()):
    """A dict describing PATH (see graphs/inspection.py for the backbone part)."""
    from tfgraft.graphs.factory import load_described
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, 'manifest.json')):
        from tfgraft.records.reader import read_manifest
        manifest = read_manifest(path)
        info = _describe_backbone(load_described(manifest['graph'], allow_ops))
        counts = ', '.join('%s %d' % (split, manifest['splits'][split]['count'])
                           for split in manifest['splits'])
        info['records'] = '%s: %d classes, %d-d vectors (%s), %d skipped' % (
            path, len(manifest['classes']), manifest['bottleneck_size'], counts,
            len(manifest['skipped']))
        return info
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, 'params.json')):
        from tfgraft.engine.model_dir import read_params
        params = read_params(path)
        info = _describe_backbone(load_described(params['graph'], allow_ops))
        info['model'] = '%s: head %s, %d classes (%s)' % (
            path, params['head'], len(params['classes']), ', '.join(params['classes'][:10]))
        return info
    from tfgraft.graphs.keras_model import is_keras_model_path
    if is_keras_model_path(path):
        return _describe_keras_model(path, allow_ops)
    if os.path.isfile(path) and path.endswith('.pb'):
        from tfgraft.graphs.frozen import load_frozen_backbone
        return _describe_backbone(load_frozen_backbone(path, allow_ops))
    if not os.path.exists(path):
        raise GraftError('no such file or folder: %s' % path)
    raise GraftError('%s is not a frozen graph (.pb), a Keras model (.h5, .keras, SavedModel '
                     'folder), a bottleneck dir (manifest.json) or a model_dir (params.json)' % path)


def _describe_keras_model(path, allow_ops):
    """The backbone `tfgraft convert keras --model PATH` would write, converted in memory
    (nothing is written beside the user's file); sha256 is that of the graph it would write."""
    import hashlib
    from tfgraft.graphs.frozen import FrozenGraphBackbone, check_card
    from tfgraft.graphs.keras_model import keras_model_graph
    from tfgraft.graphs.safety import check_graph_ops
    graph_def, card, cut = keras_model_graph(path)
    check_graph_ops(graph_def, allow_ops, source='%s conversion' % path)
    measured = check_card(graph_def, card, path)
    sha256 = hashlib.sha256(graph_def.SerializeToString(deterministic=True)).hexdigest()
    how = 'converted in memory from the Keras model, cut after layer %s' % cut
    info = inspection.describe_frozen(FrozenGraphBackbone(graph_def, card, sha256, path, how, measured),
                                      graph_def)
    info['sha256_of'] = ' (of the graph `convert keras --model` writes, not of the file)'
    return info


def _describe_backbone(backbone):
    if getattr(backbone, 'network', ''):
        return inspection.describe_npy(backbone)
    from tfgraft.graphs.frozen import load_graph_def
    return inspection.describe_frozen(backbone, load_graph_def(backbone.path, allow_ops=_ops(backbone)))


def _ops(backbone):
    """The file's op types: it was already checked against the allowlist when loaded."""
    return {node.op for node in backbone.graph_def.node}
