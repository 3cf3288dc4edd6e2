"""Write files so that a reader sees the old file or the new one, never half of one."""
import json
import os
import tempfile
import uuid

from tfgraft.records import storage


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()

def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Call write(binary_file) on a temp file beside `path`, then rename it over `path`.

    A URL (tf.io.gfile) gets the same partial name (`.<name>.<random>.tmp`) and
    tf.io.gfile.rename(overwrite=True); a local file is also fsynced, and its folder."""
    if storage.is_url(path):
        _atomic_write_url(path, write)
        return
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as handle:
            os.fchmod(handle.fileno(), FILE_MODE)   # mkstemp makes 0600; give a normal file's mode
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    _fsync_dir(folder)


def _atomic_write_url(path, write):
    import tensorflow as tf
    folder, name = path.rsplit('/', 1)
    temp = '%s/.%s.%s.tmp' % (folder, name, uuid.uuid4().hex[:8])
    try:
        with tf.io.gfile.GFile(temp, 'wb') as handle:
            write(handle)
        storage.replace(temp, path)
    except BaseException:
        if storage.exists(temp):
            storage.remove(temp)
        raise


def atomic_write_bytes(path, data):
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path, value, indent=2):
    """indent=None for files only tfgraft reads: smaller and faster to write."""
    text = json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False) + '\n'
    atomic_write_bytes(path, text.encode('utf-8'))


def read_json(path, default=None):
    try:
        return json.loads(storage.read_text(path))
    except FileNotFoundError:
        return default
    except ValueError:
        return default
