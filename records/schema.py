"""The tf.train.Example schema of a bottleneck record (documented in README.md).

    bottleneck    float list   the backbone's vector for the image
    label         int64        index of the class in labels.txt
    label_text    bytes        the class name (its folder's name)
    image_path    bytes        the image's path relative to --image_dir
    image_sha256  bytes        hex sha256 of the image file's bytes
"""
import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1
SPLITS = ('train', 'validation', 'test')


def _bytes(value):
    if isinstance(value, str):
        value = value.encode('utf-8')
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def make_example(bottleneck, label, label_text, image_path, image_sha256):
    """Serialized tf.train.Example bytes for one image."""
    example = tf.train.Example(features=tf.train.Features(feature={
        'bottleneck': tf.train.Feature(float_list=tf.train.FloatList(
            value=np.asarray(bottleneck, np.float32).ravel().tolist())),
        'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        'label_text': _bytes(label_text),
        'image_path': _bytes(image_path),
        'image_sha256': _bytes(image_sha256),
    }))
    return example.SerializeToString()


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
