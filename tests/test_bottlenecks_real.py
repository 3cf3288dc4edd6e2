"""Bottleneck records from the real MobileNet v1 0.25/128 graph and real photos."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfgraft.graphs.preprocessing import preprocess_image
from tfgraft.records import extract, reader
from tfgraft.records.decode import decode_rgb

tf1 = tf.compat.v1


def one_image_per_run(backbone, paths):
    """The tutorials' way: decode and resize one image, then one sess.run for it."""
    with tf.Graph().as_default() as graph:
        contents = tf1.placeholder(tf.string, [])
        image = preprocess_image(decode_rgb(contents), backbone.card)[tf.newaxis]
        bottleneck = backbone.build(image)
        with tf1.Session(graph=graph) as sess:
            return np.concatenate([sess.run(bottleneck, {contents: open(p, 'rb').read()})
                                   for p in paths])


@pytest.mark.slow
def test_records_of_the_real_set(cats_dogs_records, cats_and_dogs):
    manifest = reader.read_manifest(cats_dogs_records)
    assert manifest['classes'] == ['cats', 'dogs']
    assert manifest['split_rule'] == 'folders'
    assert manifest['bottleneck_size'] == 256
    assert manifest['graph']['card']['name'] == 'mobilenet_v1_0.25_128'
    assert manifest['splits']['train']['per_class'] == {'cats': 1000, 'dogs': 1000}
    assert manifest['splits']['validation']['per_class'] == {'cats': 500, 'dogs': 500}
    assert manifest['skipped'] == []
    train = reader.load_split(cats_dogs_records, 'train')
    assert train['bottlenecks'].shape == (2000, 256)
    for path, label, text in zip(train['image_paths'], train['labels'], train['label_texts']):
        assert path.startswith('train/%s/' % text) and text == manifest['classes'][label]
    assert len(set(train['image_sha256s'])) == 2000

    sample = [10, 500, 1500, 1999]
    paths = [os.path.join(cats_and_dogs, train['image_paths'][i]) for i in sample]
    from tfgraft.graphs.frozen import load_frozen_backbone
    backbone = load_frozen_backbone(manifest['graph']['path'])
    expected = one_image_per_run(backbone, paths)
    assert np.abs(train['bottlenecks'][sample] - expected).max() <= 1e-4


@pytest.fixture
def small_set(tmp_path, cats_and_dogs):
    """20 + 20 training and 5 + 5 validation photos copied from the real set."""
    root = tmp_path / 'photos'
    for split, count in (('train', 20), ('validation', 5)):
        for name in ('cats', 'dogs'):
            source = os.path.join(cats_and_dogs, split, name)
            os.makedirs(root / split / name)
            for file_name in sorted(os.listdir(source))[:count]:
                shutil.copy(os.path.join(source, file_name), root / split / name / file_name)
    return root


def count_computed(monkeypatch):
    computed = []
    real = extract.compute_bottlenecks

    def counting(paths, *args, **kwargs):
        computed.append(len(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(extract, 'compute_bottlenecks', counting)
    return computed


def test_rerun_reuses_and_adds_exactly_the_new_images(small_set, tmp_path, monkeypatch,
                                                      mobilenet_backbone, cats_and_dogs):
    out = str(tmp_path / 'records')
    computed = count_computed(monkeypatch)
    first = extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, batch_size=8,
                                      progress=False)
    assert computed == [50]
    assert first['splits']['train']['count'] == 40
    before = reader.load_split(out, 'train')

    extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    assert computed == [50]                       # nothing new: no TensorFlow work at all

    source = os.path.join(cats_and_dogs, 'train', 'dogs')
    for file_name in sorted(os.listdir(source))[100:105]:
        shutil.copy(os.path.join(source, file_name), small_set / 'train' / 'dogs' / file_name)
    second = extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    assert computed == [50, 5]
    assert second['splits']['train']['per_class'] == {'cats': 20, 'dogs': 25}
    after = reader.load_split(out, 'train')
    old = dict(zip(before['image_paths'], before['bottlenecks']))
    for path, vector in zip(after['image_paths'], after['bottlenecks']):
        if path in old:
            assert np.array_equal(old[path], vector)

    removed = sorted(os.listdir(small_set / 'train' / 'cats'))[:3]
    for file_name in removed:
        os.unlink(small_set / 'train' / 'cats' / file_name)
    third = extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    assert computed == [50, 5]
    assert third['splits']['train']['per_class'] == {'cats': 17, 'dogs': 25}
    assert not any(p.endswith(tuple(removed)) for p in reader.load_split(out, 'train')['image_paths'])


def test_rerun_opens_only_changed_files(small_set, tmp_path, monkeypatch, mobilenet_backbone,
                                        cats_and_dogs):
    out = str(tmp_path / 'records')
    inspected = []
    real = extract.hash_and_inspect

    def counting(path, *args, **kwargs):
        inspected.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(extract, 'hash_and_inspect', counting)
    computed = count_computed(monkeypatch)
    extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    assert len(inspected) == 50 and computed == [50]

    del inspected[:]
    extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    assert inspected == []                        # size and mtime unchanged: header and hash reused

    source = os.path.join(cats_and_dogs, 'train', 'cats')
    first = sorted(os.listdir(small_set / 'train' / 'cats'))[0]
    shutil.copy(os.path.join(source, sorted(os.listdir(source))[200]),
                small_set / 'train' / 'cats' / first)   # new content under an old name
    extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    assert inspected == [first] and computed == [50, 1]

    del inspected[:]                              # a lower pixel limit re-checks every file
    manifest = extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False,
                                         max_pixels=100)
    assert len(inspected) == 50
    assert manifest['splits']['train']['count'] == 0
    assert all(item['reason'].startswith('too many pixels') for item in manifest['skipped'])


def test_corrupt_files_are_skipped_and_listed(small_set, tmp_path, mobilenet_backbone, capsys):
    cats = small_set / 'train' / 'cats'
    good = sorted(os.listdir(cats))[0]
    data = (cats / good).read_bytes()
    (cats / 'truncated.jpg').write_bytes(data[:len(data) // 2])
    (cats / 'empty.jpg').write_bytes(b'')
    (cats / 'notes.jpg').write_text('this is not a photo\n')
    out = str(tmp_path / 'records')
    manifest = extract.write_bottlenecks(str(small_set), mobilenet_backbone, out, progress=False)
    skipped = {item['image_path']: item['reason'] for item in manifest['skipped']}
    assert set(skipped) == {'train/cats/truncated.jpg', 'train/cats/empty.jpg', 'train/cats/notes.jpg'}
    assert manifest['splits']['train']['per_class'] == {'cats': 20, 'dogs': 20}
    assert len(reader.load_split(out, 'train')['labels']) == 40
    warnings = capsys.readouterr().err
    assert 'skipped train/cats/empty.jpg' in warnings
