"""Image and bottleneck folders on a tf.io.gfile filesystem, not a local path.

TensorFlow's in-memory filesystem (`ram://`, one per process) stands for a bucket:
real photos are copied there, the bottlenecks job, verify, train and evaluate run
in this process on it, and the records must be the local run's. The Beam job runs
its workers in other processes, which cannot see this process's ram://, so it is
tested on a `file://` URL (the same tf.io.gfile code paths, seen by every process).
"""
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest

from conftest import copy_real_photos, local_folders, records_in_new_folder
from tfgraft.records import reader, storage
from tfgraft.records.extract import write_bottlenecks

PER_CLASS = 10      # photos per class and split: 40, copied into memory
SPLITS = ('train', 'validation')


def tf():
    import tensorflow
    return tensorflow


@pytest.fixture(scope='module')
def ram_root():
    root = 'ram://tfgraft-test-%s' % uuid.uuid4().hex[:8]
    yield root
    gfile = tf().io.gfile     # the ram filesystem has no rmtree: its files are dropped
    for folder, _, names in list(gfile.walk(root)):
        for name in names:
            if gfile.exists(folder + '/' + name):   # it lists some files twice
                gfile.remove(folder + '/' + name)


@pytest.fixture(scope='module')
def ram_photos(ram_root, cats_and_dogs):
    gfile = tf().io.gfile

    def make_dir(split, name):
        folder = '%s/photos/%s/%s' % (ram_root, split, name)
        gfile.makedirs(folder)
        return folder
    copy_real_photos(cats_and_dogs, PER_CLASS, make_dir, gfile.copy)
    return ram_root + '/photos'


@pytest.fixture(scope='module')
def local_photos(tmp_path_factory, cats_and_dogs):
    root = tmp_path_factory.mktemp('gfile_photos')
    copy_real_photos(cats_and_dogs, PER_CLASS, local_folders(root))
    return str(root)


@pytest.fixture(scope='module')
def local_records(tmp_path_factory, local_photos, mobilenet_backbone):
    return records_in_new_folder(tmp_path_factory, 'gfile_local_records', local_photos,
                                 mobilenet_backbone, 16)


@pytest.fixture(scope='module')
def ram_records(ram_root, ram_photos, mobilenet_backbone):
    out = ram_root + '/bottlenecks'
    manifest = write_bottlenecks(ram_photos, mobilenet_backbone, out, batch_size=16, progress=False)
    return out, manifest


def by_sha256(bottleneck_dir, split):
    data = reader.load_split(bottleneck_dir, split)
    return dict(zip(data['image_sha256s'], data['bottlenecks']))


def assert_same_records(got_dir, expected_dir, tolerance):
    for split in SPLITS:
        got, expected = by_sha256(got_dir, split), by_sha256(expected_dir, split)
        assert len(expected) == 2 * PER_CLASS
        assert set(got) == set(expected)
        assert max(np.abs(got[d] - expected[d]).max() for d in expected) <= tolerance
    got, expected = reader.read_manifest(got_dir), reader.read_manifest(expected_dir)
    for key in ('classes', 'splits', 'skipped', 'fingerprint', 'split_rule'):
        assert got[key] == expected[key], key


def test_records_in_memory_match_the_local_run(ram_records, local_records):
    out, manifest = ram_records
    assert manifest['image_dir'].startswith('ram://')      # not made absolute as a local path
    assert_same_records(out, local_records, 1e-6)
    names = set(storage.listdir(out))
    assert {'manifest.json', 'labels.txt', 'train-00000-of-00001.tfrecord',
            'validation-00000-of-00001.tfrecord', '.cache'} <= names
    assert not [n for n in names if n.endswith(('.new', '.tmp'))] and 'commit.json' not in names
    assert storage.read_text(out + '/labels.txt') == 'cats\ndogs\n'


