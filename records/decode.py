"""Decode image file bytes to RGB inside the graph.

Any format tf.io.decode_image reads (JPEG, PNG, GIF, BMP, WebP) becomes uint8
RGB: grey is repeated over three channels, alpha dropped, 16-bit scaled down,
and only the first frame of an animation is kept.
"""
import tensorflow as tf


def decode_rgb(contents):
    """Scalar string tensor of file bytes -> uint8 [H, W, 3]."""
    image = tf.io.decode_image(contents, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def load_rgb(path):
    """Scalar string tensor holding a file path -> uint8 [H, W, 3]."""
    return decode_rgb(tf.io.read_file(path))
