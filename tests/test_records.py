"""Listing and splits, the record schema, and the journalled commit of a records folder."""
import json
import os

import numpy as np
import pytest

from tfgraft.graphs.errors import GraftError
from tfgraft.records import listing, reader, schema, writer


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
