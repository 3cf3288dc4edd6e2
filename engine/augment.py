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


def _rotate(image, max_turn):
    angle = tf.random.uniform([], -max_turn, max_turn) * 2 * math.pi
    height, width = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Maps each output pixel back to the input pixel it shows (turn about the centre).
    x_offset = (width - 1) / 2 - (cos * (width - 1) / 2 - sin * (height - 1) / 2)
    y_offset = (height - 1) / 2 - (sin * (width - 1) / 2 + cos * (height - 1) / 2)
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[tf.newaxis]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[tf.newaxis], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation='BILINEAR', fill_mode='REFLECT')[0]


def _crop_and_resize(image, side_fraction, centred):
    """A box of `side_fraction` of each side, random or central, resized back to full size."""
    size = tf.shape(image)[:2]
    if centred:
        top = left = (1.0 - side_fraction) / 2
    else:
        top = tf.random.uniform([], 0.0, 1.0 - side_fraction)
        left = tf.random.uniform([], 0.0, 1.0 - side_fraction)
    box = tf.stack([top, left, top + side_fraction, left + side_fraction])[tf.newaxis]
    return tf.image.crop_and_resize(image[tf.newaxis], box, [0], size)[0]


def augment(image, augmentation, card):
    """One randomly changed copy of a preprocessed image."""
    if augmentation.flip_left_right:
        image = tf.image.random_flip_left_right(image)
    if augmentation.rotation:
        image = _rotate(image, augmentation.rotation)
    if augmentation.random_crop:
        fraction = tf.random.uniform([], 1.0 / (1.0 + augmentation.random_crop / 100.0), 1.0)
        image = _crop_and_resize(image, fraction, centred=False)
    if augmentation.random_scale:
        zoom = tf.random.uniform([], 1.0, 1.0 + augmentation.random_scale / 100.0)
        image = _crop_and_resize(image, 1.0 / zoom, centred=True)
    if augmentation.random_brightness:
        factor = tf.random.uniform([], 1.0 - augmentation.random_brightness / 100.0,
                                   1.0 + augmentation.random_brightness / 100.0)
        # Scale the pixel values, not the card's offset and mean: black stays black.
        black = card.input_range[0] - tf.constant(card.channel_mean or [0.0, 0.0, 0.0], tf.float32)
        image = (image - black) * factor + black
    return image
