"""Label image files with a trained model_dir: its backbone (named in params.json) and head.

A model_dir fine-tuned by `tfgraft finetune` is run with its trained backbone
layers (engine/finetune.py); any other with the backbone params.json describes.
"""
import os

from tfgraft.engine import model_dir as model_dirs
from tfgraft.graphs.errors import GraftError


def image_files(paths):
    """Files as given, folders expanded; each checked so a bad file is named, not crashed on."""
    from tfgraft.records.image_check import SkipImage, inspect_image
    from tfgraft.records.listing import list_image_files
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = list_image_files(path)
            if not found:
                raise GraftError('no image files in %s' % path)
            files.extend(found)
        elif os.path.exists(path):
            files.append(path)
        else:
            raise GraftError('image not found: %s' % path)
    for path in files:
        try:
            info = inspect_image(path)
        except SkipImage as error:
            raise GraftError('cannot read image %s: %s' % (path, error)) from None
        if info.needs_fallback:
            raise GraftError('cannot read image %s: TensorFlow decodes it wrongly (%s); '
                             'convert it to PNG or JPEG' % (path, info.fallback))
    return files


def predict_images(model_dir, paths, batch_size=16, exact_graph=None):
    """(params, [(image path, probabilities)]) in the order given; params and checkpoint checked
    first. exact_graph None: the backbone runs as its bottlenecks were made."""
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.inputs import images_input_fn
    from tfgraft.graphs.factory import load_described
    params = model_dirs.read_params(model_dir)
    estimator = Estimator(model_fn, model_dir, params)
    checkpoint = estimator.latest_checkpoint()
    files = image_files(paths)
    if params.get('fine_tune'):      # backbone layers trained by `tfgraft finetune`
        from tfgraft.engine.finetune import predict_rows
        rows = predict_rows(model_dir, params, checkpoint, files, batch_size)
    else:
        backbone = load_described(params['graph'], exact_graph=exact_graph)
        rows = estimator.predict(images_input_fn(files, backbone, batch_size), checkpoint)
    return params, [(path, row['probabilities']) for path, row in zip(files, rows)]


def top_k_lines(classes, results, top_k):
    """The predict command's output: each path, then its top_k classes and scores."""
    import numpy as np
    lines = []
    for path, probabilities in results:
        lines.append(path)
        for index in np.argsort(-probabilities, kind='stable')[:top_k]:
            lines.append('  %s (score = %.5f)' % (classes[index], probabilities[index]))
    return lines
