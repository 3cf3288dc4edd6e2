"""Record verification: a sound directory passes; each kind of damage is named."""
import hashlib
import json
import os

import numpy as np
import pytest

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.registry import GraphCard
from tfgraft.records import schema, writer
from tfgraft.records.verify import check_records_or_raise, verify_records
from tfgraft.tools.cli import main

CLASSES = ['cats', 'dogs']
SIZE = 8
CARD = GraphCard('tiny', 'input:0', 'image', (8, 8), (-1, 1), 'features:0', SIZE)


def example(index, label, size=SIZE, label_text=None, digest=None):
    vector = np.random.default_rng(index).random(size)
    text = label_text if label_text is not None else CLASSES[label % len(CLASSES)]
    digest = digest or hashlib.sha256(b'image %d' % index).hexdigest()
    return label, schema.make_example(vector, label, text, '%s/%d.jpg' % (text, index), digest)


def write_dir(path, records_by_split):
    """A bottleneck directory as records/writer.py writes it; records are (label, bytes)."""
    splits = {}
    for split, records in records_by_split.items():
        per_class = {name: sum(1 for label, _ in records if label == index)
                     for index, name in enumerate(CLASSES)}
        splits[split] = {'count': len(records), 'per_class': per_class, 'shards': []}
    manifest = {
        'schema_version': schema.SCHEMA_VERSION, 'tool_version': 'test',
        'bottleneck_size': SIZE, 'classes': CLASSES,
        'graph': {'card': CARD.to_dict(), 'sha256': 'ab' * 32, 'path': '/x/tiny.pb', 'layer': None},
        'splits': splits, 'skipped': [], 'image_dir': '/x/images', 'split_rule': 'folders',
        'fingerprint': '0' * 64,
    }
    examples = {split: [data for _, data in records] for split, records in records_by_split.items()}
    writer.write_records(str(path), examples, CLASSES, manifest)
    return str(path)


def sound_records():
    return {'train': [example(i, i % 2) for i in range(10)],
            'validation': [example(100 + i, i % 2) for i in range(4)],
            'test': []}


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(writer, 'RECORDS_PER_SHARD', 4)


def edit_manifest(bottleneck_dir, edit):
    path = os.path.join(bottleneck_dir, 'manifest.json')
    with open(path) as handle:
        manifest = json.load(handle)
    edit(manifest)
    with open(path, 'w') as handle:
        json.dump(manifest, handle)


def only(problems, *words):
    found = [p for p in problems if all(word in p for word in words)]
    assert found, 'no problem with %s in %s' % (words, problems)
    return found


def test_sound_directory_passes(tmp_path, small_shards, capsys):
    bottleneck_dir = write_dir(tmp_path / 'b', sound_records())
    assert len([n for n in os.listdir(bottleneck_dir) if n.startswith('train-')]) == 3
    assert verify_records(bottleneck_dir) == []
    assert check_records_or_raise(bottleneck_dir)['classes'] == CLASSES
    assert main(['verify', '--bottleneck_dir', bottleneck_dir]) == 0
    out = capsys.readouterr().out
    assert 'train' in out and '10 records in 3 shard(s) (cats 5, dogs 5)' in out and 'OK' in out


def test_flipped_byte_names_the_shard(tmp_path, capsys):
    bottleneck_dir = write_dir(tmp_path / 'b', sound_records())
    shard = os.path.join(bottleneck_dir, schema.shard_name('train', 0, 1))
    with open(shard, 'r+b') as handle:
        handle.seek(os.path.getsize(shard) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x01]))
    problems = verify_records(bottleneck_dir)
    assert len(problems) == 1
    only(problems, 'train-00000-of-00001.tfrecord', 'corrupt')
    with pytest.raises(GraftError, match='train-00000-of-00001.tfrecord: corrupt'):
        check_records_or_raise(bottleneck_dir)
    assert main(['verify', '--bottleneck_dir', bottleneck_dir]) == 1
    assert 'problem: train-00000-of-00001.tfrecord' in capsys.readouterr().err


def test_truncated_shard_is_corrupt(tmp_path):
    bottleneck_dir = write_dir(tmp_path / 'b', sound_records())
    shard = os.path.join(bottleneck_dir, schema.shard_name('validation', 0, 1))
    os.truncate(shard, os.path.getsize(shard) - 10)
    only(verify_records(bottleneck_dir), 'validation-00000-of-00001.tfrecord', 'corrupt')


