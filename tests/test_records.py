"""Listing and splits, the record schema, and the journalled commit of a records folder."""
import json
import os

import numpy as np
import pytest

from tfgraft.graphs.errors import GraftError
from tfgraft.records import cache, listing, reader, schema, writer


def touch(path, data=b'x'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(data)


def test_hash_split_is_stable_and_ignores_nohash_suffix():
    names = ['img_%04d.jpg' % i for i in range(2000)]
    splits = [listing.hash_split(name, 10, 10) for name in names]
    assert splits == [listing.hash_split(name, 10, 10) for name in names]
    share = {s: splits.count(s) / len(names) for s in ('train', 'validation', 'test')}
    assert 0.75 < share['train'] < 0.85 and 0.07 < share['validation'] < 0.13
    assert listing.hash_split('dog_nohash_1.jpg', 10, 10) == listing.hash_split('dog_nohash_2.jpg', 10, 10)
    # The retrain.py rule, written out: sha1 of the name, modulo 2**27, as a percentage.
    import hashlib
    value = int(hashlib.sha1(b'img_0000.jpg').hexdigest(), 16) % (2 ** 27) * (100.0 / (2 ** 27 - 1))
    expected = 'validation' if value < 10 else 'test' if value < 20 else 'train'
    assert splits[0] == expected


def test_listing_by_hash(tmp_path):
    for name in ('roses', 'tulips'):
        for i in range(30):
            touch(str(tmp_path / name / ('%s_%d.jpg' % (name, i))))
    touch(str(tmp_path / 'roses' / '.hidden.jpg'))
    touch(str(tmp_path / 'roses' / 'Thumbs.db'))
    images = listing.list_images(str(tmp_path), 20, 20)
    assert images.classes == ['roses', 'tulips']
    assert len(images.entries) == 60
    assert {e.split for e in images.entries} == {'train', 'validation', 'test'}
    assert all(e.path.startswith(images.classes[e.label] + '/') for e in images.entries)
    assert images.split_rule.startswith('hash')


def test_listing_by_split_folders(tmp_path):
    for split, count in (('train', 5), ('validation', 2), ('test', 1)):
        for name in ('cats', 'dogs'):
            for i in range(count):
                touch(str(tmp_path / split / name / ('%d.jpg' % i)))
    images = listing.list_images(str(tmp_path))
    assert images.split_rule == 'folders'
    counts = {s: sum(e.split == s for e in images.entries) for s in schema.SPLITS}
    assert counts == {'train': 10, 'validation': 4, 'test': 2}
    assert images.entries[0].path == 'train/cats/0.jpg'


@pytest.mark.parametrize('make, message', [
    (lambda root: None, 'not found'),
    (lambda root: os.makedirs(root), 'no class subfolders'),
    (lambda root: (touch(os.path.join(root, 'a', '1.jpg')), os.makedirs(os.path.join(root, 'b'))),
     'has no images'),
    (lambda root: touch(os.path.join(root, 'a', '1.jpg')), 'at least 2 classes'),
])
def test_listing_errors(tmp_path, make, message):
    root = str(tmp_path / 'photos')
    make(root)
    with pytest.raises(GraftError, match=message):
        listing.list_images(root)


def test_skip_empty_classes_lists_them(tmp_path):
    for name in ('a', 'b'):
        touch(str(tmp_path / name / '1.jpg'))
    os.makedirs(str(tmp_path / 'empty'))
    images = listing.list_images(str(tmp_path), skip_empty_classes=True)
    assert images.classes == ['a', 'b']
    assert images.skipped == [{'image_path': 'empty/', 'reason': 'class folder has no images'}]


def _manifest(counts):
    return {'schema_version': schema.SCHEMA_VERSION, 'bottleneck_size': 3, 'classes': ['a', 'b'],
            'graph': {'card': {}, 'sha256': '0' * 64, 'path': '', 'layer': None},
            'splits': {s: {'count': n, 'per_class': {}, 'shards': []} for s, n in counts.items()}}


def _examples(n, offset=0.0):
    return [schema.make_example([i + offset, 0, 1], i % 2, 'ab'[i % 2], 'x/%d.jpg' % i, '%064x' % i)
            for i in range(n)]


@pytest.mark.parametrize('size, label, text, path', [
    (3, 0, 'a', 'a/1.jpg'),
    (2048, 1, 'chats', 'train/chats/\u00e9t\u00e9 1.jpg'),    # non-ASCII path
    (4096, 300, 'x' * 200, 'p/' + 'q' * 300 + '.png'),     # lengths past one varint byte
    (256, 2 ** 40, '', ''),                                # a large label, empty strings
    (1, -1, 'neg', 'n.jpg'),                               # a negative int64: ten bytes
])
def test_example_bytes_parse_as_the_protobuf_message(size, label, text, path):
    """make_example writes the wire format by hand; protobuf must read it back as the
    message its own classes build, and tf.io must parse it with the schema."""
    import tensorflow as tf
    vector = np.random.RandomState(size).standard_normal(size).astype(np.float32)
    digest = '%064x' % size
    data = schema.make_example(vector, label, text, path, digest)
    expected = tf.train.Example(features=tf.train.Features(feature={
        'bottleneck': tf.train.Feature(float_list=tf.train.FloatList(value=vector.tolist())),
        'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        'label_text': tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
        'image_path': tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
        'image_sha256': tf.train.Feature(bytes_list=tf.train.BytesList(value=[digest.encode()])),
    }))
    assert tf.train.Example.FromString(data) == expected
    parsed = tf.io.parse_single_example(data, schema.feature_spec(size))
    np.testing.assert_array_equal(parsed['bottleneck'].numpy(), vector)
    assert int(parsed['label']) == label and parsed['image_path'].numpy() == path.encode()


def test_cached_vectors_reach_disk_once_the_oldest_has_waited_a_second(tmp_path, monkeypatch):
    """What a killed run leaves: every vector older than FLUSH_SECONDS, however few."""
    clock = [100.0]
    monkeypatch.setattr(cache, 'time', type('Clock', (), {'monotonic': lambda: clock[0]}))

    def on_disk():
        return cache.BottleneckCache(str(tmp_path), '0' * 64, 'key').load()

    store = cache.BottleneckCache(str(tmp_path), '0' * 64, 'key')
    store.add('a', np.full(3, 1.0, np.float32))
    clock[0] += 0.5
    store.add('b', np.full(3, 2.0, np.float32))
    assert on_disk() == {}                      # nothing has waited a second yet
    clock[0] += 0.6
    store.add('c', np.full(3, 3.0, np.float32))  # a has waited 1.1 s: a, b and c go together
    assert sorted(on_disk()) == ['a', 'b', 'c']
    clock[0] += 5.0
    store.add('d', np.full(3, 4.0, np.float32))  # d's own wait starts now
    assert sorted(on_disk()) == ['a', 'b', 'c']
    store.flush()
    found = on_disk()
    assert sorted(found) == ['a', 'b', 'c', 'd']
    np.testing.assert_array_equal(found['d'], np.full(3, 4.0, np.float32))


def test_compaction_merges_chunks_only_when_some_are_stale_or_too_many(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, 'MAX_CHUNKS', 2)
    store = cache.BottleneckCache(str(tmp_path), '0' * 64, 'key')

    def chunk_files():
        return sorted(os.listdir(store.folder))

    for name in 'ab':
        store.add(name, np.full(3, ord(name), np.float32))
        store.flush()
    before = chunk_files()
    store.compact({'a', 'b'})
    assert chunk_files() == before and len(before) == 2     # nothing stale, few chunks: untouched
    store.add('c', np.full(3, 3.0, np.float32))
    store.compact({'a', 'b', 'c'})                           # three chunks: merged into one
    assert len(chunk_files()) == 1
    store.compact({'a', 'c'})                                # b is stale: rewritten without it
    assert len(chunk_files()) == 1
    found = cache.BottleneckCache(str(tmp_path), '0' * 64, 'key').load()
    assert sorted(found) == ['a', 'c']
    np.testing.assert_array_equal(found['a'], np.full(3, ord('a'), np.float32))


def test_write_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, 'RECORDS_PER_SHARD', 4)
    out = str(tmp_path)
    writer.write_records(out, {'train': _examples(10), 'validation': _examples(3)}, ['a', 'b'],
                         _manifest({'train': 10, 'validation': 3}))
    manifest = reader.read_manifest(out)
    assert manifest['splits']['train']['shards'] == [
        'train-00000-of-00003.tfrecord', 'train-00001-of-00003.tfrecord', 'train-00002-of-00003.tfrecord']
    data = reader.load_split(out, 'train')
    assert data['bottlenecks'].shape == (10, 3)
    assert list(data['labels']) == [i % 2 for i in range(10)]
    assert data['image_paths'][3] == 'x/3.jpg'
    assert open(os.path.join(out, 'labels.txt')).read() == 'a\nb\n'
    parsed = list(reader.make_dataset(out, 'validation').as_numpy_iterator())
    assert [p['label'] for p in parsed] == [0, 1, 0]
    # A smaller rewrite removes the shards it no longer lists.
    writer.write_records(out, {'train': _examples(2)}, ['a', 'b'], _manifest({'train': 2}))
    assert sorted(f for f in os.listdir(out) if f.endswith('.tfrecord')) == ['train-00000-of-00001.tfrecord']