def test_a_rerun_in_memory_reuses_the_cache(ram_records, ram_photos, mobilenet_backbone, capsys):
    out, manifest = ram_records
    write_bottlenecks(ram_photos, mobilenet_backbone, out, batch_size=16, progress=True)
    said = capsys.readouterr().err
    assert 'up to date' in said and 'computing' not in said
    # The records gone, the cache kept: written again from the cached vectors alone.
    before = by_sha256(out, 'train')
    for name in storage.glob(out, '*.tfrecord') + [out + '/manifest.json']:
        storage.remove(name)
    again = write_bottlenecks(ram_photos, mobilenet_backbone, out, batch_size=16, progress=True)
    said = capsys.readouterr().err
    assert 'computing' not in said and 'wrote bottleneck records to ram://' in said
    assert again['fingerprint'] == manifest['fingerprint']
    after = by_sha256(out, 'train')
    assert set(after) == set(before)
    for digest in before:
        np.testing.assert_array_equal(after[digest], before[digest])


def test_verify_train_and_evaluate_read_records_in_memory(ram_records, tmp_path, capsys):
    from tfgraft.tools.cli import main
    out, _ = ram_records
    assert main(['verify', '--bottleneck_dir', out]) == 0
    assert 'OK: %s' % out in capsys.readouterr().out
    model_dir = str(tmp_path / 'model')
    assert main(['train', '--bottleneck_dir', out, '--model_dir', model_dir,
                 '--how_many_training_steps', '60']) == 0
    assert os.path.isfile(os.path.join(model_dir, 'checkpoint'))
    capsys.readouterr()
    assert main(['evaluate', '--bottleneck_dir', out, '--model_dir', model_dir,
                 '--split', 'validation']) == 0
    said = capsys.readouterr().out
    assert '(N=%d,' % (2 * PER_CLASS) in said
    accuracy = float(said.split('Validation accuracy = ')[1].split('%')[0])
    assert accuracy >= 70.0      # 20 real photos; the head sees 20 others


def test_verify_finds_a_bad_shard_in_memory(ram_records):
    from tfgraft.records.verify import verify_records
    out, _ = ram_records
    copy = out + '-broken'
    gfile = tf().io.gfile
    gfile.makedirs(copy)
    for name in ('manifest.json', 'labels.txt', 'train-00000-of-00001.tfrecord'):
        gfile.copy(out + '/' + name, copy + '/' + name, overwrite=True)
    data = storage.read_bytes(out + '/validation-00000-of-00001.tfrecord')
    with gfile.GFile(copy + '/validation-00000-of-00001.tfrecord', 'wb') as handle:
        middle = len(data) // 2          # one byte changed: the record's CRC fails
        handle.write(data[:middle] + bytes([data[middle] ^ 0xff]) + data[middle + 1:])
    with gfile.GFile(copy + '/stray-00000-of-00001.tfrecord', 'wb') as handle:
        handle.write(b'')
    problems = verify_records(copy)
    assert any(p.startswith('validation-00000-of-00001.tfrecord: corrupt') for p in problems), problems
    assert 'stray-00000-of-00001.tfrecord: a shard the manifest does not list' in problems


def test_listing_and_checks_in_memory_as_on_disk(ram_root, tmp_path):
    """Hidden files, OS litter, nested folders, a text file and an empty file: the
    listing and the skip reasons are the local folder's."""
    from tfgraft.records.extract import _check_and_hash
    from tfgraft.records.cache import FileHashes
    from tfgraft.records.listing import list_images
    gfile = tf().io.gfile
    png = tf().io.encode_png(np.full((6, 7, 3), 200, np.uint8)).numpy()
    files = {'ants/a.png': png, 'ants/deep/b.png': png[:-1] + b'\x00', 'ants/.hidden.png': png,
             'ants/Thumbs.db': b'x', 'bees/notes.txt': b'just some words\n', 'bees/c.png': png,
             'bees/empty.png': b'', '.git/config': b'x'}
    results = []
    for root in (ram_root + "/mixed", str(tmp_path / "mixed")):
        for rel, data in files.items():
            folder = os.path.dirname(root + '/' + rel)
            storage.makedirs(folder)
            with gfile.GFile(root + '/' + rel, 'wb') as handle:
                handle.write(data)
        listing = list_images(root, 0, 0)
        usable, skipped = _check_and_hash(listing, FileHashes(root + '/out'), 10 ** 8)
        results.append((listing.classes, listing.entries,
                        [(entry.path, digest) for entry, digest, *_ in usable], skipped))
    in_memory, on_disk = results
    assert in_memory == on_disk
    classes, entries, usable, skipped = in_memory
    assert classes == ['ants', 'bees']
    assert [e.path for e in entries] == ['ants/a.png', 'ants/deep/b.png', 'bees/c.png',
                                         'bees/empty.png', 'bees/notes.txt']
    assert {s['image_path']: s['reason'] for s in skipped} == {
        'ants/deep/b.png': 'truncated PNG (no end marker)', 'bees/c.png': 'duplicate of ants/a.png',
        'bees/empty.png': 'empty file', 'bees/notes.txt': 'not an image (text)'}
    assert [path for path, _ in usable] == ['ants/a.png']


