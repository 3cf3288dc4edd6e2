"""Turn a decoded RGB image into what a backbone's card says it expects.

Kept apart from the networks, as TF-slim does. The resize is the
ResizeBilinear op the 2015-era frozen graphs contain (no half-pixel centres),
so a batch fed through `image_tensor` sees the pixels the graph's own JPEG
path would have produced.
"""
import tensorflow as tf

from tfgraft.records.decode import load_rgb


def center_crop_square(image):
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top = (shape[0] - side) // 2
    left = (shape[1] - side) // 2
    return image[top:top + side, left:left + side, :]


def preprocess_image(image, card):
    """uint8 [H, W, 3] RGB -> float32 [height, width, 3] for the card's network."""
    if card.resize == 'center_crop':
        image = center_crop_square(image)
    # ResizeBilinear reads uint8 and returns float32: the same values as casting
    # first, without a float copy of the full-size image.
    pixels = tf.raw_ops.ResizeBilinear(images=image[tf.newaxis], size=list(card.input_size),
                                       align_corners=False, half_pixel_centers=False)[0]
    low, high = card.input_range
    pixels = pixels * ((high - low) / 255.0) + low
    if card.channel_order == 'BGR':
        pixels = tf.reverse(pixels, axis=[-1])
    if card.channel_mean:
        pixels = pixels - tf.constant(card.channel_mean, tf.float32)
    return pixels


def load_preprocessed(path, card, ratio=1):
    """Scalar string tensor holding an image file's path -> float32 [height, width, 3] for the
    card; ratio > 1 decodes a JPEG at 1/ratio of its size first (--fast_decode)."""
    return preprocess_image(load_rgb(path, ratio), card)
