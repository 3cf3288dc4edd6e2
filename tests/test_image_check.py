"""Header checks before decoding: every awkward file gets its expected outcome."""
import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from corpus.make_corpus import make_corpus
from tfgraft.records import image_check
from tfgraft.records.image_check import (
    SkipImage, fallback_decode, hash_and_inspect, inspect_image, is_candidate_file)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('corpus'))
    return root, make_corpus(root)


def cases(corpus, outcome):
    root, expected = corpus
    found = [(os.path.join(root, *rel.split('/')), case) for rel, case in sorted(expected.items())
             if case.outcome == outcome]
    assert found, 'the corpus has no %r case' % outcome
    return found


def pillow_rgb(path):
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'))


def tf_rgb(path):
    contents = tf.io.read_file(path)
    return tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8).numpy()


def mean_difference(a, b):
    if a.shape != b.shape:
        return float('inf')
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def test_used_files_pass_with_their_header_size(corpus):
    duplicates = [(path, case) for path, case in cases(corpus, 'skipped') if case.reason == 'duplicate']
    for path, case in cases(corpus, 'used') + duplicates:   # a duplicate is fine on its own
        info = inspect_image(path)
        with Image.open(path) as image:
            assert (info.width, info.height) == image.size, path
        assert info.needs_fallback == case.fallback, (path, info)


def test_skipped_files_give_their_reason(corpus):
    for path, case in cases(corpus, 'skipped'):
        if case.reason == 'duplicate':
            continue
        with pytest.raises(SkipImage, match=case.reason):
            inspect_image(path)


def test_ignored_files_are_not_candidates(corpus):
    for path, case in cases(corpus, 'ignored'):
        if os.path.islink(path):
            assert os.path.isdir(path)   # a folder link: the listing does not follow it
        else:
            assert not is_candidate_file(os.path.basename(path)), path
    assert is_candidate_file('photo.JPG') and is_candidate_file('no extension')


def test_tensorflow_decodes_what_needs_no_fallback(corpus):
    for path, case in cases(corpus, 'used'):
        reference = pillow_rgb(path)
        if not case.fallback:
            assert mean_difference(tf_rgb(path), reference) < 3, path
            continue
        # TensorFlow gets these wrong or fails; the fallback gets them right.
        try:
            assert mean_difference(tf_rgb(path), reference) > 10, path
        except tf.errors.InvalidArgumentError:
            pass
        assert mean_difference(fallback_decode(path), reference) < 1, path


def test_cut_or_damaged_headers_only_skip(corpus, tmp_path):
    rng = np.random.default_rng(0)
    for source, _ in cases(corpus, 'used'):
        with open(source, 'rb') as handle:
            data = handle.read()
        damaged = [data[:n] for n in range(1, 80, 3)]
        for _ in range(20):
            copy = bytearray(data[:200])
            copy[rng.integers(0, len(copy))] = rng.integers(0, 256)
            damaged.append(bytes(copy))
        path, skipped = tmp_path / 'damaged', 0
        for variant in damaged:
            path.write_bytes(variant)
            try:
                inspect_image(str(path))
            except SkipImage:   # anything else escaping is a bug
                skipped += 1
        assert skipped >= 3, source   # at least the cuts inside the magic bytes


def test_max_pixels_is_the_callers(corpus):
    root, _ = corpus
    path = os.path.join(root, 'good_class', 'long thin.png')
    assert inspect_image(path).width == 10000
    with pytest.raises(SkipImage, match='too many pixels: 10000x3 > max_pixels 29999'):
        inspect_image(path, max_pixels=29999)


def test_unreadable_file(tmp_path):
    path = tmp_path / 'folder.jpg'
    path.mkdir()
    with pytest.raises(SkipImage, match='not a regular file'):
        inspect_image(str(path))
    with pytest.raises(SkipImage, match='unreadable: no such file'):
        inspect_image(str(tmp_path / 'missing.jpg'))


@pytest.mark.parametrize('whole_file_bytes', [image_check.WHOLE_FILE_BYTES, 100])
def test_inspection_hashes_the_whole_file_in_the_same_pass(corpus, monkeypatch, whole_file_bytes):
    """Read once into memory, or (over WHOLE_FILE_BYTES) streamed after the check: the
    digest is the file's, and the check's outcome is the one without hashing."""
    monkeypatch.setattr(image_check, 'WHOLE_FILE_BYTES', whole_file_bytes)
    for path, case in cases(corpus, 'used'):
        status, digest, info = hash_and_inspect(path)
        with open(path, 'rb') as handle:
            assert digest == hashlib.sha256(handle.read()).hexdigest(), path
        assert status.st_size == os.path.getsize(path), path
        assert info == inspect_image(path), path
    for path, case in cases(corpus, 'skipped'):
        if os.path.isfile(path):
            assert outcome(lambda p: hash_and_inspect(p)[2], path) == outcome(inspect_image, path), path


def outcome(check, path):
    """What check(path) makes of a file: its ImageInfo, or why it is skipped."""
    try:
        return check(path)
    except SkipImage as error:
        return str(error)


def test_hashing_reads_a_file_once_and_to_its_end(corpus, monkeypatch):
    """One read when the file still has the size fstat gave; a file that grew or shrank
    since is read to its end."""
    path = next(path for path, case in cases(corpus, 'used') if os.path.getsize(path) > 1000)
    with open(path, 'rb') as handle:
        data = handle.read()
    reads = []
    real_read = os.read
    monkeypatch.setattr(os, 'read', lambda fd, size: reads.append(size) or real_read(fd, size))
    status, digest, _ = hash_and_inspect(path)
    assert len(reads) == 1 and digest == hashlib.sha256(data).hexdigest()
    fd = os.open(path, os.O_RDONLY)
    try:
        for size_at_stat in (len(data) - 700, len(data) + 50, 1):
            os.lseek(fd, 0, os.SEEK_SET)
            assert image_check._read_whole(fd, size_at_stat) == data, size_at_stat
    finally:
        os.close(fd)


def test_real_photos_all_pass(cats_and_dogs):
    paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(cats_and_dogs)
                   for name in names)
    assert len(paths) == 3000
    infos = [inspect_image(path) for path in paths]
    assert {(info.format, info.color, info.needs_fallback) for info in infos} == {('jpeg', 'rgb', False)}
    for path, info in list(zip(paths, infos))[::150]:
        with Image.open(path) as image:
            assert (info.width, info.height) == image.size, path
