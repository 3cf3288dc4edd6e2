"""Images -> bottleneck records with the backbone run by an Apache Beam pipeline.

The same job as records/extract.py's write_bottlenecks, with the same listing,
checks, cache and commit (its open_listing, Pending and commit_records): only
the vectors of images not yet cached are computed by the pipeline. Each worker
loads the backbone once (DoFn.setup, from the description a manifest records:
rewritten for inference or the file's graph, as the driver's) and decodes as
the driver would (--fast_decode, --precision), so the two caches are one; it is fed batches (BatchElements); it writes each batch's vectors to a staging
file under the cache folder, through tf.io.gfile. When the pipeline has
finished, the driver gathers the staging files into the cache (one vector per
image sha256: a bundle re-run after a worker died may leave a second copy,
which is dropped) and writes the records as one commit. Staging files a killed
run left behind are gathered by the next run, so their vectors are not lost.
"""
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from tfgraft.graphs.errors import GraftError
from tfgraft.records import storage
from tfgraft.records.atomic import atomic_write_json

# TensorFlow (and the modules of tfgraft that import it) is imported inside the functions
# that use it: the child process that submits the pipeline does not need it, and
# importing it took that child 10-30 s on a busy 2-core machine.

STAGING_NAME = 'staging'
# Test-only: the first worker to compute this many images exits on the spot, once (the
# marker file says it happened), so that tests can check Beam's retry of its bundle.
KILL_AFTER_ENV = 'TFGRAFT_TEST_KILL_AFTER'
KILL_MARKER_ENV = 'TFGRAFT_TEST_KILL_MARKER'


def staging_dir(cache):
    return os.path.join(cache.folder, STAGING_NAME)


def _staged_count(name):
    """Vectors in a staging file, from its name (…-n<count>.npz)."""
    try:
        return int(name.rsplit('-n', 1)[1].split('.')[0])
    except (IndexError, ValueError):
        return 0


def write_staging_file(folder, digests, vectors):
    """One batch's vectors, written to a partial name and renamed when complete."""
    import tensorflow as tf
    buffer = io.BytesIO()
    np.savez(buffer, sha256=np.array(digests), vectors=np.asarray(vectors, np.float32))
    name = os.path.join(folder, 'batch-%s-n%d.npz' % (uuid.uuid4().hex, len(digests)))
    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(name + '.partial', 'wb') as handle:
        handle.write(buffer.getvalue())
    tf.io.gfile.rename(name + '.partial', name, overwrite=True)


def gather_staging_files(cache):
    """Move every finished staging file's vectors into the cache; returns how many were
    new. A vector whose image is already cached is a copy from a re-run bundle: dropped.
    The staging files are deleted only after the cache's chunk is written."""
    import tensorflow as tf
    folder = staging_dir(cache)
    if not tf.io.gfile.isdir(folder):
        return 0
    names = tf.io.gfile.glob(os.path.join(folder, 'batch-*.npz'))
    added = 0
    for name in names:
        try:
            with tf.io.gfile.GFile(name, 'rb') as handle:
                with np.load(io.BytesIO(handle.read()), allow_pickle=False) as staged:
                    digests, vectors = staged['sha256'], staged['vectors']
        except (OSError, ValueError, KeyError, tf.errors.OpError):
            continue            # unreadable: its images are simply computed again
        for digest, vector in zip(digests, vectors):
            digest = str(digest)
            if digest not in cache.vectors:
                cache.vectors[digest] = vector
                cache.pending[digest] = vector
                added += 1
    cache.flush()
    for name in tf.io.gfile.glob(os.path.join(folder, 'batch-*')):   # finished and partial
        tf.io.gfile.remove(name)
    return added


class ExtractBatches(beam.DoFn):
    """Batches of (sha256, path, needs_fallback, JPEG size or None) -> staging files of
    their vectors; emits the sha256 of each image done. The backbone is loaded in
    setup() from its description (a file path and sha256), so nothing of TensorFlow is
    pickled."""

    def __init__(self, description, allow_ops, batch_size, folder, fast_decode=False,
                 precision='float32'):
        self._description = description
        self._allow_ops = list(allow_ops)
        self._batch_size = batch_size
        self._folder = folder
        self._fast_decode, self._precision = bool(fast_decode), precision
        self._session = None
        self._done = 0

    def setup(self):
        from tfgraft.graphs.factory import load_described
        from tfgraft.records import extract
        backbone = load_described(self._description, self._allow_ops)
        self._session = extract.ExtractionSession(backbone, self._batch_size, self._fast_decode,
                                                  self._precision).optimise()
        self._done = 0

    def process(self, batch):
        paths = [item[1] for item in batch]
        fallback = [i for i, item in enumerate(batch) if item[2]]
        sizes = [item[3] for item in batch]
        found = {}
        self._session.run(paths, found.__setitem__, fallback, sizes=sizes)
        self._done += len(batch)
        self._die_once_if_asked()
        if found:
            indices = sorted(found)
            write_staging_file(self._folder, [batch[i][0] for i in indices],
                               np.stack([found[i] for i in indices]))
        for i in sorted(found):
            yield batch[i][0]

    def _die_once_if_asked(self):
        after, marker = os.environ.get(KILL_AFTER_ENV), os.environ.get(KILL_MARKER_ENV)
        if not after or not marker or self._done < int(after):
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(17)

    def teardown(self):
        if self._session is not None:
            self._session.close()
            self._session = None


