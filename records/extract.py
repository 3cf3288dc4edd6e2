"""Images -> bottleneck records, the first half of the main job.

Every image is checked (header only), hashed, and looked up in the cache; the
ones not seen before go through one tf.compat.v1 session fed by a parallel
tf.data pipeline (read, decode, resize, scale; batched, prefetched) into the
backbone. That session is built and optimised on a thread while the images
are checked and hashed. Records, labels.txt and manifest.json are then written
as one commit. A re-run with nothing new does no TensorFlow work at all.
"""
import concurrent.futures
import contextlib
import gc
import hashlib
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from tfgraft.graphs.errors import GraftError
from tfgraft.graphs.factory import describe
from tfgraft.graphs.precision import apply_precision, check_precision
from tfgraft.graphs.preprocessing import load_preprocessed, preprocess_image
from tfgraft.records import schema, storage
from tfgraft.records.atomic import atomic_write_json, read_json
from tfgraft.records.cache import BottleneckCache, FileHashes
from tfgraft.records.decode import DCT_RATIOS, FAST_DECODE_VERSION, dct_scale
from tfgraft.records.image_check import (DEFAULT_MAX_PIXELS, SkipImage, fallback_decode,
                                          hash_and_inspect, too_many_pixels)
from tfgraft.records.listing import list_images
from tfgraft.records.pipeline import usable_cores, without_autotune
from tfgraft.records.progress import progress_bar
from tfgraft.records.writer import MANIFEST_NAME, finish_interrupted_commit, write_records

tf1 = tf.compat.v1


def tool_version():
    try:
        from importlib.metadata import version
        return version('tfgraft')
    except Exception:  # running from a source tree that was never installed
        return 'unknown'


def warn(message):
    print('tfgraft: warning: %s' % message, file=sys.stderr)


def backbone_key(card, rewrite=0, fast_decode=False, precision='float32'):
    """What the vectors depend on besides the graph file: preprocessing, bottleneck
    tensor, the graph rewriting's version (0: the file's graph), DCT-scaled decoding
    and the number format. The defaults of before they existed add nothing, so caches
    made with the file's graph stay valid."""
    key = card.preprocessing_key() + '\n' + card.batch_bottleneck_tensor
    if rewrite:
        key += '\nrewrite %d' % rewrite
    if fast_decode:
        key += '\nfast_decode %d' % FAST_DECODE_VERSION
    if precision != 'float32':
        key += '\nprecision %s' % precision
    return key


def extraction_key(backbone, fast_decode=False, precision='float32'):
    return backbone_key(backbone.card, getattr(backbone, 'rewrite_version', 0), fast_decode,
                        precision)


def _scikit_image_pixels(path):
    """uint8 RGB pixels of a file TensorFlow decodes wrongly (path as bytes); a file that
    cannot be read raises, and the pipeline drops it."""
    return fallback_decode(os.fsdecode(path))


def image_batches(indices, paths, card, batch_size, fallback=None, scaled=None):
    """Batches of (indices, preprocessed images).

    indices, paths: 1-D arrays or tensors, the files TensorFlow decodes.
    fallback: (indices, paths) likewise, of files scikit-image decodes (formats
    TensorFlow gets wrong); they come last. Files that fail to decode are dropped
    from the stream.
    scaled: for --fast_decode, [(indices, paths)] of JPEGs to decode at 1/2, 1/4 and
    1/8 of their size (DCT_RATIOS[1:], records/decode.py); they come after the others.
    """
    def loader(ratio):
        @tf.autograph.experimental.do_not_convert    # plain graph code: nothing to convert
        def load(index, path):
            return index, load_preprocessed(path, card, ratio)
        return load

    @tf.autograph.experimental.do_not_convert
    def load_by_scikit_image(index, path):
        image = tf.numpy_function(_scikit_image_pixels, [path], tf.uint8)
        image.set_shape([None, None, 3])
        return index, preprocess_image(image, card)

    dataset = tf.data.Dataset.from_tensor_slices((indices, paths)).map(
        loader(1), num_parallel_calls=usable_cores(), deterministic=False)
    # One stream a ratio, each with its decoder fixed (the ratio is an attribute of the
    # op), one after the other. A switch, a cond or a filter between decoders in one
    # stream cost more than the smaller decode saved at 128 (benchmarks/README.md).
    for ratio, files in zip(DCT_RATIOS[1:], scaled or ()):
        dataset = dataset.concatenate(tf.data.Dataset.from_tensor_slices(files).map(
            loader(ratio), num_parallel_calls=usable_cores(), deterministic=False))
    if fallback is not None:
        others = tf.data.Dataset.from_tensor_slices(fallback)
        dataset = dataset.concatenate(others.map(load_by_scikit_image))
    options = tf.data.Options()
    # tf.data's own rewrites find nothing to fuse or parallelise here and cost time at
    # every iterator start (benchmarks/README.md).
    options.experimental_optimization.apply_default_optimizations = False
    # Decoding on threads of its own, not on the session's inter-op threads that also
    # schedule the backbone's ops: faster and steadier (benchmarks/README.md).
    options.threading.private_threadpool_size = usable_cores()
    return without_autotune(dataset.ignore_errors().batch(batch_size).prefetch(2).with_options(options))


