"""Weight files: pickled .npy dicts are read without running anything they name."""
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest
from numpy.lib import format as npy_format

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.npy_weights import load_weights, save_weights


def small_weights():
    rng = np.random.default_rng(0)
    return {'conv1': (rng.standard_normal((3, 3, 3, 4), dtype=np.float32),
                      rng.standard_normal(4, dtype=np.float32)),
            'fc6': (rng.standard_normal((16, 5), dtype=np.float32),
                    rng.standard_normal(5, dtype=np.float32))}


def assert_same_weights(loaded, expected):
    assert sorted(loaded) == sorted(expected)
    for layer, (weights, biases) in expected.items():
        assert loaded[layer][0].dtype == np.float32
        np.testing.assert_array_equal(loaded[layer][0], weights)
        np.testing.assert_array_equal(loaded[layer][1], biases)


# Payloads that would create `marker` if unpickled by plain pickle.
class SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, ('touch %s' % self.marker,)


class SubprocessCall(SystemCall):
    def __reduce__(self):
        return subprocess.call, (['touch', self.marker],)


class ExecCall(SystemCall):
    def __reduce__(self):
        return exec, ('open(%r, "w").close()' % self.marker,)


class EvalCall(SystemCall):
    def __reduce__(self):
        return eval, ('open(%r, "w").close()' % self.marker,)


class OpenCall(SystemCall):
    def __reduce__(self):
        return open, (self.marker, 'w')


def write_object_npy(path, payload, protocol=4):
    """An .npy file as np.save writes a dict: object header, then the pickle."""
    with open(path, 'wb') as handle:
        npy_format.write_array_header_1_0(
            handle, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        pickle.dump(payload, handle, protocol=protocol)


@pytest.mark.parametrize('payload_class', [SystemCall, SubprocessCall, ExecCall, EvalCall,
                                           OpenCall])
@pytest.mark.parametrize('nested', [False, True])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, payload_class, nested):
    marker = str(tmp_path / 'created_by_payload')
    payload = payload_class(marker)
    if nested:  # hidden inside an otherwise good weight dict
        arrays = np.zeros(3, np.float32)
        payload = np.array({'conv1': [arrays, arrays], 'fc6': [payload, arrays]}, dtype=object)
    path = str(tmp_path / 'evil.npy')
    write_object_npy(path, payload)
    with pytest.raises(GraftError) as error:
        load_weights(path)
    assert 'refused' in str(error.value) and 'evil.npy' in str(error.value)
    assert '\n' not in str(error.value)
    assert not os.path.exists(marker)


def test_the_payload_is_real_for_plain_numpy_loading(tmp_path):
    """Control: np.load(allow_pickle=True) on the same kind of file runs the payload."""
    marker = tmp_path / 'created_by_payload'
    path = str(tmp_path / 'evil.npy')
    write_object_npy(path, OpenCall(str(marker)))
    np.load(path, allow_pickle=True)
    assert marker.exists()


def test_dict_saved_by_np_save_loads(tmp_path):
    expected = small_weights()
    path = str(tmp_path / 'weights.npy')
    np.save(path, {layer: list(pair) for layer, pair in expected.items()}, allow_pickle=True)
    assert_same_weights(load_weights(path), expected)