class _StagingProgress:
    """A progress bar fed by the staging files the workers write (they are in other
    processes, maybe other machines): counted every second until stopped. `done_before`
    counts the vectors of earlier attempts, already gathered into the cache."""

    def __init__(self, cache, total):
        self._folder, self._total = staging_dir(cache), total
        self.done_before = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name='tfgraft-beam-progress')

    def _watch(self):
        import tensorflow as tf
        bar = tf.keras.utils.Progbar(self._total, unit_name='image', stateful_metrics=['images/s'])
        started = time.time()
        while not self._stop.wait(1.0):
            try:
                names = tf.io.gfile.glob(os.path.join(self._folder, 'batch-*.npz'))
            except tf.errors.OpError:
                continue
            done = min(self._total, self.done_before + sum(_staged_count(n) for n in names))
            bar.update(done, [('images/s', done / max(time.time() - started, 1e-9))])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        print(file=sys.stderr)


def run_pipeline(todo, description, allow_ops, batch_size, folder, runner, beam_args,
                 fast_decode=False, precision='float32'):
    """Compute the vectors of `todo` [(sha256, path, needs_fallback, JPEG size or None)]
    on Beam, into staging files under `folder`; returns when the pipeline has finished."""
    options = PipelineOptions(['--runner=%s' % runner] + list(beam_args))
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline
             | 'images' >> beam.Create([tuple(item) for item in todo])
             | 'spread' >> beam.Reshuffle()
             | 'batch' >> beam.BatchElements(min_batch_size=batch_size,
                                              max_batch_size=batch_size)
             | 'backbone' >> beam.ParDo(ExtractBatches(description, allow_ops, batch_size,
                                                       folder, fast_decode, precision)))


# The pipeline is submitted from a child process of tfgraft's, in a session of its own.
# Runners on a cluster re-run a dead worker's bundles themselves; Beam's local runner
# (DirectRunner with multi_processing workers) does not: its driver waits for that bundle
# forever. The child notices a dead local worker and exits with WORKER_DIED; tfgraft then
# ends the child's processes, keeps the batches already staged, and runs the pipeline
# again over the images still missing, up to ATTEMPTS times in all.
WORKER_DIED = 75
ATTEMPTS = 3
JOB_NAME = 'beam-job.json'
LOG_NAME = 'beam.log'


def job_main(spec_path):
    """The child's side: run the pipeline a job file describes; exit 0 when it finished."""
    def on_thread_error(hook_args):
        if 'Worker subprocess exited' in str(hook_args.exc_value):
            print('tfgraft: a Beam worker process died: %s' % hook_args.exc_value,
                  file=sys.stderr, flush=True)
            os._exit(WORKER_DIED)
        threading.__excepthook__(hook_args)

    threading.excepthook = on_thread_error
    with open(spec_path, encoding='utf-8') as handle:
        spec = json.load(handle)
    try:
        run_pipeline(spec['todo'], spec['backbone'], spec['allow_ops'], spec['batch_size'],
                     spec['folder'], spec['runner'], spec['beam_args'],
                     spec.get('fast_decode', False), spec.get('precision', 'float32'))
    except Exception as error:
        print('tfgraft: error: %s: %s' % (type(error).__name__, ' '.join(str(error).split())[:400]),
              file=sys.stderr, flush=True)
        sys.exit(1)
    sys.exit(0)


def _last_error(log_path):
    try:
        with open(log_path, encoding='utf-8', errors='replace') as handle:
            lines = [line.strip() for line in handle if line.startswith('tfgraft: ')]
    except OSError:
        return ''
    return lines[-1][len('tfgraft: '):].replace('error: ', '', 1) if lines else ''


