"""TensorBoard Embedding Projector files for one split's bottleneck vectors.

write_projector(folder, vectors, rows, image_paths) writes, in `folder`:
    embedding.ckpt-*       the [N, D] vectors as the variable `embedding`
    metadata.tsv           a header (label, predicted, path), then one row per vector
    sprite.png             every image as a thumbnail, row by row on a square grid
    projector_config.pbtxt ties them together (TensorBoard's ProjectorConfig)
so `tensorboard --logdir <folder's parent>` shows the bottleneck space with pictures.
The config is written with tensorboard.plugins.projector's proto when TensorBoard
is installed, else with the same message built here (its three fields' numbers).
"""
import math
import os

import numpy as np

from tfgraft.records.atomic import atomic_write, atomic_write_bytes

TENSOR_NAME = 'embedding'
CONFIG_NAME, METADATA_NAME, SPRITE_NAME = 'projector_config.pbtxt', 'metadata.tsv', 'sprite.png'
SPRITE_LIMIT = 8192          # TensorBoard refuses sprites wider or taller than this
THUMBNAIL = 64
MISSING_GREY = 128


def projector_config_class():
    """ProjectorConfig: TensorBoard's own, or an identical message type made from a descriptor."""
    try:
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig
        return ProjectorConfig
    except ImportError:
        pass
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    FieldProto = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name='tfgraft_projector_config.proto',
                                               package='tensorboard', syntax='proto3')

    def message(name, fields):
        described = proto.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            field = described.field.add(name=field_name, number=number, type=kind, label=(
                FieldProto.LABEL_REPEATED if repeated else FieldProto.LABEL_OPTIONAL))
            if type_name:
                field.type_name = type_name
    text, uint32, nested = FieldProto.TYPE_STRING, FieldProto.TYPE_UINT32, FieldProto.TYPE_MESSAGE
    message('SpriteMetadata', [('image_path', 1, text, False, None),
                               ('single_image_dim', 2, uint32, True, None)])
    message('EmbeddingInfo', [('tensor_name', 1, text, False, None),
                              ('metadata_path', 2, text, False, None),
                              ('bookmarks_path', 3, text, False, None),
                              ('tensor_shape', 4, uint32, True, None),
                              ('sprite', 5, nested, False, '.tensorboard.SpriteMetadata'),
                              ('tensor_path', 6, text, False, None)])
    message('ProjectorConfig', [('model_checkpoint_path', 1, text, False, None),
                                ('embeddings', 2, nested, True, '.tensorboard.EmbeddingInfo'),
                                ('model_checkpoint_dir', 3, text, False, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName('tensorboard.ProjectorConfig'))


def _cell(text):
    return ' '.join(str(text).replace('\t', ' ').split())


def metadata_text(rows):
    """TSV of rows [(label, predicted, path)] under a header: N + 1 lines."""
    lines = ['label\tpredicted\tpath'] + ['\t'.join(_cell(value) for value in row) for row in rows]
    return '\n'.join(lines) + '\n'


def sprite_layout(count):
    """(grid side, thumbnail side): a square grid of `count` cells within SPRITE_LIMIT."""
    side = max(1, math.ceil(math.sqrt(count)))
    return side, max(1, min(THUMBNAIL, SPRITE_LIMIT // side))


def _thumbnail(path, size):
    """The image scaled to fit size x size, centred on white; None if it cannot be read."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image = image.convert('RGB')
            image.thumbnail((size, size))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    cell = np.full((size, size, 3), 255, np.uint8)
    pixels = np.asarray(image)
    top, left = (size - pixels.shape[0]) // 2, (size - pixels.shape[1]) // 2
    cell[top:top + pixels.shape[0], left:left + pixels.shape[1]] = pixels
    return cell


def sprite_image(image_paths):
    """(uint8 sprite [side*t, side*t, 3], thumbnail side t, paths that could not be read)."""
    side, size = sprite_layout(len(image_paths))
    sprite = np.full((side * size, side * size, 3), 255, np.uint8)
    missing = []
    for index, path in enumerate(image_paths):
        cell = _thumbnail(path, size)
        if cell is None:
            missing.append(path)
            cell = np.full((size, size, 3), MISSING_GREY, np.uint8)
        row, col = divmod(index, side)
        sprite[row * size:(row + 1) * size, col * size:(col + 1) * size] = cell
    return sprite, size, missing


def _save_vectors(folder, vectors):
    """The vectors as variable `embedding` in a checkpoint; returns its path prefix."""
    import tensorflow as tf
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        embedding = tf1.Variable(vectors, name=TENSOR_NAME, trainable=False)
        saver = tf1.train.Saver([embedding])
        with tf1.Session() as session:
            session.run(embedding.initializer)
            return saver.save(session, os.path.join(folder, 'embedding.ckpt'), global_step=0)


def write_projector(folder, vectors, rows, image_paths):
    """Write the projector's files for vectors [N, D], rows [(label, predicted, path)] and the
    images' files (for the sprite). Returns {'config', 'checkpoint', 'missing_images', ...}."""
    from PIL import Image
    import io
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) != len(rows) or len(rows) != len(image_paths):
        raise ValueError('%s vectors, %d metadata rows and %d images do not match'
                         % (vectors.shape, len(rows), len(image_paths)))
    os.makedirs(folder, exist_ok=True)
    atomic_write_bytes(os.path.join(folder, METADATA_NAME), metadata_text(rows).encode('utf-8'))
    sprite, size, missing = sprite_image(image_paths)
    buffer = io.BytesIO()
    Image.fromarray(sprite).save(buffer, format='PNG')
    atomic_write(os.path.join(folder, SPRITE_NAME), lambda handle: handle.write(buffer.getvalue()))
    checkpoint = _save_vectors(folder, vectors)
    config = projector_config_class()()      # no checkpoint path: TensorBoard takes the folder's latest
    embedding = config.embeddings.add()
    embedding.tensor_name = TENSOR_NAME
    embedding.tensor_shape.extend(vectors.shape)
    embedding.metadata_path = METADATA_NAME
    embedding.sprite.image_path = SPRITE_NAME
    embedding.sprite.single_image_dim.extend([size, size])
    from google.protobuf import text_format
    atomic_write_bytes(os.path.join(folder, CONFIG_NAME),
                       text_format.MessageToString(config).encode('utf-8'))
    return {'folder': folder, 'config': os.path.join(folder, CONFIG_NAME), 'checkpoint': checkpoint,
            'thumbnail': size, 'missing_images': missing}


def write_split_projector(folder, data, predicted, classes, image_dir):
    """write_projector for a split loaded by records/reader.py load_split: labels and
    predicted classes by name, image paths as recorded (relative to the manifest's image_dir)."""
    rows = [(classes[label], classes[guess], path)
            for label, guess, path in zip(data['labels'], predicted, data['image_paths'])]
    files = [os.path.join(image_dir, path) for path in data['image_paths']]
    return write_projector(folder, data['bottlenecks'], rows, files)
