"""Grafted heads on bottleneck records: an Estimator-style trainer on tf.compat.v1, and the jobs.

The jobs the commands run: training.py (train a head), evaluation.py,
prediction.py, export.py, finetune.py, retrain.py, demo.py. Beneath them:
heads.py (the layers and the model_fn), optimizers.py, metrics.py, inputs.py
(input_fns over the record reader and image files), estimator.py (train /
evaluate / predict on a model_dir), model_dir.py (params.json), augment.py,
figures.py (matplotlib figures), curves.py (training history from the events),
projector.py (TensorBoard Embedding Projector files).
"""
