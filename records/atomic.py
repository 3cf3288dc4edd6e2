"""Write files so that a reader sees the old file or the new one, never half of one."""
import json
import os
import tempfile


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
    """Call write(binary_file) on a temp file beside `path`, then rename it over `path`."""
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


def atomic_write_bytes(path, data):
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path, value, indent=2):
    """indent=None for files only tfgraft reads: smaller and faster to write."""
    text = json.dumps(value, indent=indent, sort_keys=True, ensure_ascii=False) + '\n'
    atomic_write_bytes(path, text.encode('utf-8'))


def read_json(path, default=None):
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default
    except ValueError:
        return default
