"""One extraction session, built before the files are known, serves any number of runs;
every tfgraft pipeline runs with tf.data's autotuner off (records/pipeline.py)."""
import gc
import os
import threading

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from tfgraft.graphs.errors import GraftError
from tfgraft.records import extract, reader
from tfgraft.records.extract import ExtractionSession, compute_bottlenecks, image_batches


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """Three JPEGs TensorFlow decodes and one 8-bit palette BMP it does not (the fallback)."""
    from PIL import Image
    folder = tmp_path_factory.mktemp('photos')
    paths = []
    for name in ('chelsea', 'astronaut', 'coffee'):
        path = str(folder / (name + '.jpg'))
        Image.fromarray(getattr(skimage.data, name)()).save(path, quality=90)
        paths.append(path)
    path = str(folder / 'rocket.bmp')
    Image.fromarray(skimage.data.rocket()).convert('P').save(path)
    paths.append(path)
    return paths


def vectors_of(run, paths, fallback):
    found = {}
    run(paths, found.__setitem__, fallback)
    return found


def test_a_warm_session_gives_each_run_what_a_fresh_one_gives(mobilenet_backbone, photos):
    fresh = {}
    compute_bottlenecks(photos, mobilenet_backbone, 2, fresh.__setitem__, progress=False,
                        fallback=[3])
    assert sorted(fresh) == [0, 1, 2, 3]
    session = ExtractionSession(mobilenet_backbone, 2)
    try:
        first = vectors_of(session.run, photos, [3])
        # A second run with other files and no fallback: nothing is left over from the first.
        second = vectors_of(session.run, photos[1:3], ())
    finally:
        session.close()
    assert sorted(first) == [0, 1, 2, 3] and sorted(second) == [0, 1]
    for index in fresh:
        np.testing.assert_allclose(first[index], fresh[index], atol=1e-5)
    np.testing.assert_allclose(second[0], fresh[1], atol=1e-5)
    np.testing.assert_allclose(second[1], fresh[2], atol=1e-5)


def class_folders(tmp_path, photos):
    image_dir = tmp_path / 'images'
    for label, chosen in (('cats', photos[:2]), ('things', photos[2:])):
        os.makedirs(image_dir / label)
        for path in chosen:
            os.link(path, image_dir / label / os.path.basename(path))
    return image_dir


def test_write_bottlenecks_warms_up_only_when_a_file_is_new(mobilenet_backbone, photos, tmp_path,
                                                            monkeypatch):
    image_dir = class_folders(tmp_path, photos)
    sessions, threads = [], []
    real, real_optimise = ExtractionSession.__init__, ExtractionSession.optimise

    def counting(self, *args):
        sessions.append(self)
        threads.append(threading.current_thread().name)
        real(self, *args)

    def optimising(self):
        threads.append(threading.current_thread().name)
        return real_optimise(self)
    monkeypatch.setattr(ExtractionSession, '__init__', counting)
    monkeypatch.setattr(ExtractionSession, 'optimise', optimising)
    closed = []
    monkeypatch.setattr(ExtractionSession, 'close', lambda self: closed.append(self))
    out = str(tmp_path / 'records')
    extract.write_bottlenecks(str(image_dir), mobilenet_backbone, out, batch_size=2, progress=False)
    assert len(sessions) == 1
    # the graph is built by the caller, Grappler runs on a thread while files are checked
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith('tfgraft-warm-up')
    extract.write_bottlenecks(str(image_dir), mobilenet_backbone, out, batch_size=2, progress=False)
    assert len(sessions) == 1          # nothing new: no TensorFlow work at all
    assert closed == sessions


@pytest.mark.slow
def test_pipelines_run_without_the_autotuner(cats_dogs_records, mobilenet_backbone, photos):
    batches = image_batches(np.arange(3), photos[:3], mobilenet_backbone.card, 2)
    assert batches.options().autotune.enabled is False
    assert batches.options().experimental_optimization.apply_default_optimizations is False
    assert batches.options().threading.private_threadpool_size == extract.usable_cores()
    assert reader.make_dataset(cats_dogs_records, 'validation').options().autotune.enabled is False


def test_files_neither_decoder_reads_are_dropped_quietly(mobilenet_backbone, photos, tmp_path,
                                                          capfd):
    broken_jpeg = tmp_path / 'broken.jpg'
    broken_jpeg.write_bytes(b'\xff\xd8\xff\xe0' + bytes(200))
    broken_bmp = tmp_path / 'broken.bmp'
    broken_bmp.write_bytes(b'BM' + bytes(200))
    paths = [photos[0], str(broken_jpeg), photos[3], str(broken_bmp)]
    found = {}
    compute_bottlenecks(paths, mobilenet_backbone, 2, found.__setitem__, progress=False,
                        fallback=[2, 3])       # the BMPs go to scikit-image
    assert sorted(found) == [0, 2]
    assert 'Traceback' not in capfd.readouterr().err


def test_objects_older_than_a_run_are_left_out_of_garbage_collection_during_it(
        mobilenet_backbone, photos, tmp_path, monkeypatch):
    image_dir = class_folders(tmp_path, photos)
    assert gc.get_freeze_count() == 0
    frozen_while_checking = []
    real = extract._check_and_hash

    def checking(*args):
        frozen_while_checking.append(gc.get_freeze_count())
        return real(*args)
    monkeypatch.setattr(extract, '_check_and_hash', checking)
    extract.write_bottlenecks(str(image_dir), mobilenet_backbone, str(tmp_path / 'records'),
                              batch_size=2, progress=False)
    assert frozen_while_checking[0] > 10000      # TensorFlow's modules, this test's objects
    assert gc.get_freeze_count() == 0
    with pytest.raises(GraftError):
        extract.write_bottlenecks(str(tmp_path / 'missing'), mobilenet_backbone,
                                  str(tmp_path / 'records'), progress=False)
    assert gc.get_freeze_count() == 0
