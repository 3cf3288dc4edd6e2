"""The tf.data settings every tfgraft pipeline runs with.

Parallelism is fixed at the number of usable cores and tf.data's autotuner is
off: its thread sleeps between rounds for ever longer periods, and a
tf.compat.v1 session's close waits for that sleep to end (figures:
benchmarks/README.md). Fixed settings cost nothing here: decoding is the only
parallel stage and it has no better setting than one call a core.
"""
import os

import tensorflow as tf


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


def without_autotune(dataset):
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
