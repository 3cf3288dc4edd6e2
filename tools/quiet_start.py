"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ side logs a few INFO lines while `import tensorflow` loads its
libraries (oneDNN is on, no CUDA driver, "All log messages before
absl::InitializeLog() ..."), twice, because two libraries log before absl is
initialised; TF_CPP_MIN_LOG_LEVEL does not reach them. They are not the user's
business and they fill logs, so the import runs with file descriptor 2 pointed
at a temporary file; if the import fails, what it wrote is shown after all.
Python-side loggers (tf, absl) are set to errors only.
"""
import os
import sys
import tempfile


def import_tensorflow_quietly():
    """The tensorflow module, imported with stderr held back (a no-op once imported)."""
    if 'tensorflow' not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        failed = False
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            except BaseException:
                failed = True
                raise
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                if failed:
                    caught.seek(0)
                    sys.stderr.write(caught.read().decode('utf-8', 'replace'))
    import tensorflow as tf
    tf.get_logger().setLevel('ERROR')    # deprecation notices are not the user's business
    try:
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    return tf