def session_config(precision='float32'):
    """The extraction session's settings: of Grappler's passes, only those that speed up
    a frozen graph's inference (constant folding, arithmetic simplification, and the
    fusion of convolution, bias and activation), run once. Every pass takes its time
    before the first batch, and the others find nothing to do in these graphs. The TFG
    (MLIR) passes only sort, re-infer shapes and tidy attributes here, so they are off
    too; the vectors are the same to the bit (figures: benchmarks/README.md).
    precision 'bfloat16' adds oneDNN's auto mixed precision (graphs/precision.py).
    """
    on, off = rewriter_config_pb2.RewriterConfig.ON, rewriter_config_pb2.RewriterConfig.OFF
    rewrite = rewriter_config_pb2.RewriterConfig(
        constant_folding=on, arithmetic_optimization=on, remapping=on,
        layout_optimizer=off, shape_optimization=off, dependency_optimization=off,
        loop_optimization=off, function_optimization=off, debug_stripper=off,
        implementation_selector=off, common_subgraph_elimination=off,
        memory_optimization=rewriter_config_pb2.RewriterConfig.NO_MEM_OPT,
        meta_optimizer_iterations=rewriter_config_pb2.RewriterConfig.ONE,
        disable_tfg_optimizer=True)
    apply_precision(rewrite, precision)
    return tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))


def check_batch(indices, vectors, card):
    """A batch back from the backbone holds one vector of the card's width per image,
    or the run stops: vectors glued or split across images are never written."""
    if vectors.ndim != 2 or vectors.shape[0] != len(indices) or vectors.shape[1] != card.bottleneck_size:
        raise GraftError('graph %s gave vectors of shape %s for %d images; %d vectors of '
                         'width %d were expected (bottleneck_size of its card)'
                         % (card.name, list(vectors.shape), len(indices), len(indices),
                            card.bottleneck_size))


class ExtractionSession:
    """The backbone behind the image pipeline, in one tf.compat.v1 session.

    The file list is fed when a run starts, so the graph can be built and optimised
    (`optimise`: Grappler, on a first run over no files) before the files are known:
    write_bottlenecks optimises it on a thread while it checks and hashes the images.
    """

    def __init__(self, backbone, batch_size, fast_decode=False, precision='float32'):
        check_precision(precision)
        self.card = backbone.card
        self.fast_decode = fast_decode
        graph = tf.Graph()
        with graph.as_default():
            self._indices = tf1.placeholder(tf.int64, [None], name='indices')
            self._paths = tf1.placeholder(tf.string, [None], name='paths')
            # --fast_decode: files decoded at 1/2, 1/4, 1/8 size, (indices, paths) for each
            self._scaled = [(tf1.placeholder(tf.int64, [None], name='indices_%d' % ratio),
                             tf1.placeholder(tf.string, [None], name='paths_%d' % ratio))
                            for ratio in DCT_RATIOS[1:]] if fast_decode else None
            self._fallback_indices = tf1.placeholder(tf.int64, [None], name='fallback_indices')
            self._fallback_paths = tf1.placeholder(tf.string, [None], name='fallback_paths')
            dataset = image_batches(self._indices, self._paths, backbone.card, batch_size,
                                    (self._fallback_indices, self._fallback_paths), self._scaled)
            iterator = tf1.data.make_initializable_iterator(dataset)
            self._start = iterator.initializer
            self._batch_indices, images = iterator.get_next()
            self._bottlenecks = backbone.build(images)
        self._session = tf1.Session(graph=graph, config=session_config(precision))

    def optimise(self):
        """Run once on no files: Grappler optimises the graph and the executors are made."""
        self.run([], lambda index, vector: None)
        return self

    def run(self, paths, on_vector, fallback=(), bar=None, sizes=None):
        """on_vector(index, vector) for each file of `paths` that decodes; returns how many.

        sizes: (width, height) of each JPEG from its header, None for other files, for
        --fast_decode (a file without one is decoded at full size)."""
        fallback = set(fallback)
        by_tf = [i for i in range(len(paths)) if i not in fallback]
        by_scikit_image = sorted(fallback)
        feed = {}
        if self.fast_decode:
            groups = [[] for _ in DCT_RATIOS]
            for i in by_tf:
                groups[dct_scale(sizes[i] if sizes else None, self.card)].append(i)
            by_tf = groups[0]
            for (indices, files), group in zip(self._scaled, groups[1:]):
                feed[indices] = np.array(group, np.int64)
                feed[files] = np.array([paths[i] for i in group], object)
        self._session.run(self._start, {**feed,
            self._indices: np.array(by_tf, np.int64),
            self._paths: np.array([paths[i] for i in by_tf], object),
            self._fallback_indices: np.array(by_scikit_image, np.int64),
            self._fallback_paths: np.array([paths[i] for i in by_scikit_image], object)})
        started, done = time.time(), 0

        def show(count):
            if bar:
                bar.update(count, [('images/s', done / max(time.time() - started, 1e-9))])
        while True:
            try:
                batch_indices, batch_vectors = self._session.run(
                    [self._batch_indices, self._bottlenecks])
            except tf.errors.OutOfRangeError:
                if done < len(paths):    # files that failed to decode: finish the bar
                    show(len(paths))
                return done
            except tf.errors.OpError as error:   # images that fail are dropped: this is the graph
                raise GraftError('graph %s failed to run: %s' % (
                    self.card.name, ' '.join(error.message.split())[:300])) from None
            check_batch(batch_indices, batch_vectors, self.card)
            for index, vector in zip(batch_indices, batch_vectors):
                on_vector(int(index), vector)
            done += len(batch_indices)
            show(done)

    def close(self):
        self._session.close()


