"""Figures drawn with matplotlib: confusion matrix, learning curves, per-class precision/recall.

Each *_figure function returns a matplotlib Figure (made without pyplot, on the
Agg canvas: no display, no global backend switched), so callers and tests can
look at its axes before it is written. save_png writes one through
records/atomic.py; image_summary / write_image_summaries put the same PNG in
TensorBoard event files, where the Images tab shows it.
"""
import io
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfgraft.records.atomic import atomic_write

DPI = 100
LOSS_COLOURS = {'loss': '#c0392b', 'validation_loss': '#e67e22'}
ACCURACY_COLOURS = {'accuracy': '#2c5aa0', 'validation_accuracy': '#1e8449'}
NAMES = {'loss': 'train loss', 'validation_loss': 'validation loss',
         'accuracy': 'train accuracy', 'validation_accuracy': 'validation accuracy'}


def _figure(width, height):
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def confusion_figure(matrix, classes, title='Confusion matrix'):
    """Rows: true class, columns: predicted, in `classes` order. A cell's colour is its
    share of the row (so rare classes read as well as common ones), its text the count.
    The figure grows with the class count: 20 classes keep 9-point names and counts."""
    matrix = np.asarray(matrix, np.int64)
    count = len(classes)
    if matrix.shape != (count, count):
        raise ValueError('a %d-class confusion matrix needs %d x %d counts, got %s'
                         % (count, count, count, matrix.shape))
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    longest = max(len(str(name)) for name in classes)
    side = max(5.0, 0.42 * count + 0.09 * min(longest, 30) + 2.5)
    figure = _figure(side + 1.2, side)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shares, cmap='Blues', vmin=0.0, vmax=1.0, interpolation='nearest')
    colourbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colourbar.set_label('share of the true class')
    ticks = np.arange(count)
    axes.set_xticks(ticks)
    axes.set_yticks(ticks)
    axes.set_xticklabels([str(name) for name in classes], rotation=45 if count > 3 else 0,
                         ha='right' if count > 3 else 'center', rotation_mode='anchor')
    axes.set_yticklabels([str(name) for name in classes])
    axes.set_xlabel('predicted class')
    axes.set_ylabel('true class')
    axes.set_title(title)
    size = 11 if count <= 8 else 9 if count <= 20 else 7
    for row in range(count):
        for col in range(count):
            axes.text(col, row, str(int(matrix[row, col])), ha='center', va='center', fontsize=size,
                      color='white' if shares[row, col] > 0.5 else 'black')
    axes.set_xticks(ticks - 0.5, minor=True)
    axes.set_yticks(ticks - 0.5, minor=True)
    axes.grid(which='minor', color='#bbbbbb', linewidth=0.5)
    axes.tick_params(which='minor', length=0)
    figure.tight_layout()
    return figure


def per_class_figure(rows, title='Precision and recall per class'):
    """Grouped horizontal bars of each class's precision and recall (rows from
    engine/metrics.py per_class), its image count beside its name."""
    count = len(rows)
    names = ['%s (%d)' % (row['class'], row['count']) for row in rows]
    figure = _figure(8.0, max(3.0, 0.38 * count + 1.6))
    axes = figure.add_subplot(1, 1, 1)
    places = np.arange(count)
    height = 0.38
    precision = [row['precision'] for row in rows]
    recall = [row['recall'] for row in rows]
    axes.barh(places - height / 2, precision, height, label='precision', color='#2c5aa0')
    axes.barh(places + height / 2, recall, height, label='recall', color='#e67e22')
    axes.set_yticks(places)
    axes.set_yticklabels(names)
    axes.invert_yaxis()                 # first class on top, as in labels.txt
    axes.set_xlim(0.0, 1.22)               # room on the right for the legend, past 1.0
    axes.set_xticks(np.linspace(0.0, 1.0, 6))
    axes.set_xlabel('precision / recall')
    axes.set_ylabel('class (images)')
    axes.set_title(title)
    axes.grid(axis='x', color='#dddddd', linewidth=0.5)
    axes.legend(loc='upper right', fontsize=8)
    figure.tight_layout()
    return figure


def _stage_starts(history):
    """[(step, stage)] where each stage after the first begins."""
    return [(row['step'], row['stage']) for row, previous in zip(history[1:], history)
            if row.get('stage') != previous.get('stage')]


