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


def load_rgb(path, ratio=1):
    """Scalar string tensor holding a file path -> uint8 [H, W, 3]; ratio: see
    decode_rgb_scaled."""
    return decode_rgb_scaled(tf.io.read_file(path), ratio)


# --fast_decode: libjpeg's DCT scaling decodes a JPEG at 1/2, 1/4 or 1/8 of its size
# for a fraction of the work; the pixels differ slightly from a full decode and a
# resize. FAST_DECODE_VERSION is in the cache key: change it when the rule changes.
DCT_RATIOS = (1, 2, 4, 8)
FAST_DECODE_VERSION = 1


def dct_scale(size, card):
    """Index into DCT_RATIOS for a file of header size (width, height): the largest ratio
    that still leaves at least the input size on both sides (of the centre square when
    the card crops to one); 0 (full size) when the size is unknown."""
    if not size:
        return 0
    width, height = size
    if card.resize == 'center_crop':
        width = height = min(width, height)
    input_height, input_width = card.input_size
    fits = min(width / float(input_width), height / float(input_height))
    return max(i for i, ratio in enumerate(DCT_RATIOS) if ratio <= fits) if fits >= 1 else 0


def decode_rgb_scaled(contents, ratio):
    """decode_rgb, with a JPEG decoded at 1/ratio of its size (ratio: one of DCT_RATIOS, a
    Python int). Above 1, the file must be a JPEG (its header says so: dct_scale's
    callers only give a size for JPEGs)."""
    if ratio == 1:
        return decode_rgb(contents)
    image = tf.io.decode_jpeg(contents, channels=3, ratio=ratio)
    image.set_shape([None, None, 3])
    return image
