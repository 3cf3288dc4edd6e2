"""One way to get a backbone, by file or by name, and to get it back later.

Every backbone object has `card` (a GraphCard), `sha256` (of its graph or
weight file), `path`, and `build(images, name)` which adds it to the default
graph fed by a float image batch and returns the bottleneck batch [N, D].
"""
import os

from tfgraft.graphs import networks, registry
from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.frozen import load_frozen_backbone

def load_backbone(graph=None, network=None, weights=None, layer=None, allow_ops=(),
                  input_tensor=None, bottleneck_tensor=None, input_size=None,
                  input_range=None, exact_graph=False):
    """A frozen graph (`graph` path, `network` its card name if known) or an .npy-built
    network (`network` name + `weights` file). exact_graph: a frozen graph runs as the
    file has it, not rewritten for inference (graphs/optimize.py)."""
    if network in networks.npy_networks():
        if not weights:
            raise GraftError('--backbone %s needs --weights (an .npy or .npz weight file)' % network)
        from tfgraft.graphs.npy_backbone import load_npy_backbone
        return load_npy_backbone(network, weights, layer)
    if not graph:
        if network:
            registry.get_card(network)   # an unknown name gets the list of known ones
            raise GraftError('--backbone %s is a frozen graph: give its file with --graph' % network)
        raise GraftError('give a frozen graph with --graph, or --backbone %s with --weights'
                         % '|'.join(networks.npy_networks()))
    flags_given = bool(input_tensor or bottleneck_tensor)
    card = registry.get_card(network) if network and not flags_given else None
    return load_frozen_backbone(graph, allow_ops, card=card, exact_graph=exact_graph,
                                input_tensor=input_tensor,
                                bottleneck_tensor=bottleneck_tensor, input_size=input_size,
                                input_range=input_range)


def describe(backbone):
    """What a manifest or params.json records to find the backbone again."""
    return {
        'card': backbone.card.to_dict(),
        'sha256': backbone.sha256,
        'path': os.path.abspath(backbone.path),
        'layer': getattr(backbone, 'layer', None),
        # 0: the file's graph ran as it is; else graphs/optimize.py's REWRITE_VERSION.
        'rewrite': getattr(backbone, 'rewrite_version', 0),
    }


def load_described(description, allow_ops=(), exact_graph=None):
    """Load the backbone a manifest or params.json describes, checking its sha256.

    A frozen graph runs rewritten for inference if it was when described (a
    description from before rewriting existed: as the file has it), unless
    exact_graph says otherwise."""
    card = registry.GraphCard.from_dict(description['card'])
    path = description['path']
    if not os.path.isfile(path):
        raise GraftError('the backbone file this was built with is gone: %s' % path)
    if card.network:
        from tfgraft.graphs.npy_backbone import load_npy_backbone
        loaded = load_npy_backbone(card.network, path, description.get('layer'))
    else:
        if exact_graph is None:
            exact_graph = not description.get('rewrite')
        loaded = load_frozen_backbone(path, allow_ops, card=card, exact_graph=exact_graph)
    if loaded.sha256 != description['sha256']:
        raise GraftError('%s has changed since it was used (sha256 %s..., expected %s...)'
                         % (path, loaded.sha256[:12], description['sha256'][:12]))
    return loaded
