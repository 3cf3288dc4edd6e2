"""Progress of a long job: Keras' bar on a terminal, a plain line every few seconds elsewhere.

A bar redraws one line with carriage returns and colour escapes; written to a log
file, CI or `nohup` it turns into one very long line of escapes. When stdout is
not a terminal the job prints instead, every PLAIN_SECONDS and once at the end,

    bottlenecks: 1536/3000 images, 640 images/s, ETA 2 s

with the job's own figures after it (`, loss 0.412, val_acc 0.870`). Both kinds
take update(current, [(name, value), ...]) like tf.keras.utils.Progbar.
"""
import os
import sys
import time

PLAIN_SECONDS = 5.0       # $TFGRAFT_PROGRESS_SECONDS overrides (0: a line every update)


def _seconds_between_lines():
    try:
        return max(0.0, float(os.environ.get('TFGRAFT_PROGRESS_SECONDS', PLAIN_SECONDS)))
    except ValueError:
        return PLAIN_SECONDS


def _number(value):
    value = float(value)
    if value == int(value) and abs(value) < 1e6:
        return '%d' % value
    return '%.3g' % value if abs(value) >= 100 else '%.3f' % value


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 120:
        return '%d s' % seconds
    if seconds < 7200:
        return '%d min %02d s' % divmod(seconds, 60)
    return '%d h %02d min' % (seconds // 3600, seconds % 3600 // 60)


class PlainProgress:
    """Lines of text, no escapes: `label: done/total unit, rate unit/s, ETA s, figures`."""

    def __init__(self, total, label, unit, stream=None, every=None, clock=time.monotonic, initial=0):
        self.total, self.label, self.unit, self.initial = int(total), label, unit, initial
        self.stream = stream or sys.stdout
        self.every = _seconds_between_lines() if every is None else every
        self.clock = clock
        self.started = clock()
        self.last_line = None
        self.finished = False

    def line(self, current, values=()):
        elapsed = max(self.clock() - self.started, 1e-9)
        done_here = current - self.initial     # work done before this run is not in the rate
        rate = done_here / elapsed
        parts = ['%s: %d/%d %s' % (self.label, current, self.total, self.unit)]
        if done_here > 0:
            parts.append('%s %s/s' % ('%.0f' % rate if rate >= 10 else '%.1f' % rate, self.unit))
            if current < self.total:
                parts.append('ETA %s' % _duration((self.total - current) / rate))
            else:
                parts.append('%s in all' % _duration(elapsed))
        parts.extend('%s %s' % (name, _number(value)) for name, value in values
                     if not name.endswith('/s'))
        return ', '.join(parts)

    def update(self, current, values=None):
        if self.finished:
            return
        now = self.clock()
        done = current >= self.total
        if done or self.last_line is None and now - self.started >= self.every or \
                self.last_line is not None and now - self.last_line >= self.every:
            print(self.line(current, values or ()), file=self.stream, flush=True)
            self.last_line = now
            self.finished = done


def is_terminal(stream=None):
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(total, label, unit='steps', stateful_metrics=(), initial=0):
    """Keras' Progbar when stdout is a terminal, else a PlainProgress; both have update().

    initial: units already done when the job starts (a resumed run), left out of the rate.
    """
    if is_terminal():
        import tensorflow as tf
        return tf.keras.utils.Progbar(total, unit_name=unit.rstrip('s') or 'step',
                                      stateful_metrics=list(stateful_metrics))
    return PlainProgress(total, label, unit, initial=initial)
