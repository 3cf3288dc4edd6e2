"""Check a bottleneck directory end to end before training trusts it.

Every record of every shard is read with its CRC checks and parsed against
the schema; the vectors' size, the labels and the image hashes are checked
against the manifest, and the manifest's counts against what the shards hold.
Problems are one line each and name the file they were found in.
"""
import collections
import os
import re

import numpy as np
import tensorflow as tf
from google.protobuf import message

from tfgraft.graphs.errors import GraftError
from tfgraft.records import schema, storage
from tfgraft.records.reader import manifest_card, read_manifest
from tfgraft.records.writer import LABELS_NAME, MANIFEST_NAME

SHA256_HEX = re.compile(r'^[0-9a-f]{64}$')
FEATURE_KINDS = {'bottleneck': 'float_list', 'label': 'int64_list', 'label_text': 'bytes_list',
                 'image_path': 'bytes_list', 'image_sha256': 'bytes_list'}
MANIFEST_KEYS = ('bottleneck_size', 'classes', 'graph', 'splits')
READ_BATCH = 1024


def check_records_or_raise(bottleneck_dir):
    """The manifest, or GraftError naming the first problem and how many there are."""
    manifest, problems = _verify(bottleneck_dir)
    if problems:
        more = ' (and %d more problems)' % (len(problems) - 1) if len(problems) > 1 else ''
        raise GraftError('bottleneck records in %s failed verification: %s%s; '
                         'see `tfgraft verify --bottleneck_dir %s`'
                         % (bottleneck_dir, problems[0], more, bottleneck_dir))
    return manifest


def verify_records(bottleneck_dir):
    """A list of problems, one line each naming its file; empty when all is well."""
    return _verify(bottleneck_dir)[1]


def _verify(bottleneck_dir):
    try:
        manifest = read_manifest(bottleneck_dir)
    except GraftError as error:
        return None, [str(error)]
    problems = _manifest_problems(manifest)
    if problems:
        return manifest, problems
    problems += _labels_file_problems(bottleneck_dir, manifest['classes'])
    listed = set()
    for split, info in sorted(manifest['splits'].items()):
        listed.update(info['shards'])
        problems += _split_problems(bottleneck_dir, split, info, manifest)
    on_disk = {os.path.basename(path) for path in storage.glob(bottleneck_dir, '*.tfrecord')}
    problems += ['%s: a shard the manifest does not list' % name for name in sorted(on_disk - listed)]
    return manifest, problems


def _manifest_problems(manifest):
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        return ['%s: missing %s' % (MANIFEST_NAME, ', '.join(missing))]
    problems = []
    size, classes = manifest['bottleneck_size'], manifest['classes']
    if not isinstance(size, int) or size < 1:
        problems.append('%s: bottleneck_size %r is not a positive integer' % (MANIFEST_NAME, size))
    if not isinstance(classes, list) or not classes or len(set(classes)) != len(classes) or \
            not all(isinstance(name, str) and name for name in classes):
        problems.append('%s: classes must be a list of distinct names' % MANIFEST_NAME)
    graph = manifest['graph'] if isinstance(manifest['graph'], dict) else {}
    if not SHA256_HEX.match(str(graph.get('sha256', ''))):
        problems.append('%s: graph.sha256 %r is not a sha256 hex digest'
                        % (MANIFEST_NAME, graph.get('sha256')))
    try:
        card = manifest_card(manifest)
    except (GraftError, KeyError, TypeError, ValueError) as error:
        problems.append('%s: graph.card is not a graph card: %s' % (MANIFEST_NAME, error))
    else:
        if card.bottleneck_size != size:
            problems.append('%s: bottleneck_size %r, but graph card %s gives %d'
                            % (MANIFEST_NAME, size, card.name, card.bottleneck_size))
    if not isinstance(manifest['splits'], dict):
        return problems + ['%s: splits is not a mapping of split names' % MANIFEST_NAME]
    for split, info in manifest['splits'].items():
        if split not in schema.SPLITS:
            problems.append('%s: unknown split %r' % (MANIFEST_NAME, split))
        elif not isinstance(info, dict) or not isinstance(info.get('per_class'), dict) or \
                not {'count', 'shards'} <= set(info):
            problems.append('%s: split %s needs count, per_class and shards' % (MANIFEST_NAME, split))
    return problems


def _labels_file_problems(bottleneck_dir, classes):
    path = os.path.join(bottleneck_dir, LABELS_NAME)
    try:
        labels = storage.read_text(path).splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return ['%s: unreadable: %s' % (LABELS_NAME, error)]
    if labels != classes:
        return ['%s: does not list the manifest\'s classes in label order' % LABELS_NAME]
    return []