def test_numpy1_names_and_weights_biases_dicts_load(tmp_path):
    """Files from numpy 1.x name numpy.core.multiarray; caffe-tensorflow uses sub-dicts."""
    expected = small_weights()
    held = np.array({layer: {'weights': w, 'biases': b} for layer, (w, b) in expected.items()},
                    dtype=object)
    data = pickle.dumps(held, protocol=3)   # protocol 3 names globals as text lines
    assert b'numpy._core.multiarray\n_reconstruct' in data
    data = data.replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
    path = str(tmp_path / 'old.npy')
    with open(path, 'wb') as handle:
        npy_format.write_array_header_1_0(
            handle, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        handle.write(data)
    assert_same_weights(load_weights(path), expected)


def python2_pickle(obj):
    """Protocol-2 bytes as Python 2's cPickle wrote them: str as BINSTRING, numpy.core names.

    bvlc_alexnet.npy and vgg16.npy are such files; Python 3 cannot write one.
    """
    globals_by_object = {np.ndarray: b'numpy\nndarray', np.dtype: b'numpy\ndtype',
                         np.zeros(1).__reduce__()[0]: b'numpy.core.multiarray\n_reconstruct'}
    out = [b'\x80\x02']

    def save(value):
        if isinstance(value, (str, bytes)):   # a Python 2 str either way
            data = value.encode('latin1') if isinstance(value, str) else value
            out.append(b'U' + bytes([len(data)]) + data if len(data) < 256
                       else b'T' + struct.pack('<I', len(data)) + data)
        elif value is None or isinstance(value, bool):
            out.append({None: b'N', True: b'\x88', False: b'\x89'}[value])
        elif isinstance(value, int):
            out.append(b'J' + struct.pack('<i', value))
        elif isinstance(value, (tuple, list, dict)):
            out.append({tuple: b'(', list: b']', dict: b'}'}[type(value)])
            items = value.items() if isinstance(value, dict) else [(item,) for item in value]
            if isinstance(value, (list, dict)):
                out.append(b'(')
            for item in items:
                for part in item:
                    save(part)
            out.append({tuple: b't', list: b'e', dict: b'u'}[type(value)])
        elif isinstance(value, (np.ndarray, np.dtype)):
            function, arguments, state = value.__reduce__()
            out.append(b'c' + globals_by_object[function] + b'\n')
            save(arguments)
            out.append(b'R')
            save(state)
            out.append(b'b')
        elif value in globals_by_object:
            out.append(b'c' + globals_by_object[value] + b'\n')
        else:
            raise TypeError(value)
    save(obj)
    return b''.join(out) + b'.'


def test_python2_pickles_as_published_load(tmp_path):
    expected = small_weights()
    held = np.empty((), dtype=object)
    held[()] = {layer: list(pair) for layer, pair in expected.items()}
    path = str(tmp_path / 'bvlc_like.npy')
    with open(path, 'wb') as handle:
        npy_format.write_array_header_1_0(
            handle, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        handle.write(python2_pickle(held))
    assert np.load(path, allow_pickle=True, encoding='latin1').item().keys() == expected.keys()
    assert_same_weights(load_weights(path), expected)


def test_npz_round_trip(tmp_path):
    expected = small_weights()
    path = str(tmp_path / 'weights.npz')
    save_weights(expected, path)
    assert_same_weights(load_weights(path), expected)
    assert not os.path.exists(path + '.partial')
    with np.load(path, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ['conv1/biases', 'conv1/weights', 'fc6/biases',
                                        'fc6/weights']


def test_save_refuses_other_suffixes(tmp_path):
    with pytest.raises(GraftError, match='npz'):
        save_weights(small_weights(), str(tmp_path / 'weights.npy'))


@pytest.mark.parametrize('suffix', ['.npy', '.npz'])
def test_truncated_file_is_a_clear_error(tmp_path, suffix):
    whole = str(tmp_path / ('whole' + suffix))
    if suffix == '.npy':
        np.save(whole, {layer: list(pair) for layer, pair in small_weights().items()},
                allow_pickle=True)
    else:
        save_weights(small_weights(), whole)
    data = open(whole, 'rb').read()
    path = str(tmp_path / ('cut' + suffix))
    with open(path, 'wb') as handle:
        handle.write(data[:len(data) * 2 // 3])
    with pytest.raises(GraftError, match='cut') as error:
        load_weights(path)
    assert '\n' not in str(error.value)


def test_random_bytes_and_wrong_contents_are_clear_errors(tmp_path):
    noise = tmp_path / 'noise.npy'
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GraftError, match='neither an .npy nor an .npz'):
        load_weights(str(noise))
    garbage = tmp_path / 'garbage.npy'
    with open(garbage, 'wb') as handle:
        npy_format.write_array_header_1_0(
            handle, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        handle.write(np.random.default_rng(1).bytes(4096))
    with pytest.raises(GraftError, match='garbage.npy'):
        load_weights(str(garbage))
    plain = str(tmp_path / 'plain.npy')
    np.save(plain, np.zeros((2, 3), np.float32))
    with pytest.raises(GraftError, match='not a dict of layer weights'):
        load_weights(plain)
    not_pairs = str(tmp_path / 'not_pairs.npy')
    np.save(not_pairs, {'conv1': [np.zeros(3)]}, allow_pickle=True)
    with pytest.raises(GraftError, match='conv1'):
        load_weights(not_pairs)
    with pytest.raises(GraftError, match='not found'):
        load_weights(str(tmp_path / 'missing.npy'))


def test_npz_with_pickled_arrays_or_odd_names_is_refused(tmp_path):
    pickled = str(tmp_path / 'pickled.npz')
    np.savez(pickled, **{'conv1/weights': np.array([{'a': 1}], dtype=object),
                         'conv1/biases': np.zeros(3)})
    with pytest.raises(GraftError, match='pickled.npz'):
        load_weights(pickled)
    odd = str(tmp_path / 'odd.npz')
    np.savez(odd, conv1=np.zeros(3))
    with pytest.raises(GraftError, match="'conv1'"):
        load_weights(odd)
