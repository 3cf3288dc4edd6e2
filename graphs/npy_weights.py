"""Weight dicts of the .npy-built networks, and the layers that read them by name.

A weight dict maps a layer name to (weights, biases), float32 arrays:
{'conv1': (w [11, 11, 3, 96], b [96]), ...}, as bvlc_alexnet.npy and
vgg16.npy hold them. Those files are pickles (np.save of a dict), and
unpickling runs whatever the file names, so they are read here with an
unpickler that admits only numpy arrays and plain containers: anything else
is refused before it runs. tfgraft writes .npz files (no pickle at all):
one array per 'layer/weights' and 'layer/biases'.

check_weights compares a dict with the shapes a layer table asks for
(graphs/layers.py), before any op is added.
"""
import os
import pickle
import zipfile

import numpy as np
from numpy.lib import format as npy_format

from tfgraft.graphs.errors import GraftError
from tfgraft.records.atomic import atomic_write

PARTS = ('weights', 'biases')

# numpy's own helpers for rebuilding arrays and scalars, taken from numpy
# itself so that both the numpy 1 (numpy.core) and numpy 2 (numpy._core)
# names in old and new files resolve to them without importing either path.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]
SAFE_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy.core.multiarray', 'scalar'): _SCALAR,
    ('numpy._core.multiarray', 'scalar'): _SCALAR,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays, dicts, lists, tuples, strings and numbers only."""

    def find_class(self, module, name):
        found = SAFE_GLOBALS.get((module, name))
        if found is None:
            raise GraftError('refused: the pickle in the weight file asks for %s.%s; only numpy '
                             'arrays and plain containers are allowed' % (module, name))
        return found

    def persistent_load(self, pid):
        raise GraftError('refused: the pickle in the weight file uses persistent ids')


def _unpickle_npy(path):
    """The object an np.save(allow_pickle=True) file holds, unpickled safely."""
    with open(path, 'rb') as handle:
        try:
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(handle)
            else:
                raise GraftError('%s: .npy format version %d.%d is not supported'
                                 % ((path,) + version))
        except ValueError as error:
            raise GraftError('%s is not a .npy file: %s' % (path, error)) from None
        if not dtype.hasobject:
            raise GraftError('%s holds one %s array of shape %s, not a dict of layer weights'
                             % (path, dtype, shape))
        try:
            # latin1 reads the Python 2 pickles the published files are.
            return _ArraysOnlyUnpickler(handle, encoding='latin1').load()
        except GraftError as error:
            raise GraftError('%s %s' % (path, error)) from None
        except Exception as error:  # untrusted bytes: any failure is a bad file
            raise GraftError('%s is truncated or not a weight dict (%s: %s)'
                             % (path, type(error).__name__, error)) from None


def _text(key):
    return key.decode('latin1') if isinstance(key, bytes) else key


def _float_array(value, path, layer, part):
    if not isinstance(value, np.ndarray) or value.dtype.kind not in 'fiu':
        raise GraftError('%s: layer %s %s is not a numeric array' % (path, layer, part))
    return value.astype(np.float32, copy=False)


def _layer_entry(entry, path, layer):
    """[weights, biases] or {'weights': w, 'biases': b} -> (w, b) float32."""
    if isinstance(entry, dict):
        entry = {_text(key): value for key, value in entry.items()}
        if set(entry) != set(PARTS):
            raise GraftError('%s: layer %s holds %s; expected weights and biases'
                             % (path, layer, ', '.join(sorted(map(str, entry)))))
        entry = [entry[part] for part in PARTS]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2:
        raise GraftError('%s: layer %s is not a [weights, biases] pair' % (path, layer))
    return tuple(_float_array(value, path, layer, part) for value, part in zip(entry, PARTS))


def _weights_from_pickle(path):
    held = _unpickle_npy(path)
    if isinstance(held, np.ndarray) and held.shape == () and held.dtype.hasobject:
        held = held.item()
    if not isinstance(held, dict):
        raise GraftError('%s holds a %s, not a dict of layer weights' % (path, type(held).__name__))
    weights = {}
    for key, entry in held.items():
        layer = _text(key)
        if not isinstance(layer, str):
            raise GraftError('%s: layer name %r is not a string' % (path, key))
        weights[layer] = _layer_entry(entry, path, layer)
    return weights


def _weights_from_npz(path):
    try:
        with np.load(path, allow_pickle=False) as arrays:
            parts = {key: arrays[key] for key in arrays.files}
    except ValueError as error:  # object arrays need pickle: refused
        raise GraftError('%s: %s' % (path, str(error).splitlines()[0])) from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise GraftError('%s is truncated or not an .npz file: %s' % (path, error)) from None
    except MemoryError:
        raise GraftError('%s: an array header claims more memory than there is' % path) from None
    layers = {}
    for key, value in parts.items():
        layer, _, part = key.rpartition('/')
        if not layer or part not in PARTS:
            raise GraftError("%s: array %r is not named 'layer/weights' or 'layer/biases'"
                             % (path, key))
        layers.setdefault(layer, {})[part] = value
    return {layer: _layer_entry(entry, path, layer) for layer, entry in layers.items()}


def load_weights(path):
    """{layer: (weights, biases)} from an .npy weight dict (pickle) or an .npz file."""
    if not os.path.isfile(path):
        raise GraftError('weight file not found: %s' % path)
    with open(path, 'rb') as handle:
        magic = handle.read(6)
    if magic == npy_format.MAGIC_PREFIX:
        return _weights_from_pickle(path)
    if magic[:4] == b'PK\x03\x04':
        return _weights_from_npz(path)
    raise GraftError('%s is neither an .npy nor an .npz weight file' % path)


def save_weights(weights, path):
    """Write {layer: (weights, biases)} as .npz ('layer/weights', 'layer/biases')."""
    if not path.endswith('.npz'):
        raise GraftError('weight files are written as .npz: %s' % path)
    arrays = {}
    for layer, (layer_weights, biases) in weights.items():
        arrays[layer + '/weights'] = np.asarray(layer_weights, np.float32)
        arrays[layer + '/biases'] = np.asarray(biases, np.float32)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
    return path


def check_weights(network, weights, expected):
    """Raise a one-line GraftError unless weights hold every layer of `expected`.

    `expected` maps a layer name to (weights shape, biases shape).
    """
    for layer, (weights_shape, biases_shape) in expected.items():
        if layer not in weights:
            raise GraftError('%s weights have no layer %s (expected weights %s, biases %s)'
                             % (network, layer, list(weights_shape), list(biases_shape)))
        found = tuple(tuple(array.shape) for array in weights[layer])
        if found != (tuple(weights_shape), tuple(biases_shape)):
            raise GraftError('%s layer %s: expected weights %s, biases %s; '
                             'found weights %s, biases %s'
                             % (network, layer, list(weights_shape), list(biases_shape),
                                list(found[0]), list(found[1])))


def fc8_width(weights, num_classes=None):
    """num_classes if given, else the classes fc8 holds in `weights` (1000, ImageNet's, without fc8)."""
    if num_classes is not None:
        return num_classes
    return weights['fc8'][1].shape[0] if 'fc8' in weights else 1000
