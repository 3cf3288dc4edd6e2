"""Killing the bottleneck tool at any moment loses nothing and corrupts nothing."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfgraft.records import reader, writer
from tfgraft.tools import cli


@pytest.fixture(scope='module')
def photo_set(tmp_path_factory, cats_and_dogs):
    """300 real photos in two class folders (hash splits)."""
    root = tmp_path_factory.mktemp('crash') / 'photos'
    for name in ('cats', 'dogs'):
        source = os.path.join(cats_and_dogs, 'train', name)
        os.makedirs(root / name)
        for file_name in sorted(os.listdir(source))[:150]:
            shutil.copy(os.path.join(source, file_name), root / name / file_name)
    return str(root)


def bottlenecks_command(photo_set, graph, out):
    return [sys.executable, '-m', 'tfgraft.tools.cli', 'bottlenecks', '--image_dir', photo_set,
            '--graph', graph, '--bottleneck_dir', out, '--batch_size', '16']


def records_by_path(out):
    manifest = reader.read_manifest(out)
    result = {}
    for split in ('train', 'validation', 'test'):
        if manifest['splits'][split]['count'] == 0:
            continue
        data = reader.load_split(out, split, manifest)
        assert len(data['labels']) == manifest['splits'][split]['count']
        for path, vector, label in zip(data['image_paths'], data['bottlenecks'], data['labels']):
            assert path not in result, 'duplicate record for %s' % path
            result[path] = (split, int(label), vector)
    return result


@pytest.mark.slow
def test_sigkill_at_many_moments_then_resume(photo_set, mobilenet_pb, tmp_path):
    reference = str(tmp_path / 'reference')
    started = time.time()
    subprocess.run(bottlenecks_command(photo_set, mobilenet_pb, reference), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    full_run = time.time() - started
    expected = records_by_path(reference)
    assert len(expected) == 300

    out = str(tmp_path / 'killed')
    kills = 0
    # Early kills land in start-up and extraction, later ones in the commit; once the
    # cache is full a resumed run is shorter, so the schedule goes on until 6 kills landed.
    for fraction in (0.35, 0.5, 0.65, 0.8, 0.9, 0.97, 0.6, 0.7, 0.75, 0.85, 0.55, 0.65):
        if kills == 6:
            break
        process = subprocess.Popen(bottlenecks_command(photo_set, mobilenet_pb, out),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full_run * fraction)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        if os.path.exists(os.path.join(out, writer.MANIFEST_NAME)):
            records_by_path(out)        # whatever is there reads as one complete output
    assert kills >= 5

    subprocess.run(bottlenecks_command(photo_set, mobilenet_pb, out), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = records_by_path(out)
    assert sorted(got) == sorted(expected)
    for path, (split, label, vector) in expected.items():
        assert got[path][:2] == (split, label)
        assert np.allclose(got[path][2], vector, atol=1e-5)
    assert not [f for f in os.listdir(out) if f.endswith(('.new', '.tmp'))]


@pytest.mark.parametrize('code, words', [(errno.ENOSPC, 'No space left on device'),
                                         (errno.EROFS, 'Read-only file system')])
def test_disk_full_or_read_only_is_one_line_and_keeps_old_output(
        photo_set, mobilenet_pb, tmp_path, monkeypatch, capsys, code, words):
    photo_set = shutil.copytree(photo_set, str(tmp_path / 'photos'))
    out = str(tmp_path / 'records')
    args = ['bottlenecks', '--image_dir', photo_set, '--graph', mobilenet_pb,
            '--bottleneck_dir', out]
    assert cli.main(args) == 0
    before = records_by_path(out)
    os.unlink(os.path.join(photo_set, 'dogs', sorted(os.listdir(os.path.join(photo_set, 'dogs')))[-1]))

    def failing_write(path, examples):
        raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(writer, '_write_shard', failing_write)
    capsys.readouterr()
    assert cli.main(args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('tfgraft: error: ' + words)
    assert 'Traceback' not in '\n'.join(err)
    assert sorted(records_by_path(out)) == sorted(before)
