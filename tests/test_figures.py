"""engine/figures.py: matplotlib figures with real content, their PNGs, and TensorBoard image summaries."""
import glob
import io
import os

import numpy as np
from PIL import Image

from tfgraft.engine import figures
from tfgraft.engine.curves import read_history, save_curves
from tfgraft.engine.metrics import confusion_matrix, per_class


def png_info(data):
    image = Image.open(io.BytesIO(data))
    return image.size, image.info


def twenty_class_matrix():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 20, 600)
    predicted = np.where(rng.rand(600) < 0.7, labels, rng.randint(0, 20, 600))
    return confusion_matrix(labels, predicted, 20)


def test_confusion_figure_names_both_axes_and_writes_every_count(tmp_path):
    classes = ['class_%02d_long_name' % i for i in range(20)]
    matrix = twenty_class_matrix()
    figure = figures.confusion_figure(matrix, classes)
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == classes
    assert [label.get_text() for label in axes.get_yticklabels()] == classes
    assert axes.get_xlabel() == 'predicted class' and axes.get_ylabel() == 'true class'
    texts = [text.get_text() for text in axes.texts]
    assert texts == [str(value) for value in matrix.ravel()]          # row by row, every cell
    shares = axes.images[0].get_array()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)               # colours: row-normalised
    assert min(text.get_fontsize() for text in axes.texts) >= 9        # readable at 20 classes
    data = figures.save_png(figure, str(tmp_path / 'confusion.png'))
    (width, height), info = png_info(data)
    assert width >= 1000 and height >= 900
    assert info['Software'].startswith('Matplotlib')
    assert open(str(tmp_path / 'confusion.png'), 'rb').read() == data


def test_confusion_figure_refuses_a_matrix_of_another_size():
    import pytest
    with pytest.raises(ValueError):
        figures.confusion_figure([[1, 2], [3, 4]], ['a', 'b', 'c'])


def test_per_class_figure_bars_are_the_precision_and_recall():
    matrix = confusion_matrix([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
    rows = per_class(matrix, ['ants', 'bees', 'wasps'])
    figure = figures.per_class_figure(rows)
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ['ants (2)', 'bees (2)', 'wasps (2)']
    widths = [patch.get_width() for patch in axes.patches]
    assert widths == [row['precision'] for row in rows] + [row['recall'] for row in rows]
    (width, _), info = png_info(figures.png_bytes(figure))
    assert width >= 400 and info['Software'].startswith('Matplotlib')


def history_of_two_stages():
    rows = []
    for step in range(0, 200, 10):
        rows.append({'step': step, 'stage': 1 if step < 120 else 2, 'loss': 2.0 / (1 + step / 20),
                     'accuracy': min(0.99, 0.5 + step / 400), 'validation_accuracy': 0.5 + step / 500})
    return rows


def test_curves_figure_has_labelled_axes_both_accuracies_and_the_stage_boundary():
    figure = figures.curves_figure(history_of_two_stages())
    loss_axes, accuracy_axes = figure.axes
    assert loss_axes.get_ylabel() == 'cross-entropy loss'
    assert accuracy_axes.get_ylabel() == 'accuracy' and accuracy_axes.get_xlabel() == 'training step'
    assert [line.get_label() for line in accuracy_axes.get_lines() if not line.get_label().startswith('_')] \
        == ['train accuracy', 'validation accuracy']
    accuracy = [line for line in accuracy_axes.get_lines() if line.get_label() == 'validation accuracy'][0]
    assert list(accuracy.get_ydata()) == [0.5 + step / 500 for step in range(0, 200, 10)]
    boundaries = [line.get_xdata()[0] for line in loss_axes.get_lines() if line.get_linestyle() == '--']
    assert boundaries == [120]
    assert 'stage 2' in [text.get_text() for text in loss_axes.texts]


def event_images(folder):
    import tensorflow as tf
    found = {}
    for path in glob.glob(os.path.join(folder, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.WhichOneof('value') == 'image':
                    found[value.tag] = (event.step, value.image)
    return found


def test_save_curves_writes_the_png_and_the_same_image_to_tensorboard(tmp_path):
    import tensorflow as tf
    model_dir = str(tmp_path)
    with tf.Graph().as_default():       # a scalar history as the Estimator writes it
        writer = tf.compat.v1.summary.FileWriter(os.path.join(model_dir, 'train'))
        for row in history_of_two_stages():
            summary = tf.compat.v1.Summary(value=[
                tf.compat.v1.Summary.Value(tag='loss', simple_value=row['loss']),
                tf.compat.v1.Summary.Value(tag='accuracy', simple_value=row['accuracy'])])
            writer.add_summary(summary, row['step'])
        writer.close()
    path = save_curves(model_dir, read_history(model_dir))
    data = open(path, 'rb').read()
    (width, _), info = png_info(data)
    assert width >= 400 and info['Software'].startswith('Matplotlib')
    step, image = event_images(os.path.join(model_dir, 'train'))['learning_curves']
    assert step == 190 and image.encoded_image_string == data and image.width == width
    # The image summary is not history: a second read gives the same rows.
    assert len(read_history(model_dir)) == 20


def test_image_summaries_never_replace_the_scalars_beside_them(tmp_path):
    """Event files are named by the second and host: a figures writer opened in the same
    second as the training's writer must not replace its file."""
    import tensorflow as tf
    from tfgraft.engine.figures import write_image_summaries
    png = open(save_curves(str(tmp_path), history_of_two_stages()), 'rb').read()
    folder = str(tmp_path / 'train')
    with tf.Graph().as_default():
        writer = tf.compat.v1.summary.FileWriter(folder)
        for step in range(5):
            writer.add_summary(tf.compat.v1.Summary(value=[
                tf.compat.v1.Summary.Value(tag='loss', simple_value=1.0 / (step + 1)),
                tf.compat.v1.Summary.Value(tag='accuracy', simple_value=0.5)]), step)
        writer.close()
    write_image_summaries(folder, 4, {'learning_curves': png})
    write_image_summaries(folder, 4, {'again': png})
    assert [row['step'] for row in read_history(str(tmp_path))] == [0, 1, 2, 3, 4]
    assert len(glob.glob(os.path.join(folder, 'events.out.tfevents.*'))) == 4