def test_atomic_writes_and_an_interrupted_commit_in_memory(ram_root):
    from tfgraft.records.atomic import atomic_write_json, read_json
    from tfgraft.records.image_check import fallback_decode
    from tfgraft.records.writer import finish_interrupted_commit
    gfile = tf().io.gfile
    folder = ram_root + '/commit'
    gfile.makedirs(folder)
    atomic_write_json(folder + '/a.json', {'x': 1})
    atomic_write_json(folder + '/a.json', {'x': 2})
    assert read_json(folder + '/a.json') == {'x': 2}
    assert read_json(folder + '/missing.json', 'none') == 'none'
    assert gfile.listdir(folder) == ['a.json']
    for name, data in (('old.tfrecord', b'old'), ('train-00000-of-00001.tfrecord.new', b'new'),
                       ('labels.txt.new', b'a\nb\n')):
        with gfile.GFile(folder + '/' + name, 'wb') as handle:
            handle.write(data)
    atomic_write_json(folder + '/commit.json', {'files': ['train-00000-of-00001.tfrecord',
                                                          'labels.txt'], 'remove': ['old.tfrecord']})
    assert finish_interrupted_commit(folder)      # as the next reader or writer finds it
    assert sorted(gfile.listdir(folder)) == ['a.json', 'labels.txt', 'train-00000-of-00001.tfrecord']
    assert storage.read_bytes(folder + '/train-00000-of-00001.tfrecord') == b'new'
    with gfile.GFile(folder + '/.half.json.1234.tmp', 'wb') as handle:   # a killed atomic write
        handle.write(b'{')
    assert not finish_interrupted_commit(folder)
    assert '.half.json.1234.tmp' not in gfile.listdir(folder)
    # scikit-image's decoding (for formats TensorFlow gets wrong) reads a URL's bytes too
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    with gfile.GFile(folder + '/p.png', 'wb') as handle:
        handle.write(tf().io.encode_png(pixels).numpy())
    np.testing.assert_array_equal(fallback_decode(folder + '/p.png'), pixels)


@pytest.mark.slow        # a minute: two Beam worker processes start and load the graph
def test_beam_reads_and_writes_file_urls(local_photos, local_records, mobilenet_pb, tmp_path):
    """The Beam job (2 worker processes) on file:// URLs: every file of the job goes
    through tf.io.gfile, in the driver and the workers; its job file and log go to a
    local folder of their own."""
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail("apache-beam missing: pip install '.[test,beam]'")
        pytest.skip('apache-beam is not installed')
    out = 'file://' + str(tmp_path / 'beam')
    done = subprocess.run(
        [sys.executable, '-m', 'tfgraft.tools.cli', 'bottlenecks', '--image_dir',
         'file://' + local_photos, '--graph', mobilenet_pb, '--bottleneck_dir', out,
         '--batch_size', '8', '--runner', 'DirectRunner', '--direct_num_workers=2',
         '--direct_running_mode=multi_processing'], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'on Beam (DirectRunner)' in done.stderr
    assert_same_records(out, local_records, 1e-5)
    cache = [name for _, _, names in os.walk(tmp_path / 'beam') for name in names]
    assert 'beam.log' not in cache and not [n for n in cache if n.startswith('batch-')]
