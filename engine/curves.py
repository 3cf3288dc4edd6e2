"""Learning curves of a model_dir as a PNG, drawn with numpy and scikit-image.

The history is read back from the TensorBoard events the Estimator writes
(train/: loss, accuracy, stage; validation/: accuracy), so stage 1 trained by
`tfgraft train` is drawn too. One row per step:
{'step', 'stage', 'loss', 'accuracy', 'validation_accuracy'}. The PNG has two
panels sharing the step axis: loss (red) on top; train accuracy (blue) and
validation accuracy (green) below, on 0..1. Grey vertical lines mark where a
stage begins; light grey lines mark accuracy 0.5 and the loss axis' middle.
"""
import os

import numpy as np
from skimage import draw, io


CURVES_PNG = 'learning_curves.png'
COLOURS = {'loss': (200, 30, 30), 'accuracy': (30, 60, 200), 'validation_accuracy': (20, 150, 40)}
PANEL_HEIGHT, WIDTH, MARGIN = 200, 640, 20


def read_history(summaries_dir):
    """Rows by step from <summaries_dir>/train and /validation events; stage 1 until a 'stage' scalar."""
    import glob
    import tensorflow as tf
    rows = {}
    for folder, prefix in (('train', ''), ('validation', 'validation_')):
        for path in sorted(glob.glob(os.path.join(summaries_dir, folder, 'events.out.tfevents.*'))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    row = rows.setdefault(int(event.step), {'step': int(event.step)})
                    row[value.tag if value.tag == 'stage' else prefix + value.tag] = value.simple_value
    stage, history = 1, []
    for step in sorted(rows):
        stage = int(rows[step].get('stage', stage))
        history.append(dict(rows[step], stage=stage))
    return history


def _polyline(canvas, xs, ys, colour):
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        rows, cols = draw.line(int(y0), int(x0), int(y1), int(x1))
        canvas[rows, cols] = colour
    if len(xs) == 1:
        canvas[int(ys[0]), int(xs[0])] = colour


def draw_curves(history):
    """uint8 [2 * PANEL_HEIGHT + 3 * MARGIN, WIDTH, 3] image of the history."""
    canvas = np.full((2 * PANEL_HEIGHT + 3 * MARGIN, WIDTH, 3), 255, np.uint8)
    if not history:
        return canvas
    steps = np.array([row['step'] for row in history], np.float64)
    low, high = steps.min(), max(steps.max(), steps.min() + 1)
    to_x = lambda s: MARGIN + (np.asarray(s) - low) / (high - low) * (WIDTH - 2 * MARGIN - 1)  # noqa: E731
    panels = []
    for number in range(2):
        top = MARGIN + number * (PANEL_HEIGHT + MARGIN)
        panels.append(top)
        bottom, left, right = top + PANEL_HEIGHT - 1, MARGIN - 1, WIDTH - MARGIN
        canvas[[top - 1, bottom + 1], left:right + 1] = 0
        canvas[top - 1:bottom + 2, [left, right]] = 0
    loss_top = max([row['loss'] for row in history if row.get('loss') is not None] + [1e-6])
    for row, previous in zip(history[1:], history):
        if row.get('stage') != previous.get('stage'):
            x = int(to_x(row['step']))
            for top in panels:
                canvas[top:top + PANEL_HEIGHT, x] = 128
    canvas[panels[1] + PANEL_HEIGHT // 2, MARGIN:WIDTH - MARGIN] = 210
    canvas[panels[0] + PANEL_HEIGHT // 2, MARGIN:WIDTH - MARGIN] = 210
    for name, colour in COLOURS.items():
        points = [(row['step'], row[name]) for row in history if row.get(name) is not None]
        if not points:
            continue
        xs = to_x([step for step, _ in points])
        values = np.array([value for _, value in points], np.float64)
        top, scale = (panels[0], loss_top) if name == 'loss' else (panels[1], 1.0)
        ys = top + (PANEL_HEIGHT - 1) * (1.0 - np.clip(values / scale, 0.0, 1.0))
        _polyline(canvas, xs, ys, colour)
    return canvas


def save_curves(model_dir, history):
    path = os.path.join(model_dir, CURVES_PNG)
    partial = path + '.partial.png'
    io.imsave(partial, draw_curves(history), check_contrast=False)
    os.replace(partial, path)
    return path
