"""Write a bottleneck directory's shards, labels.txt and manifest.json as one commit.

New files are first written beside the old ones as `<name>.new`; then a
journal (`commit.json`) names what to rename and what to delete, and only
then are the renames done, manifest.json last. A run killed before the
journal exists leaves the previous output untouched (its `.new` files are
cleared next time); a run killed after it is finished by the next writer or
reader. Either way the directory always reads as one complete output.
"""
import os

import tensorflow as tf

from tfgraft.records import schema, storage
from tfgraft.records.atomic import atomic_write_bytes, atomic_write_json, read_json

JOURNAL_NAME = 'commit.json'
MANIFEST_NAME = 'manifest.json'
LABELS_NAME = 'labels.txt'
RECORDS_PER_SHARD = 1024
NEW_SUFFIX = '.new'


def finish_interrupted_commit(bottleneck_dir):
    """Complete a commit whose journal was written, or clear a half-written one.

    Returns True if a commit was completed.
    """
    journal_path = os.path.join(bottleneck_dir, JOURNAL_NAME)
    journal = read_json(journal_path)
    if journal is None:
        leftovers = storage.glob(bottleneck_dir, '*' + NEW_SUFFIX)
        leftovers += storage.glob(bottleneck_dir, '.*.tmp')   # from atomic_write
        for leftover in leftovers:
            storage.remove(leftover)
        if storage.exists(journal_path):   # unreadable journal: written half, never applied
            storage.remove(journal_path)
        return False
    for name in journal['files']:
        staged = os.path.join(bottleneck_dir, name + NEW_SUFFIX)
        if storage.exists(staged):
            storage.replace(staged, os.path.join(bottleneck_dir, name))
    for name in journal['remove']:
        stale = os.path.join(bottleneck_dir, name)
        if storage.exists(stale):
            storage.remove(stale)
    storage.remove(journal_path)
    return True


def _write_shard(path, examples):
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example)
    if not storage.is_url(path):    # a filesystem behind tf.io.gfile syncs on close
        with open(path, 'rb+') as handle:
            os.fsync(handle.fileno())


def _existing_shards(bottleneck_dir):
    return {os.path.basename(p) for p in storage.glob(bottleneck_dir, '*-of-*.tfrecord')}


def write_records(bottleneck_dir, examples_by_split, classes, manifest):
    """Write every split's serialized examples; fills manifest['splits'][s]['shards']."""
    storage.makedirs(bottleneck_dir)
    finish_interrupted_commit(bottleneck_dir)
    written = []
    for split, examples in examples_by_split.items():
        count = -(-len(examples) // RECORDS_PER_SHARD)
        names = [schema.shard_name(split, i, count) for i in range(count)]
        for index, name in enumerate(names):
            chunk = examples[index * RECORDS_PER_SHARD:(index + 1) * RECORDS_PER_SHARD]
            _write_shard(os.path.join(bottleneck_dir, name + NEW_SUFFIX), chunk)
        manifest['splits'][split]['shards'] = names
        written.extend(names)
    labels = ''.join(name + '\n' for name in classes).encode('utf-8')
    atomic_write_bytes(os.path.join(bottleneck_dir, LABELS_NAME + NEW_SUFFIX), labels)
    atomic_write_json(os.path.join(bottleneck_dir, MANIFEST_NAME + NEW_SUFFIX), manifest)
    journal = {
        'files': written + [LABELS_NAME, MANIFEST_NAME],
        'remove': sorted(_existing_shards(bottleneck_dir) - set(written)),
    }
    atomic_write_json(os.path.join(bottleneck_dir, JOURNAL_NAME), journal)
    finish_interrupted_commit(bottleneck_dir)