def compute_bottlenecks(paths, backbone, batch_size, on_vector, progress=True, fallback=(),
                        session=None, sizes=None, fast_decode=False, precision='float32'):
    """Run the backbone over image files; on_vector(index, vector) for each one done.

    Files that fail to decode are dropped from the stream; the caller sees
    them as indices never reported. `session`: an ExtractionSession to use (and
    leave open); by default one is made for this call.
    """
    own_session = session is None
    session = session or ExtractionSession(backbone, batch_size, fast_decode, precision)
    bar = progress_bar(len(paths), 'bottlenecks', 'images', ['images/s']) if progress else None
    try:
        session.run(paths, on_vector, fallback, bar, sizes)
    finally:
        if own_session:
            session.close()


@contextlib.contextmanager
def _session_optimised_meanwhile(backbone, batch_size, wanted, fast_decode, precision):
    """A Future of an ExtractionSession (None unless wanted): its graph is built here,
    then optimised on a thread (Grappler and the first runs hold no GIL, and take
    longer than building). On leaving, the session is closed once that is done.

    The graph is built here, before the files are checked, not on the thread: the
    building is Python, and beside it the checks would wait for the GIL
    (benchmarks/README.md).
    """
    if not wanted:
        yield None
        return
    session = ExtractionSession(backbone, batch_size, fast_decode, precision)
    thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='tfgraft-warm-up')
    warming = thread.submit(session.optimise)
    thread.shutdown(wait=False)
    try:
        yield warming
    finally:
        warming.add_done_callback(lambda _: session.close())


def _check_and_hash(listing, hashes, max_pixels):
    """(usable [(entry, sha256, needs_fallback, size)], skipped [{image_path, reason}]).

    size: (width, height) of a JPEG (what --fast_decode needs), None for other formats.

    Byte-identical copies are used once (the first path in sorted order), so
    the same photo never sits in two splits or two classes.
    """
    usable, skipped, first_path = [], list(listing.skipped), {}
    for entry in sorted(listing.entries, key=lambda e: e.path):
        path = os.path.join(listing.image_dir, entry.path)
        try:
            # A file never seen here is opened straight away: its stat comes with the read.
            status = storage.stat(path) if entry.path in hashes.known else None
            remembered = status and hashes.remembered(hashes.stamp(status), entry.path)
            if remembered and not too_many_pixels(remembered.width, remembered.height, max_pixels):
                digest, needs_fallback = remembered.sha256, bool(remembered.fallback)
                size = (remembered.width, remembered.height) if remembered.format == 'jpeg' else None
            else:   # new, changed, or over a lowered limit: hash_and_inspect says why
                status, digest, info = hash_and_inspect(path, max_pixels)
                needs_fallback = info.needs_fallback
                size = (info.width, info.height) if info.format == 'jpeg' else None
                hashes.remember(hashes.stamp(status), entry.path, info, digest)
        except SkipImage as error:
            skipped.append({'image_path': entry.path, 'reason': str(error)})
            continue
        except OSError as error:
            skipped.append({'image_path': entry.path, 'reason': 'unreadable: %s' % error.strerror})
            continue
        if digest in first_path:
            skipped.append({'image_path': entry.path, 'reason': 'duplicate of %s' % first_path[digest]})
            continue
        first_path[digest] = entry.path
        usable.append((entry, digest, needs_fallback, size))
    order = {entry: i for i, entry in enumerate(listing.entries)}
    usable.sort(key=lambda item: order[item[0]])
    return usable, skipped