def curves_figure(history, title='Learning curves'):
    """Loss on top, accuracy below, over the training step; dashed lines where a stage
    begins (finetune's stage 2 after `tfgraft train`'s stage 1). history: rows of
    {'step', 'stage', 'loss', 'accuracy', 'validation_accuracy', 'validation_loss'}."""
    figure = _figure(8.0, 6.0)
    loss_axes = figure.add_subplot(2, 1, 1)
    accuracy_axes = figure.add_subplot(2, 1, 2, sharex=loss_axes)
    for axes, colours in ((loss_axes, LOSS_COLOURS), (accuracy_axes, ACCURACY_COLOURS)):
        for name, colour in colours.items():
            points = [(row['step'], row[name]) for row in history if row.get(name) is not None]
            if points:
                steps, values = zip(*points)
                axes.plot(steps, values, color=colour, label=NAMES[name], linewidth=1.4,
                          marker='o' if len(points) < 3 else None, markersize=3)
        for step, stage in _stage_starts(history):
            axes.axvline(step, color='#666666', linestyle='--', linewidth=1)
            axes.annotate('stage %d' % stage, (step, 1.0), xycoords=('data', 'axes fraction'),
                          xytext=(3, -12), textcoords='offset points', fontsize=8, color='#444444')
        axes.grid(color='#e5e5e5', linewidth=0.5)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8, loc='best')
    loss_axes.set_ylabel('cross-entropy loss')
    loss_axes.set_title(title)
    accuracy_axes.set_ylabel('accuracy')
    accuracy_axes.set_ylim(0.0, 1.02)
    accuracy_axes.set_xlabel('training step')
    figure.tight_layout()
    return figure


def png_bytes(figure):
    """The figure as PNG bytes (matplotlib writes 'Software: Matplotlib ...' in it)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=DPI)
    return buffer.getvalue()


def save_png(figure, path):
    """Write the figure to path (whole or not at all); returns the PNG bytes."""
    data = png_bytes(figure)
    atomic_write(path, lambda handle: handle.write(data))
    return data


def image_summary(tag, png):
    """A tf.compat.v1.Summary holding one PNG, as tf.summary.image writes it."""
    import struct
    import tensorflow as tf
    width, height = struct.unpack('>II', png[16:24])      # the PNG's IHDR chunk
    image = tf.compat.v1.Summary.Image(encoded_image_string=png, height=height, width=width,
                                       colorspace=4)
    return tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag, image=image)])


def write_image_summaries(log_dir, step, images):
    """Append {tag: png bytes} at `step` to an event file in log_dir (TensorBoard's Images tab).

    The file gets a suffix of its own: event files are named by the second and the host,
    so without it a writer opened in the same second as another (the training's own)
    would replace that one's file and its scalars with it."""
    import time
    import tensorflow as tf
    os.makedirs(log_dir, exist_ok=True)
    with tf.Graph().as_default():
        writer = tf.compat.v1.summary.FileWriter(
            log_dir, filename_suffix='.figures-%d' % time.time_ns())
        for tag, png in sorted(images.items()):
            writer.add_summary(image_summary(tag, png), int(step))
        writer.close()


CONFUSION_PNG, PER_CLASS_PNG = 'confusion.png', 'per_class.png'


def write_evaluation_figures(report, output_dir, log_dir, step):
    """evaluate's figures: confusion.png and per_class.png in output_dir, and both as
    image summaries (tags confusion_matrix, per_class) in log_dir's events at `step`.
    Returns {file name: path}."""
    heading = '%s split: accuracy %.1f%% (N=%d)' % (report['split'], report['accuracy'] * 100,
                                                    report['count'])
    drawn = {
        CONFUSION_PNG: ('confusion_matrix', confusion_figure(
            report['confusion_matrix'], report['classes'], 'Confusion matrix, ' + heading)),
        PER_CLASS_PNG: ('per_class', per_class_figure(
            report['per_class'], 'Precision and recall per class, ' + heading)),
    }
    paths, images = {}, {}
    for name, (tag, figure) in drawn.items():
        paths[name] = os.path.join(output_dir, name)
        images[tag] = save_png(figure, paths[name])
    write_image_summaries(log_dir, step, images)
    return paths
