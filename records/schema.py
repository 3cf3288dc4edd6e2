"""The tf.train.Example schema of a bottleneck record (documented in README.md).

    bottleneck    float list   the backbone's vector for the image
    label         int64        index of the class in labels.txt
    label_text    bytes        the class name (its folder's name)
    image_path    bytes        the image's path relative to --image_dir
    image_sha256  bytes        hex sha256 of the image file's bytes
"""
import functools

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1
SPLITS = ('train', 'validation', 'test')


# make_example writes the protobuf wire format itself: the message is five fixed
# features, and the protobuf classes cost ten times as much (benchmarks/README.md).

@functools.lru_cache(maxsize=4096)     # tags and lengths repeat from one example to the next
def _varint(value):
    value &= (1 << 64) - 1          # negative int64 values take ten bytes, as protobuf writes them
    out = bytearray()
    while value > 0x7f:
        out.append(value & 0x7f | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field, payload):
    """A length-delimited field (wire type 2): tag, length, payload."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=4096)
def _entry_header(name, kind, size):
    """The bytes before a feature's values in Features.feature (map<string, Feature>,
    field 1). kind is the Feature's field (1 bytes_list, 2 float_list, 3 int64_list),
    a message whose field 1 holds the values (packed for floats and ints); every length
    in the header follows from the values' size alone."""
    values = bytes(size)
    entry = _length_delimited(1, _length_delimited(1, name) + _length_delimited(
        2, _length_delimited(kind, _length_delimited(1, values))))
    return entry[:len(entry) - size]


def _text(value):
    return value.encode('utf-8') if isinstance(value, str) else bytes(value)


def make_example(bottleneck, label, label_text, image_path, image_sha256):
    """Serialized tf.train.Example bytes for one image."""
    features = []
    for name, kind, values in (
            (b'bottleneck', 2, np.asarray(bottleneck, '<f4').ravel().tobytes()),
            (b'label', 3, _varint(int(label))),
            (b'label_text', 1, _text(label_text)),
            (b'image_path', 1, _text(image_path)),
            (b'image_sha256', 1, _text(image_sha256))):
        features += [_entry_header(name, kind, len(values)), values]
    return _length_delimited(1, b''.join(features))


def feature_spec(bottleneck_size):
    return {
        'bottleneck': tf.io.FixedLenFeature([bottleneck_size], tf.float32),
        'label': tf.io.FixedLenFeature([], tf.int64),
        'label_text': tf.io.FixedLenFeature([], tf.string),
        'image_path': tf.io.FixedLenFeature([], tf.string),
        'image_sha256': tf.io.FixedLenFeature([], tf.string),
    }


def shard_name(split, index, count):
    return '%s-%05d-of-%05d.tfrecord' % (split, index, count)