def _run_attempt(spec, job_dir):
    """Run one pipeline in a child process; its exit code. Every process it started is
    ended when it returns (or when tfgraft is interrupted)."""
    spec_path = os.path.join(job_dir, JOB_NAME)
    atomic_write_json(spec_path, spec, indent=None)
    with open(os.path.join(job_dir, LOG_NAME), 'ab') as log:
        child = subprocess.Popen(
            [sys.executable, '-c', 'import sys; from tfgraft.records.beam_pipeline import '
             'job_main; job_main(sys.argv[1])', spec_path],
            stdout=log, stderr=log, start_new_session=True)
        try:
            return child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            try:     # the workers it left behind, in its session
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _job_dir(cache):
    """A local folder for the job file and the log the child process writes: the cache
    folder, or a new temporary folder when the cache is on a tf.io.gfile URL."""
    if storage.is_url(cache.folder):
        return tempfile.mkdtemp(prefix='tfgraft-beam-')
    os.makedirs(cache.folder, exist_ok=True)
    return cache.folder


def compute_on_beam(pending, backbone, batch_size, runner, beam_args, allow_ops, progress):
    """Vectors of pending.todo into the cache, by Beam pipelines (retried as said above)."""
    from tfgraft.graphs.factory import describe
    from tfgraft.records.extract import warn
    cache, total = pending.cache, len(pending.todo)
    job_dir = _job_dir(cache)
    log_path = os.path.join(job_dir, LOG_NAME)
    if os.path.exists(log_path):
        os.unlink(log_path)
    watching = _StagingProgress(cache, total) if progress else None
    if watching:
        watching.__enter__()
    try:
        for attempt in range(1, ATTEMPTS + 1):
            todo = [(digest, path, needs_fallback, pending.sizes.get(digest))
                    for digest, path, needs_fallback in pending.todo]
            spec = {'todo': todo, 'backbone': describe(backbone), 'allow_ops': list(allow_ops),
                    'batch_size': batch_size, 'folder': staging_dir(cache), 'runner': runner,
                    'beam_args': list(beam_args), 'fast_decode': pending.fast_decode,
                    'precision': pending.precision}
            code = _run_attempt(spec, job_dir)
            gathered = gather_staging_files(cache)
            if watching:
                watching.done_before += gathered
            pending.refresh()
            if code == 0:
                return
            if code != WORKER_DIED or attempt == ATTEMPTS:
                raise GraftError('the Beam pipeline on %s failed: %s (log: %s)'
                                 % (runner, _last_error(log_path) or 'exit code %d' % code,
                                    log_path))
            warn('a Beam worker died; running the pipeline again over the %d images '
                 'not done yet (attempt %d of %d)' % (len(pending.todo), attempt + 1, ATTEMPTS))
            if not pending.todo:
                return
    finally:
        if watching:
            watching.__exit__(None, None, None)


def write_bottlenecks_on_beam(image_dir, backbone, bottleneck_dir, runner, beam_args=(),
                              batch_size=64, validation_percentage=10, testing_percentage=10,
                              max_pixels=None, skip_empty_classes=False, progress=True,
                              allow_ops=(), split_rule='file_name', fast_decode=False,
                              precision='float32'):
    """write_bottlenecks with the backbone run by a Beam pipeline on `runner`
    (beam_args: further pipeline options, as on a command line); returns the manifest.
    fast_decode, precision: as write_bottlenecks's, done the same way by the workers."""
    from tfgraft.graphs.precision import check_precision
    from tfgraft.records import extract
    check_precision(precision)
    from tfgraft.records.image_check import DEFAULT_MAX_PIXELS
    with extract._existing_objects_frozen():
        listing, hashes = extract.open_listing(image_dir, bottleneck_dir, validation_percentage,
                                               testing_percentage, skip_empty_classes,
                                               split_rule)
        usable, skipped = extract._check_and_hash(listing, hashes,
                                                  max_pixels or DEFAULT_MAX_PIXELS)
        pending = extract.Pending(listing, usable, bottleneck_dir, backbone, fast_decode,
                                  precision)
        if gather_staging_files(pending.cache):     # a killed run's finished batches
            pending.refresh()
        todo = pending.todo
        if todo:
            if progress:
                extract.say_computing(todo, usable, backbone, ' on Beam (%s)' % runner)
            compute_on_beam(pending, backbone, batch_size, runner, beam_args, allow_ops,
                            progress)
            pending.record_failures([digest for digest, _, _ in todo])
        return extract.commit_records(listing, usable, skipped, pending, hashes, backbone,
                                      bottleneck_dir, progress)
