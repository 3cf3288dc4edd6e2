"""tfgraft: graft new layers on pretrained TensorFlow 1-style graphs.

The four source folders sit at the top of the repository and are installed
under one import name, so code reads ``from tfgraft.records import ...`` and
no generic module names (``graphs``, ``records``...) land in site-packages.
"""
from setuptools import setup

SUBPACKAGES = ['graphs', 'records', 'engine', 'tools']

setup(
    name='tfgraft',
    version='0.1.0',
    description='Transfer learning on images with TensorFlow 1-style graphs: '
                'bottleneck records, grafted heads, fine-tuning, export.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=['tfgraft.' + name for name in SUBPACKAGES],
    package_dir={'tfgraft.' + name: name for name in SUBPACKAGES},
    install_requires=[
        'tensorflow>=2.12',
        'numpy',
        'scikit-image',
        'protobuf',
        # Figures: the confusion matrix, learning curves and per-class charts that
        # evaluate / train / finetune write as PNGs and TensorBoard image summaries
        # (drawn off screen with the Agg backend, so no display is needed).
        'matplotlib',
    ],
    extras_require={
        # `tfgraft bottlenecks --runner ...`: the backbone run as an Apache Beam pipeline
        # (DirectRunner on a laptop; Flink, Spark or Dataflow on a cluster).
        'beam': ['apache-beam'],
        # tensorboard: the tests parse evaluate --projector's config with TensorBoard's own
        # ProjectorConfig proto (tensorflow no longer installs tensorboard).
        # tf_keras: the tests write a Keras 2 SavedModel folder (keras_metadata.pb) as users'
        # model.save('dir') did; tfgraft reads such folders without it.
        'test': ['pytest', 'tensorboard', 'tf_keras'],
    },
    entry_points={'console_scripts': ['tfgraft = tfgraft.tools.cli:main']},
)
