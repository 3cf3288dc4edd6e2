"""Files of the image folder and the bottleneck folder, on any filesystem TensorFlow has.

A path with a scheme (`gs://...`, `hdfs://...`, `s3://...`, `ram://...`,
`file://...`) goes through tf.io.gfile; a plain path goes through os, as
before: the same calls, fsyncs and error types, and no TensorFlow import (the
Beam job's child process does not load it). Each helper takes either kind.
"""
import collections
import glob as local_glob
import io
import os

# What a stat says of a file, for either kind of path (os.stat_result has these too).
FileStatus = collections.namedtuple('FileStatus', 'st_size st_mtime_ns is_file')


def is_url(path):
    """True for a path tf.io.gfile must handle (it names a filesystem: `scheme://`)."""
    return '://' in str(path)


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def _url_error(error, path):
    """A tf.errors.OpError as the OSError a local path would have raised."""
    import tensorflow as tf
    kind = FileNotFoundError if isinstance(error, tf.errors.NotFoundError) else OSError
    return kind(2 if kind is FileNotFoundError else 5, ' '.join(error.message.split())[:200], path)


def absolute(path):
    return path if is_url(path) else os.path.abspath(path)


def exists(path):
    return _gfile().exists(path) if is_url(path) else os.path.exists(path)


def isdir(path):
    return _gfile().isdir(path) if is_url(path) else os.path.isdir(path)


def isfile(path):
    if not is_url(path):
        return os.path.isfile(path)
    gfile = _gfile()
    return gfile.exists(path) and not gfile.isdir(path)


def listdir(path):
    """Names in a folder (no trailing slashes)."""
    if not is_url(path):
        return os.listdir(path)
    import tensorflow as tf
    try:
        return [name.rstrip('/') for name in _gfile().listdir(path)]
    except tf.errors.OpError as error:
        raise _url_error(error, path) from None


def walk(path):
    """os.walk (links to folders not followed), or tf.io.gfile.walk; both honour the
    pruning of the dirs list in place."""
    return _gfile().walk(path) if is_url(path) else os.walk(path)


def relative(root, folder):
    """`root` (a folder walk() yielded below `folder`) relative to it; os.curdir for itself."""
    if not is_url(folder):
        return os.path.relpath(root, folder)
    below = root[len(folder.rstrip('/')):].strip('/')
    return below or os.curdir


def makedirs(path):
    if is_url(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path):
    if not is_url(path):
        os.unlink(path)
        return
    import tensorflow as tf
    try:
        _gfile().remove(path)
    except tf.errors.OpError as error:
        raise _url_error(error, path) from None


def replace(source, target):
    """Rename over `target`: os.replace, or tf.io.gfile.rename(overwrite=True)."""
    if is_url(source):
        _gfile().rename(source, target, overwrite=True)
    else:
        os.replace(source, target)


def glob(pattern_dir, pattern):
    """Paths in the folder `pattern_dir` matching the name pattern `pattern` (the folder's
    own name is taken literally)."""
    if is_url(pattern_dir):
        return sorted(_gfile().glob(pattern_dir.rstrip('/') + '/' + pattern))
    return sorted(local_glob.glob(os.path.join(local_glob.escape(pattern_dir), pattern)))


def stat(path):
    """os.stat_result of a local path; FileStatus of a URL (FileNotFoundError if absent)."""
    if not is_url(path):
        return os.stat(path)
    import tensorflow as tf
    try:
        found = _gfile().stat(path)
    except tf.errors.OpError as error:
        raise _url_error(error, path) from None
    return FileStatus(found.length, found.mtime_nsec, not found.is_directory)


def open_read(path):
    """A binary file object to read (seekable)."""
    if not is_url(path):
        return open(path, 'rb')
    return _gfile().GFile(path, 'rb')


def read_bytes(path):
    """A file's bytes; FileNotFoundError or OSError when it cannot be read."""
    if not is_url(path):
        with open(path, 'rb') as handle:
            return handle.read()
    import tensorflow as tf
    try:
        with _gfile().GFile(path, 'rb') as handle:
            return handle.read()
    except tf.errors.OpError as error:
        raise _url_error(error, path) from None


def read_text(path):
    return read_bytes(path).decode('utf-8')


def read_seekable(path):
    """The file's bytes as an in-memory file (for readers such as np.load on a URL)."""
    return io.BytesIO(read_bytes(path))
