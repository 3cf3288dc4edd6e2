"""Random image augmentation inside the tf.data pipeline, one flag each.

Applied to a preprocessed float image [h, w, 3] (after graphs/preprocessing.py):
    flip_left_right   mirror half of the images
    rotation          turn by an angle up to rotation * 2*pi either way
                      (Keras RandomRotation(0.1): up to 36 degrees)
    random_crop       keep a random box of 1/(1 + pct/100) of the side or more,
                      resized back (retrain.py's --random_crop)
    random_scale      zoom in by up to 1 + pct/100 about the centre
    random_brightness multiply the pixel values by 1 +- pct/100
"""
import dataclasses
import math

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    flip_left_right: bool = False
    rotation: float = 0.0
    random_crop: float = 0.0
    random_scale: float = 0.0
    random_brightness: float = 0.0

    def __bool__(self):
        return bool(self.flip_left_right or self.rotation or self.random_crop
                    or self.random_scale or self.random_brightness)


def _rotate(image, turn):
    """Turn by `turn` (a fraction of a full turn) about the centre."""
    angle = turn * 2 * math.pi
    height, width = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Maps each output pixel back to the input pixel it shows (turn about the centre).
    x_offset = (width - 1) / 2 - (cos * (width - 1) / 2 - sin * (height - 1) / 2)
    y_offset = (height - 1) / 2 - (sin * (width - 1) / 2 + cos * (height - 1) / 2)
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[tf.newaxis]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='REFLECT')[0]


def _crop_and_resize(image, side_fraction, top, left):
    """The box of `side_fraction` of each side at (top, left), resized back to full size."""
    size = tf.shape(image)[:2]
    box = tf.stack([top, left, top + side_fraction, left + side_fraction])[tf.newaxis]
    return tf.image.crop_and_resize(image[tf.newaxis], box, [0], size)[0]


def _between(unit, low, high):
    return low + unit * (high - low)


def augment(image, augmentation, card, seed):
    """One randomly changed copy of a preprocessed image.

    seed: int [2] tensor. Every draw is stateless and comes from it alone, so
    the same seed gives the same copy whatever thread decodes the image.
    """
    flip, turn, crop, top, left, zoom, brightness = tf.unstack(
        tf.random.stateless_uniform([7], seed))
    if augmentation.flip_left_right:
        image = tf.cond(flip < 0.5, lambda: tf.image.flip_left_right(image), lambda: image)
    if augmentation.rotation:
        image = _rotate(image, _between(turn, -augmentation.rotation, augmentation.rotation))
    if augmentation.random_crop:
        fraction = _between(crop, 1.0 / (1.0 + augmentation.random_crop / 100.0), 1.0)
        image = _crop_and_resize(image, fraction, top * (1.0 - fraction), left * (1.0 - fraction))
    if augmentation.random_scale:
        fraction = 1.0 / _between(zoom, 1.0, 1.0 + augmentation.random_scale / 100.0)
        image = _crop_and_resize(image, fraction, (1.0 - fraction) / 2, (1.0 - fraction) / 2)
    if augmentation.random_brightness:
        factor = _between(brightness, 1.0 - augmentation.random_brightness / 100.0,
                          1.0 + augmentation.random_brightness / 100.0)
        # Scale the pixel values, not the card's offset and mean: black stays black.
        black = card.input_range[0] - tf.constant(card.channel_mean or [0.0, 0.0, 0.0], tf.float32)
        image = (image - black) * factor + black
    return image
