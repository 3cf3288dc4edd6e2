"""Grafted heads on bottleneck records: an Estimator-style trainer on tf.compat.v1.

heads.py (the layers and the model_fn), optimizers.py, metrics.py,
inputs.py (input_fns over the record reader and image files),
estimator.py (train / evaluate / predict on a model_dir), model_dir.py
(params.json and checkpoints), export.py (one frozen graph), figures.py (matplotlib figures:
confusion matrix, per-class bars, learning curves), curves.py (training
history from the events), projector.py (TensorBoard Embedding Projector files).
"""
