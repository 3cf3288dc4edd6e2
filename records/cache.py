"""What a re-run reuses: image hashes by file stat, bottlenecks by image hash.

Bottlenecks are cached by (image sha256, graph sha256, preprocessing and
bottleneck tensor): a re-run computes only new or changed images. Vectors go
to chunk files, each written atomically when a vector arrives and the oldest
one not yet written has waited FLUSH_SECONDS. A killed run loses about its last
second of vectors, or its last finished batch when batches take longer than
that (a slow backbone), and the next run resumes from there.
"""
import collections
import hashlib
import io
import os
import time
import uuid

import numpy as np

from tfgraft.records import storage
from tfgraft.records.atomic import atomic_write, atomic_write_json, read_json

CACHE_DIR_NAME = '.cache'
FLUSH_SECONDS = 1.0     # a chunk is written at the first vector after its oldest waited this long
MAX_CHUNKS = 16         # more chunk files than this are merged when a run ends


def cache_root(bottleneck_dir):
    return os.path.join(bottleneck_dir, CACHE_DIR_NAME)


# format: 'jpeg', 'png'...; '' in entries written before it was kept (then unknown).
Remembered = collections.namedtuple('Remembered', 'sha256 width height fallback format')


class FileHashes:
    """sha256 and header facts of image files, remembered by (size, mtime) so re-runs
    neither re-read nor re-inspect an unchanged file.

    An entry is [size, mtime_ns, sha256, width, height, fallback, format] (format was
    added later: an entry without it is still used, its format unknown).
    """

    def __init__(self, bottleneck_dir):
        self.path = os.path.join(cache_root(bottleneck_dir), 'file_hashes.json')
        self.known = read_json(self.path, {}) or {}
        self.seen = {}

    @staticmethod
    def stamp(status):
        """[size, mtime_ns] of an os.stat result taken before the file is read, so a change
        while reading shows next time."""
        return [status.st_size, status.st_mtime_ns]

    def remembered(self, stamp, key):
        """Remembered(sha256, width, height, fallback, format) of a file seen before with this
        stamp, else None."""
        entry = self.known.get(key)
        if not entry or len(entry) not in (6, 7) or entry[:2] != stamp:
            return None
        self.seen[key] = entry
        return Remembered(*entry[2:7], *([''] if len(entry) == 6 else []))

    def remember(self, stamp, key, info, sha256):
        """Remember the file's sha256 and ImageInfo under its stamp."""
        self.seen[key] = stamp + [sha256, info.width, info.height, info.fallback, info.format]

    def save(self):
        storage.makedirs(os.path.dirname(self.path))
        atomic_write_json(self.path, self.seen, indent=None)


class BottleneckCache:
    """Vectors of one backbone and preprocessing, keyed by image sha256."""

    def __init__(self, bottleneck_dir, graph_sha256, backbone_key):
        key = hashlib.sha256((graph_sha256 + '\n' + backbone_key).encode('utf-8')).hexdigest()
        self.folder = os.path.join(cache_root(bottleneck_dir), 'vectors-' + key[:16])
        self.vectors = {}
        self.pending = {}
        self._oldest_pending = 0.0

    def load(self):
        """Read every finished chunk; an unreadable chunk is dropped (its images recomputed)."""
        for path in storage.glob(self.folder, 'chunk-*.npz'):
            try:
                source = storage.read_seekable(path) if storage.is_url(path) else path
                with np.load(source, allow_pickle=False) as chunk:
                    hashes, vectors = chunk['sha256'], chunk['vectors']
            except (OSError, ValueError, KeyError):
                storage.remove(path)
                continue
            for digest, vector in zip(hashes, vectors):
                self.vectors[str(digest)] = vector
        return self.vectors

    def add(self, digest, vector):
        if not self.pending:
            self._oldest_pending = time.monotonic()
        self.vectors[digest] = vector
        self.pending[digest] = vector
        if time.monotonic() - self._oldest_pending >= FLUSH_SECONDS:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        self._write_chunk(self.pending)
        self.pending = {}

    def _write_chunk(self, vectors):
        storage.makedirs(self.folder)
        hashes = np.array(sorted(vectors))
        stacked = np.stack([vectors[d] for d in hashes]).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, sha256=hashes, vectors=stacked)
        path = os.path.join(self.folder, 'chunk-%s.npz' % uuid.uuid4().hex)
        atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
        return path

    def compact(self, keep):
        """Drop the vectors of images no longer listed, and merge the chunk files into one
        when some hold dropped vectors or there are more than MAX_CHUNKS of them."""
        self.flush()
        old = storage.glob(self.folder, 'chunk-*.npz')
        kept = {d: self.vectors[d] for d in keep if d in self.vectors}
        if len(old) <= MAX_CHUNKS and len(kept) == len(self.vectors):
            return
        new = self._write_chunk(kept) if kept else None
        for path in old:
            if path != new:
                storage.remove(path)
        self.vectors = kept

