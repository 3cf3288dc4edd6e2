"""The one table of networks tfgraft knows by name, as TF-slim's nets_factory.

    name -> Network(card, builder, layer_table, input_size, standin)

card: the registry's GraphCard (graphs/registry.py); builder and layer_table:
the .npy-built networks' graph builder and layer table (None for frozen
graphs, which come as files); input_size: height = width; standin(path, seed,
width_divisor) writes a random-weight file in the real file's format.
graphs.factory, .npy loading, `tfgraft convert` and `tfgraft standin` all read it.
"""
import collections

from tfgraft.graphs import alexnet, registry, vgg16
from tfgraft.graphs.errors import GraftError

Network = collections.namedtuple('Network', 'card builder layer_table input_size standin')


def _npy_standin(name):
    def write(path, seed=0, width_divisor=1):
        from tfgraft.graphs.npy_standin import write_npy_standin
        return write_npy_standin(name, path, seed, width_divisor)
    return write


def _inception_standin(path, seed=0, width_divisor=1):
    """The frozen graph has one width: width_divisor does not apply."""
    from tfgraft.graphs.standin import write_inception_standin
    return write_inception_standin(path, seed)


NETWORKS = {
    'alexnet': Network(registry.ALEXNET, alexnet.alexnet, alexnet.layer_table, alexnet.INPUT_SIZE,
                       _npy_standin('alexnet')),
    'vgg16': Network(registry.VGG16, vgg16.vgg16, vgg16.layer_table, vgg16.INPUT_SIZE,
                     _npy_standin('vgg16')),
    'inception_v3': Network(registry.INCEPTION_V3, None, None, registry.INCEPTION_V3.input_size[0],
                            _inception_standin),
}


def npy_networks():
    """Names of the networks built from .npy/.npz weight dicts."""
    return tuple(name for name, network in NETWORKS.items() if network.builder)


def standin_networks():
    return tuple(name for name, network in NETWORKS.items() if network.standin)


def get_network(name):
    if name not in NETWORKS or not NETWORKS[name].builder:
        raise GraftError('unknown .npy network %r; known: %s' % (name, ', '.join(npy_networks())))
    return NETWORKS[name]
