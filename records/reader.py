"""Read a bottleneck directory: its manifest, its shards, as tf.data or numpy.

A bottleneck directory holds `<split>-NNNNN-of-NNNNN.tfrecord` shards, a
`labels.txt` (one class a line, in label order) and a `manifest.json`:

    schema_version, tool_version, bottleneck_size, classes,
    graph: {card: {...}, sha256, path},
    splits: {split: {count, per_class: {class: n}, shards: [file names]}},
    skipped: [{image_path, reason}], image_dir, split_rule, fingerprint
"""
import json
import os

import numpy as np
import tensorflow as tf

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.registry import GraphCard
from tfgraft.records import schema, storage
from tfgraft.records.pipeline import usable_cores, without_autotune
from tfgraft.records.writer import JOURNAL_NAME, MANIFEST_NAME, finish_interrupted_commit


def read_manifest(bottleneck_dir):
    path = os.path.join(bottleneck_dir, MANIFEST_NAME)
    if storage.exists(os.path.join(bottleneck_dir, JOURNAL_NAME)):
        try:
            finish_interrupted_commit(bottleneck_dir)
        except OSError as error:
            raise GraftError('%s holds an interrupted write that cannot be finished (%s); '
                             'run `tfgraft bottlenecks` again' % (bottleneck_dir, error)) from None
    if not storage.isfile(path):
        raise GraftError('%s holds no bottleneck records (no %s); run `tfgraft bottlenecks` first'
                         % (bottleneck_dir, MANIFEST_NAME))
    try:
        manifest = json.loads(storage.read_text(path))
    except (OSError, ValueError) as error:
        raise GraftError('cannot read %s: %s' % (path, error)) from None
    if not isinstance(manifest, dict):
        raise GraftError('%s is not a tfgraft manifest' % path)
    if manifest.get('schema_version') != schema.SCHEMA_VERSION:
        raise GraftError('%s has record schema version %r; this tfgraft reads version %d'
                         % (path, manifest.get('schema_version'), schema.SCHEMA_VERSION))
    return manifest


def manifest_card(manifest):
    return GraphCard.from_dict(manifest['graph']['card'])


def split_files(bottleneck_dir, split, manifest=None):
    manifest = manifest or read_manifest(bottleneck_dir)
    info = manifest['splits'].get(split)
    if info is None:
        raise GraftError('%s has no %r split (it has: %s)'
                         % (bottleneck_dir, split, ', '.join(sorted(manifest['splits']))))
    paths = [os.path.join(bottleneck_dir, name) for name in info['shards']]
    for path in paths:
        if not storage.isfile(path):
            raise GraftError('shard missing: %s' % path)
    return paths


def make_dataset(bottleneck_dir, split, manifest=None):
    """A tf.data.Dataset of parsed examples (dicts of the schema's features)."""
    manifest = manifest or read_manifest(bottleneck_dir)
    spec = schema.feature_spec(manifest['bottleneck_size'])
    files = split_files(bottleneck_dir, split, manifest)

    @tf.autograph.experimental.do_not_convert
    def parse(record):
        return tf.io.parse_single_example(record, spec)
    return without_autotune(tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=usable_cores()))


def load_split(bottleneck_dir, split, manifest=None):
    """The whole split in memory: dict of numpy arrays and lists.

    Keys: bottlenecks [N, D] float32, labels [N] int64, label_texts,
    image_paths, image_sha256s (lists of str).
    """
    manifest = manifest or read_manifest(bottleneck_dir)
    size = manifest['bottleneck_size']
    bottlenecks, labels, texts, paths, hashes = [], [], [], [], []
    try:
        for path in split_files(bottleneck_dir, split, manifest):
            for record in without_autotune(tf.data.TFRecordDataset(path)).as_numpy_iterator():
                example = tf.train.Example.FromString(record)
                feature = example.features.feature
                vector = np.asarray(feature['bottleneck'].float_list.value, np.float32)
                if vector.shape != (size,):
                    raise GraftError('%s: a record has a %d-d bottleneck, the manifest says %d'
                                     % (path, vector.shape[0], size))
                bottlenecks.append(vector)
                labels.append(feature['label'].int64_list.value[0])
                texts.append(feature['label_text'].bytes_list.value[0].decode('utf-8'))
                paths.append(feature['image_path'].bytes_list.value[0].decode('utf-8'))
                hashes.append(feature['image_sha256'].bytes_list.value[0].decode('ascii'))
    except tf.errors.DataLossError as error:
        raise GraftError('corrupt record in %s: %s' % (bottleneck_dir, error.message.splitlines()[0])) from None
    return {
        'bottlenecks': np.stack(bottlenecks) if bottlenecks else np.zeros((0, size), np.float32),
        'labels': np.asarray(labels, np.int64),
        'label_texts': texts,
        'image_paths': paths,
        'image_sha256s': hashes,
    }
