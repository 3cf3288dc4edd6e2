"""Learning curves of a model_dir: read back from its TensorBoard events, drawn with matplotlib.

The history comes from the events the Estimator writes (train/: loss, accuracy,
stage; validation/: accuracy, loss), so stage 1 trained by `tfgraft train` is
drawn too. One row per step: {'step', 'stage', 'loss', 'accuracy',
'validation_accuracy', 'validation_loss'}. engine/figures.py draws it;
save_curves writes learning_curves.png and the same image to TensorBoard.
"""
import os

CURVES_PNG = 'learning_curves.png'
CURVES_TAG = 'learning_curves'


def read_history(summaries_dir):
    """Rows by step from <summaries_dir>/train and /validation events; stage 1 until a 'stage' scalar."""
    import glob
    import tensorflow as tf
    rows = {}
    for folder, prefix in (('train', ''), ('validation', 'validation_')):
        for path in sorted(glob.glob(os.path.join(summaries_dir, folder, 'events.out.tfevents.*'))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.WhichOneof('value') != 'simple_value':
                        continue         # images (the curves themselves) are not history
                    row = rows.setdefault(int(event.step), {'step': int(event.step)})
                    row[value.tag if value.tag == 'stage' else prefix + value.tag] = value.simple_value
    stage, history = 1, []
    for step in sorted(rows):
        stage = int(rows[step].get('stage', stage))
        history.append(dict(rows[step], stage=stage))
    return history


def save_curves(model_dir, history, summaries_dir=None):
    """<model_dir>/learning_curves.png, and the image in <summaries_dir or model_dir>/train's events
    at the last step; returns the PNG's path."""
    from tfgraft.engine.figures import curves_figure, save_png, write_image_summaries
    path = os.path.join(model_dir, CURVES_PNG)
    png = save_png(curves_figure(history), path)
    step = history[-1]['step'] if history else 0
    write_image_summaries(os.path.join(summaries_dir or model_dir, 'train'), step, {CURVES_TAG: png})
    return path


def save_training_curves(model_dir, summaries_dir=None):
    """save_curves of what the model_dir's (or --summaries_dir's) events hold; the PNG's path."""
    folder = summaries_dir or model_dir
    return save_curves(model_dir, read_history(folder), folder)