def _fingerprint(listing, usable, skipped, backbone, key):
    content = {
        'schema': schema.SCHEMA_VERSION, 'graph': backbone.sha256,
        'backbone': key, 'classes': listing.classes,
        'images': [[e.path, d, e.label, e.split] for e, d in usable],
        'skipped': skipped,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode('utf-8')).hexdigest()


def _manifest(listing, usable, skipped, backbone, fingerprint, fast_decode, precision):
    splits = {}
    for split in schema.SPLITS:
        per_class = {name: 0 for name in listing.classes}
        for entry, _ in usable:
            if entry.split == split:
                per_class[listing.classes[entry.label]] += 1
        splits[split] = {'count': sum(per_class.values()), 'per_class': per_class, 'shards': []}
    return {
        'schema_version': schema.SCHEMA_VERSION,
        'tool_version': tool_version(),
        'bottleneck_size': backbone.card.bottleneck_size,
        'classes': listing.classes,
        'graph': describe(backbone),
        'preprocessing': backbone.card.preprocessing_key(),
        'fast_decode': bool(fast_decode),
        'precision': precision,
        'splits': splits,
        'skipped': skipped,
        'image_dir': listing.image_dir,
        'split_rule': listing.split_rule,
        'fingerprint': fingerprint,
    }


@contextlib.contextmanager
def _existing_objects_frozen():
    """Leave the objects that exist when a run starts out of garbage collection until it
    ends: TensorFlow's modules alone hold some 250,000 of them, and the run's own
    objects could start a full collection over them all (a pause; benchmarks/README.md).
    Objects made during the run are collected as usual."""
    if gc.get_freeze_count():      # a caller froze them already
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()



def open_listing(image_dir, bottleneck_dir, validation_percentage, testing_percentage,
                 skip_empty_classes, split_rule='file_name'):
    """(ImageList, FileHashes) of a run: the listing and splits, with the output folder
    made and any commit an earlier run left half-done finished first.

    split_rule: 'file_name' or 'retrain_py' (records/listing.py)."""
    listing = list_images(image_dir, validation_percentage, testing_percentage, skip_empty_classes,
                          split_rule)
    storage.makedirs(bottleneck_dir)
    finish_interrupted_commit(bottleneck_dir)
    return listing, FileHashes(bottleneck_dir)


class Pending:
    """What is left to compute after the checks: the cache, the images that failed
    before (failed.json), and `todo`, [(sha256, absolute path, needs_fallback)] of the
    usable images in neither. `sizes`: each usable image's JPEG size by sha256 (None for
    other formats), for --fast_decode. The cache is the one of this extraction's key
    (extraction_key: rewriting, fast_decode, precision), which the commit records."""

    def __init__(self, listing, usable, bottleneck_dir, backbone, fast_decode=False,
                 precision='float32'):
        self.fast_decode, self.precision = bool(fast_decode), precision
        self.key = extraction_key(backbone, fast_decode, precision)
        self.cache = BottleneckCache(bottleneck_dir, backbone.sha256, self.key)
        self.cache.load()
        self.failed_path = os.path.join(self.cache.folder, 'failed.json')
        self.failed = read_json(self.failed_path, {}) or {}
        self.listing, self.usable = listing, usable
        self.sizes = {digest: size for _, digest, _, size in usable}
        self.todo = []
        self.refresh()

    def refresh(self):
        """Recompute `todo` after vectors were added to the cache by someone else."""
        vectors, failed = self.cache.vectors, self.failed
        self.todo = [(digest, os.path.join(self.listing.image_dir, entry.path), needs_fallback)
                     for entry, digest, needs_fallback, _ in self.usable
                     if digest not in vectors and digest not in failed]
        return self.todo

    def record_failures(self, digests):
        """Every digest of `digests` the cache still lacks could not be decoded: remember it."""
        for digest in digests:
            if digest not in self.cache.vectors:
                self.failed[digest] = 'could not be decoded'
        storage.makedirs(self.cache.folder)
        atomic_write_json(self.failed_path, self.failed)


