"""Bottleneck extraction on Apache Beam (multi-process DirectRunner) against the in-process
path, on real photos and the real MobileNet v1 0.25/128 graph: the whole cats_and_dogs_filtered
set (slow), and a 400-photo subset for the kill, retry and reuse checks."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import copy_real_photos, local_folders, records_in_new_folder
from tfgraft.records import reader
from tfgraft.records.extract import write_bottlenecks

PER_CLASS = 100     # photos per class and split: 400 of the 3000, to keep CI short
TWO_PROCESSES = ['--direct_num_workers=2', '--direct_running_mode=multi_processing']


def need_beam():
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail("apache-beam missing: pip install '.[test,beam]'")
        pytest.skip('apache-beam is not installed')


@pytest.fixture(scope='module')
def photos(tmp_path_factory, cats_and_dogs):
    """PER_CLASS photos of each class in train/ and validation/, linked from the real set."""
    root = tmp_path_factory.mktemp('beam_photos')
    copy_real_photos(cats_and_dogs, PER_CLASS, local_folders(root))
    return str(root)


def tfgraft(*argv, env=None):
    """`tfgraft ...` in a child process: (exit code, stderr)."""
    done = subprocess.run([sys.executable, '-m', 'tfgraft.tools.cli'] + list(argv),
                          capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    return done.returncode, done.stderr


@pytest.fixture(scope='module')
def in_process(tmp_path_factory, photos, mobilenet_backbone):
    return records_in_new_folder(tmp_path_factory, 'in_process', photos, mobilenet_backbone, 32)


@pytest.fixture(scope='module')
def on_beam(tmp_path_factory, photos, mobilenet_pb):
    """Two worker processes; the first to have done 40 images is killed once, mid-run."""
    need_beam()
    out = str(tmp_path_factory.mktemp('on_beam'))
    marker = str(tmp_path_factory.mktemp('kill') / 'killed')
    code, stderr = tfgraft('bottlenecks', '--image_dir', photos, '--graph', mobilenet_pb,
                           '--bottleneck_dir', out, '--batch_size', '16',
                           '--runner', 'DirectRunner', *TWO_PROCESSES,
                           env={'TFGRAFT_TEST_KILL_AFTER': '40',
                                'TFGRAFT_TEST_KILL_MARKER': marker})
    assert code == 0, stderr
    return out, marker, stderr


def by_sha256(bottleneck_dir, split):
    data = reader.load_split(bottleneck_dir, split)
    digests = list(data['image_sha256s'])
    return digests, dict(zip(digests, data['bottlenecks']))


def test_beam_run_matches_the_in_process_run(in_process, on_beam):
    beam_dir, marker, stderr = on_beam
    assert os.path.exists(marker), 'the test hook never killed a worker'
    assert 'on Beam (DirectRunner)' in stderr
    for split in ('train', 'validation'):
        expected_list, expected = by_sha256(in_process, split)
        got_list, got = by_sha256(beam_dir, split)
        assert len(expected_list) == 2 * PER_CLASS
        assert len(got_list) == len(set(got_list)) == 2 * PER_CLASS   # no duplicate, none missing
        assert set(got) == set(expected)
        difference = max(np.abs(got[d] - expected[d]).max() for d in expected)
        assert difference <= 1e-5
    beam_manifest, manifest = reader.read_manifest(beam_dir), reader.read_manifest(in_process)
    for key in ('classes', 'splits', 'skipped', 'fingerprint', 'split_rule', 'bottleneck_size'):
        assert beam_manifest[key] == manifest[key], key
    with open(os.path.join(beam_dir, 'labels.txt')) as handle:
        assert handle.read() == 'cats\ndogs\n'
    staged = os.path.join(beam_dir, '.cache')
    assert not [name for _, _, names in os.walk(staged) for name in names
                if name.startswith('batch-')], 'staging files left behind'


@pytest.mark.slow
def test_beam_on_the_whole_set_matches_the_in_process_run(cats_dogs_records, cats_and_dogs,
                                                          mobilenet_pb, tmp_path):
    """All 3000 photos on Beam (2 worker processes) against the session's in-process
    records of the same set: the same image_sha256 per split, vectors within 1e-5."""
    need_beam()
    out = str(tmp_path / 'on_beam')
    code, stderr = tfgraft('bottlenecks', '--image_dir', cats_and_dogs, '--graph', mobilenet_pb,
                           '--bottleneck_dir', out, '--runner', 'DirectRunner', *TWO_PROCESSES)
    assert code == 0, stderr
    assert 'computing 3000 bottlenecks (0 cached)' in stderr and 'on Beam (DirectRunner)' in stderr
    for split, count in (('train', 2000), ('validation', 1000)):
        expected_list, expected = by_sha256(cats_dogs_records, split)
        got_list, got = by_sha256(out, split)
        assert len(expected_list) == count
        assert len(got_list) == len(set(got_list)) == count
        assert set(got) == set(expected)
        assert max(np.abs(got[d] - expected[d]).max() for d in expected) <= 1e-5
    beam_manifest, manifest = reader.read_manifest(out), reader.read_manifest(cats_dogs_records)
    for key in ('classes', 'splits', 'skipped', 'fingerprint'):
        assert beam_manifest[key] == manifest[key], key


def test_each_path_reuses_the_others_vectors(tmp_path, in_process, on_beam, photos,
                                             mobilenet_backbone, mobilenet_pb, capsys):
    beam_copy, local_copy = str(tmp_path / 'beam'), str(tmp_path / 'local')
    shutil.copytree(on_beam[0], beam_copy)
    shutil.copytree(in_process, local_copy)
    write_bottlenecks(photos, mobilenet_backbone, beam_copy, batch_size=32, progress=True)
    said = capsys.readouterr().err
    assert 'computing' not in said and 'up to date' in said
    code, stderr = tfgraft('bottlenecks', '--image_dir', photos, '--graph', mobilenet_pb,
                           '--bottleneck_dir', local_copy, '--runner', 'DirectRunner',
                           *TWO_PROCESSES)
    assert code == 0, stderr
    assert 'computing' not in stderr and 'up to date' in stderr


def test_a_killed_pipelines_staged_vectors_are_gathered(tmp_path, photos, mobilenet_backbone,
                                                        in_process):
    """Batches a worker finished before the whole run died are used by the next run."""
    need_beam()
    from tfgraft.records import beam_pipeline
    from tfgraft.records.extract import Pending, _check_and_hash, open_listing
    out = str(tmp_path / 'out')
    listing, hashes = open_listing(photos, out, 10, 10, False)
    usable, _ = _check_and_hash(listing, hashes, 10 ** 8)
    pending = Pending(listing, usable, out, mobilenet_backbone)
    _, expected = by_sha256(in_process, 'train')
    staged = [digest for digest, _, _ in pending.todo if digest in expected][:30]
    folder = beam_pipeline.staging_dir(pending.cache)
    beam_pipeline.write_staging_file(folder, staged[:20], np.stack([expected[d] for d in staged[:20]]))
    beam_pipeline.write_staging_file(folder, staged[10:], np.stack([expected[d] for d in staged[10:]]))
    with open(os.path.join(folder, 'batch-x-n3.npz.partial'), 'wb') as handle:
        handle.write(b'half a file')
    fresh = Pending(listing, usable, out, mobilenet_backbone)
    assert beam_pipeline.gather_staging_files(fresh.cache) == 30      # 10 copies dropped
    assert os.listdir(folder) == []
    again = Pending(listing, usable, out, mobilenet_backbone)     # from the cache's chunk on disk
    assert len(again.todo) == len(pending.todo) - 30
    for digest in staged:
        np.testing.assert_array_equal(again.cache.vectors[digest], expected[digest])


def test_runner_flags(photos, mobilenet_pb, tmp_path, monkeypatch, capsys):
    from tfgraft.tools import cli
    argv = ['bottlenecks', '--image_dir', photos, '--graph', mobilenet_pb,
            '--bottleneck_dir', str(tmp_path / 'out')]
    assert cli.main(argv + ['--direct_num_workers=2']) == 2
    said = capsys.readouterr().err.strip().split('\n')
    assert said == ['tfgraft: error: unrecognized arguments: --direct_num_workers=2 '
                    '(Beam pipeline options need --runner)']
    monkeypatch.setitem(sys.modules, 'apache_beam', None)     # as if it were not installed
    assert cli.main(argv + ['--runner', 'DirectRunner']) == 2
    said = capsys.readouterr().err.strip().split('\n')
    assert said == ["tfgraft: error: --runner needs Apache Beam: pip install 'tfgraft[beam]'"]
    assert not os.path.exists(tmp_path / 'out' / 'manifest.json')
    with pytest.raises(SystemExit):
        cli.main(['verify', '--bottleneck_dir', str(tmp_path), '--direct_num_workers=2'])
    assert 'unrecognized arguments: --direct_num_workers=2' in capsys.readouterr().err


def test_beam_workers_build_and_decode_as_the_driver(tmp_path, cats_and_dogs, mobilenet_backbone,
                                                     monkeypatch):
    """--fast_decode on Beam: the job a worker gets carries the rewriting, fast_decode,
    precision and each JPEG's size, and its vectors are the in-process run's (one cache).
    The workers' DoFn runs here on the job's batches, without a pipeline, to stay short."""
    need_beam()
    from tfgraft.records import beam_pipeline
    source = os.path.join(cats_and_dogs, 'train')
    images = tmp_path / 'images'
    for name in ('cats', 'dogs'):
        os.makedirs(images / name)
        for file_name in sorted(os.listdir(os.path.join(source, name)))[:6]:
            os.symlink(os.path.join(source, name, file_name), images / name / file_name)
    specs = []

    def run_in_here(spec, job_dir):
        specs.append(spec)
        worker = beam_pipeline.ExtractBatches(spec['backbone'], spec['allow_ops'],
                                              spec['batch_size'], spec['folder'],
                                              spec['fast_decode'], spec['precision'])
        worker.setup()
        todo = [tuple(item) for item in spec['todo']]
        for start in range(0, len(todo), spec['batch_size']):
            list(worker.process(todo[start:start + spec['batch_size']]))
        worker.teardown()
        return 0

    monkeypatch.setattr(beam_pipeline, '_run_attempt', run_in_here)
    beam_dir, local_dir, plain_dir = (str(tmp_path / name) for name in ('beam', 'local', 'plain'))
    on_beam = beam_pipeline.write_bottlenecks_on_beam(
        str(images), mobilenet_backbone, beam_dir, 'DirectRunner', batch_size=5, progress=False,
        fast_decode=True)
    local = write_bottlenecks(str(images), mobilenet_backbone, local_dir, batch_size=5,
                              progress=False, fast_decode=True)
    write_bottlenecks(str(images), mobilenet_backbone, plain_dir, batch_size=5, progress=False)
    spec, = specs
    assert spec['fast_decode'] is True and spec['precision'] == 'float32'
    assert spec['backbone']['rewrite'] == mobilenet_backbone.rewrite_version > 0
    assert len(spec['todo']) == 12 and all(len(item[3]) == 2 for item in spec['todo'])
    assert on_beam['fast_decode'] and on_beam['precision'] == 'float32'
    assert on_beam['fingerprint'] == local['fingerprint']
    got, expected, plain = ({}, {}, {})
    for split in ('train', 'validation', 'test'):
        for folder, found in ((beam_dir, got), (local_dir, expected), (plain_dir, plain)):
            if reader.read_manifest(folder)['splits'][split]['count']:
                found.update(by_sha256(folder, split)[1])
    assert len(got) == len(expected) == 12
    assert max(np.abs(got[d] - expected[d]).max() for d in expected) <= 1e-5
    assert max(np.abs(plain[d] - expected[d]).max() for d in expected) > 1e-3   # it was scaled