def test_kill_before_journal_keeps_old_output(tmp_path, monkeypatch):
    out = str(tmp_path)
    writer.write_records(out, {'train': _examples(4)}, ['a', 'b'], _manifest({'train': 4}))
    # A run killed while staging: .new files lie around, no journal.
    touch(os.path.join(out, 'train-00000-of-00001.tfrecord.new'), b'half a shard')
    touch(os.path.join(out, 'manifest.json.new'), b'{')
    data = reader.load_split(out, 'train')
    assert len(data['labels']) == 4
    writer.finish_interrupted_commit(out)
    assert not [f for f in os.listdir(out) if f.endswith('.new')]
    assert len(reader.load_split(out, 'train')['labels']) == 4


def test_kill_after_journal_is_rolled_forward(tmp_path, monkeypatch):
    out = str(tmp_path)
    writer.write_records(out, {'train': _examples(4)}, ['a', 'b'], _manifest({'train': 4}))
    calls = []
    real = writer.finish_interrupted_commit

    def die_on_second_call(folder):
        calls.append(folder)
        if len(calls) == 2:
            raise KeyboardInterrupt   # killed right after the journal was written
        return real(folder)

    monkeypatch.setattr(writer, 'finish_interrupted_commit', die_on_second_call)
    with pytest.raises(KeyboardInterrupt):
        writer.write_records(out, {'train': _examples(6, offset=0.5)}, ['a', 'b'],
                             _manifest({'train': 6}))
    monkeypatch.setattr(writer, 'finish_interrupted_commit', real)
    assert os.path.exists(os.path.join(out, writer.JOURNAL_NAME))
    data = reader.load_split(out, 'train')          # the reader finishes the commit
    assert len(data['labels']) == 6
    assert np.allclose(data['bottlenecks'][:, 0], np.arange(6) + 0.5)
    assert not os.path.exists(os.path.join(out, writer.JOURNAL_NAME))


def test_reader_errors(tmp_path):
    with pytest.raises(GraftError, match='no bottleneck records'):
        reader.read_manifest(str(tmp_path))
    (tmp_path / 'manifest.json').write_text(json.dumps({'schema_version': 99}))
    with pytest.raises(GraftError, match='schema version'):
        reader.read_manifest(str(tmp_path))