class SplitExamples:
    """A split's serialized examples, made a shard's slice at a time when the writer asks
    for it: the whole split's examples are never held at once (benchmarks/scale.py)."""

    def __init__(self, listing, cache, kept):
        self._listing, self._cache, self._kept = listing, cache, kept

    def __len__(self):
        return len(self._kept)

    def __getitem__(self, which):
        classes, vectors = self._listing.classes, self._cache.vectors
        return [schema.make_example(vectors[digest], entry.label, classes[entry.label],
                                    entry.path, digest)
                for entry, digest in self._kept[which]]


def commit_records(listing, usable, skipped, pending, hashes, backbone, bottleneck_dir,
                   progress=True):
    """The end of every run, in-process or on Beam: skip reasons, fingerprint, then the
    shards, labels.txt and manifest.json as one commit (nothing written when the
    fingerprint says the records are up to date). Returns the manifest."""
    cache, failed = pending.cache, pending.failed
    kept = []
    for entry, digest, *_ in usable:
        if digest in failed:
            skipped.append({'image_path': entry.path, 'reason': failed[digest]})
        else:
            kept.append((entry, digest))
    for item in skipped:
        warn('skipped %s: %s' % (item['image_path'], item['reason']))

    fingerprint = _fingerprint(listing, kept, skipped, backbone, pending.key)
    previous = read_json(os.path.join(bottleneck_dir, MANIFEST_NAME))
    if previous and previous.get('fingerprint') == fingerprint:
        hashes.save()
        if progress:
            print('bottleneck records are up to date in %s' % bottleneck_dir, file=sys.stderr)
        return previous

    manifest = _manifest(listing, kept, skipped, backbone, fingerprint, pending.fast_decode,
                         pending.precision)
    examples = {split: SplitExamples(listing, cache, [(e, d) for e, d in kept if e.split == split])
                for split in schema.SPLITS}
    write_records(bottleneck_dir, examples, listing.classes, manifest)
    cache.compact({digest for _, digest in kept})
    hashes.save()
    if progress:
        counts = ', '.join('%s %d' % (s, manifest['splits'][s]['count']) for s in schema.SPLITS)
        print('wrote bottleneck records to %s (%s; %d skipped)'
              % (bottleneck_dir, counts, len(skipped)), file=sys.stderr)
    return manifest


def say_computing(todo, usable, backbone, where=''):
    print('computing %d bottlenecks (%d cached) with %s%s'
          % (len(todo), len(usable) - len(todo), backbone.card.name, where), file=sys.stderr)


@_existing_objects_frozen()
def write_bottlenecks(image_dir, backbone, bottleneck_dir, batch_size=64,
                      validation_percentage=10, testing_percentage=10, max_pixels=None,
                      skip_empty_classes=False, progress=True, split_rule='file_name',
                      fast_decode=False, precision='float32'):
    """Write bottleneck records for every image below image_dir; returns the manifest.

    split_rule: 'file_name' or 'retrain_py' (records/listing.py).
    fast_decode: JPEGs at least twice the input size on both sides are decoded at
    1/2, 1/4 or 1/8 scale by libjpeg (records/decode.py). precision: 'float32' or
    'bfloat16' (graphs/precision.py). Both are part of the cache key.
    """
    check_precision(precision)
    listing, hashes = open_listing(image_dir, bottleneck_dir, validation_percentage,
                                   testing_percentage, skip_empty_classes, split_rule)
    # Files never seen here will need the backbone: build its graph, and optimise it on a
    # thread while they are checked and hashed.
    with _session_optimised_meanwhile(backbone, batch_size, any(
            entry.path not in hashes.known for entry in listing.entries),
            fast_decode, precision) as warming:
        usable, skipped = _check_and_hash(listing, hashes, max_pixels or DEFAULT_MAX_PIXELS)
        pending = Pending(listing, usable, bottleneck_dir, backbone, fast_decode, precision)
        cache, todo = pending.cache, pending.todo
        if todo:
            digests = [digest for digest, _, _ in todo]
            paths = [path for _, path, _ in todo]
            fallback = [i for i, (_, _, needs_fallback) in enumerate(todo) if needs_fallback]
            sizes = [pending.sizes[digest] for digest in digests]
            if progress:
                say_computing(todo, usable, backbone)
            try:
                compute_bottlenecks(paths, backbone, batch_size,
                                    lambda i, vector: cache.add(digests[i], vector), progress,
                                    fallback, session=warming.result() if warming else None,
                                    sizes=sizes, fast_decode=fast_decode, precision=precision)
            finally:
                cache.flush()
            pending.record_failures(digests)

    return commit_records(listing, usable, skipped, pending, hashes, backbone, bottleneck_dir,
                          progress)