def test_wrong_counts_in_manifest(tmp_path):
    bottleneck_dir = write_dir(tmp_path / 'b', sound_records())

    def miscount(manifest):
        manifest['splits']['train']['count'] = 11
        manifest['splits']['validation']['per_class'] = {'cats': 3, 'dogs': 1}
    edit_manifest(bottleneck_dir, miscount)
    problems = verify_records(bottleneck_dir)
    only(problems, 'train-00000-of-00001.tfrecord', 'says 11 records', 'hold 10')
    only(problems, 'validation-00000-of-00001.tfrecord', "class 'cats'", 'hold 2')
    assert len(problems) == 3


def test_wrong_vector_size(tmp_path):
    records = sound_records()
    records['train'][3] = example(3, 1, size=SIZE - 1)
    records['train'][7] = example(7, 1, size=SIZE + 5)
    problems = verify_records(write_dir(tmp_path / 'b', records))
    assert only(problems, 'train-00000-of-00001.tfrecord', 'record 3', 'length 8') == \
        ['train-00000-of-00001.tfrecord: record 3: bottleneck is not a float_list of length 8 '
         '(and 1 more records)']


def test_manifest_size_must_match_the_card(tmp_path):
    bottleneck_dir = write_dir(tmp_path / 'b', sound_records())
    edit_manifest(bottleneck_dir, lambda manifest: manifest.update(bottleneck_size=16))
    only(verify_records(bottleneck_dir), 'manifest.json', 'bottleneck_size 16', 'gives 8')


def test_labels_out_of_range_and_mismatched(tmp_path):
    records = sound_records()
    records['validation'][1] = example(101, 5, label_text='birds')
    records['validation'][2] = example(102, 0, label_text='dogs')
    problems = verify_records(write_dir(tmp_path / 'b', records))
    only(problems, 'validation-00000-of-00001.tfrecord', 'record 1', 'label 5 is outside 0..1')
    only(problems, 'validation-00000-of-00001.tfrecord', 'record 2', "'dogs' is not class 0")


def test_duplicates_missing_stray_and_manifest_fields(tmp_path, small_shards):
    records = sound_records()
    records['train'][9] = example(9, 1, digest=hashlib.sha256(b'image 1').hexdigest())
    bottleneck_dir = write_dir(tmp_path / 'b', records)
    os.rename(os.path.join(bottleneck_dir, 'validation-00000-of-00001.tfrecord'),
              os.path.join(bottleneck_dir, 'validation-00000-of-00002.tfrecord'))
    edit_manifest(bottleneck_dir, lambda manifest: manifest['graph'].update(sha256='not-a-hash'))
    problems = verify_records(bottleneck_dir)
    only(problems, 'manifest.json', 'graph.sha256')
    assert problems == only(problems, 'manifest.json')   # nothing else read with a bad manifest
    edit_manifest(bottleneck_dir, lambda manifest: manifest['graph'].update(sha256='cd' * 32))
    with open(os.path.join(bottleneck_dir, 'labels.txt'), 'w') as handle:
        handle.write('dogs\ncats\n')
    problems = verify_records(bottleneck_dir)
    only(problems, 'train-00002-of-00003.tfrecord', 'record 1', 'also train-00000-of-00003.tfrecord record 1')
    only(problems, 'validation-00000-of-00001.tfrecord', 'missing')
    only(problems, 'validation-00000-of-00002.tfrecord', 'does not list')
    only(problems, 'labels.txt')
    assert len(problems) == 4


def test_no_manifest(tmp_path):
    assert only(verify_records(str(tmp_path)), 'no manifest.json')


def test_train_refuses_a_corrupt_shard(tmp_path, capsys):
    out = write_dir(tmp_path / 'records', sound_records())
    shard = os.path.join(out, 'train-00000-of-00001.tfrecord')
    data = bytearray(open(shard, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    open(shard, 'wb').write(bytes(data))
    code = main(['train', '--bottleneck_dir', out, '--model_dir', str(tmp_path / 'model'),
                     '--how_many_training_steps', '10'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith('tfgraft: error: ') and 'train-00000-of-00001.tfrecord' in err[-1]
    assert not os.path.exists(tmp_path / 'model' / 'checkpoint')