def _split_problems(bottleneck_dir, split, info, manifest):
    classes = manifest['classes']
    problems, counts, owners, readable, total = [], collections.Counter(), {}, True, 0
    names = []      # the split's shards so far; owners point into it
    for name in info['shards']:
        path = os.path.join(bottleneck_dir, name)
        if not storage.isfile(path):
            problems.append('%s: shard listed in the manifest is missing' % name)
            readable = False
            continue
        shard = _ShardCheck(name, manifest['bottleneck_size'], classes, owners, names)
        readable &= shard.read(path)
        counts.update(shard.counts)
        total += shard.records
        problems += shard.problems()
    if not readable:   # counts cannot match; the problems above say why
        return problems
    where = '%s (%s)' % (split, ', '.join(info['shards']) or 'no shards')
    if total != info['count']:
        problems.append('%s: the manifest says %s records, the shards hold %d'
                        % (where, info['count'], total))
    for label, name in enumerate(classes):
        said = info['per_class'].get(name, 0)
        if counts[label] != said:
            problems.append('%s: the manifest says %s records of class %r, the shards hold %d'
                            % (where, said, name, counts[label]))
    for name in set(info['per_class']) - set(classes):
        problems.append('%s: per_class names %r, which is not a class' % (where, name))
    return problems


class _ShardCheck:
    """Reads one shard; keeps the first problem of each kind and how often it occurred.

    Records are parsed in batches by tf.io.parse_example; only a shard where
    that fails is parsed again record by record, to say which record is wrong.
    """

    def __init__(self, name, bottleneck_size, classes, owners, names):
        self.name, self.size, self.classes = name, bottleneck_size, classes
        # raw image_sha256 -> shard number << 32 | record, for the whole split: a few
        # dozen bytes a record, the only memory of a check that grows with the split
        self.owners, self.names, self.number = owners, names, len(names)
        names.append(name)
        self.counts = collections.Counter()   # records per label
        self.records = 0
        self.found = {}         # kind -> [first message, count]

    def note(self, kind, index, text):
        entry = self.found.setdefault(kind, ['record %d: %s' % (index, text), 0])
        entry[1] += 1

    def problems(self):
        return ['%s: %s%s' % (self.name, text, ' (and %d more records)' % (count - 1) if count > 1 else '')
                for text, count in self.found.values()]

    def read(self, path):
        """Check every record; False if the file is corrupt (CRC, truncation)."""
        try:
            try:
                rows = self.parsed_rows(path)
            except tf.errors.InvalidArgumentError:
                rows = [self.parse_one(index, record) for index, record in enumerate(
                    tf.data.TFRecordDataset(path).as_numpy_iterator())]
        except tf.errors.DataLossError as error:
            self.found['corrupt'] = ['corrupt: %s' % error.message.splitlines()[0], 1]
            return False
        self.records = len(rows)
        for index, row in enumerate(rows):
            if row is not None:
                self.check(index, *row)
        return True

    def parsed_rows(self, path):
        """(label, label_text, image_sha256, all finite) per record, parsed in batches."""
        spec = schema.feature_spec(self.size)
        rows = []
        for records in tf.data.TFRecordDataset(path, buffer_size=1 << 20).batch(READ_BATCH):
            parsed = {key: value.numpy() for key, value in tf.io.parse_example(records, spec).items()}
            finite = np.isfinite(parsed['bottleneck']).all(axis=1)
            rows += zip(parsed['label'].tolist(), parsed['label_text'].tolist(),
                        parsed['image_sha256'].tolist(), finite.tolist())
        return rows

    def parse_one(self, index, record):
        """The row of one record, or None after noting why it breaks the schema."""
        try:
            feature = tf.train.Example.FromString(record).features.feature
        except message.DecodeError:
            return self.note('parse', index, 'not a tf.train.Example')
        missing = set(FEATURE_KINDS) - set(feature)
        if missing:
            return self.note('features', index, 'no %s feature' % ', '.join(sorted(missing)))
        for name, kind in FEATURE_KINDS.items():
            length = self.size if name == 'bottleneck' else 1
            if feature[name].WhichOneof('kind') != kind or \
                    len(getattr(feature[name], kind).value) != length:
                return self.note('type ' + name, index, '%s is not %s %s of length %d' % (
                    name, 'a' if name == 'bottleneck' else 'one', kind, length))
        vector = np.asarray(feature['bottleneck'].float_list.value, np.float32)
        return (feature['label'].int64_list.value[0], feature['label_text'].bytes_list.value[0],
                feature['image_sha256'].bytes_list.value[0], bool(np.isfinite(vector).all()))

    def check(self, index, label, label_text, digest, finite):
        if not finite:
            self.note('finite', index, 'the bottleneck holds NaN or infinity')
        if not 0 <= label < len(self.classes):
            return self.note('label', index, 'label %d is outside 0..%d' % (label, len(self.classes) - 1))
        label_text = label_text.decode('utf-8', 'replace')
        if label_text != self.classes[label]:
            self.note('label_text', index, 'label_text %r is not class %d (%r)'
                      % (label_text, label, self.classes[label]))
        self.counts[label] += 1
        digest = digest.decode('ascii', 'replace')
        if not SHA256_HEX.match(digest):
            return self.note('sha256', index, 'image_sha256 %r is not a sha256 hex digest' % digest)
        key = bytes.fromhex(digest)
        if key in self.owners:
            owner = self.owners[key]
            self.note('duplicate', index, 'image %s... is also %s record %d in this split'
                      % (digest[:12], self.names[owner >> 32], owner & 0xffffffff))
        else:
            self.owners[key] = self.number << 32 | index
