"""Augmentation draws: stateless from a seed, and each kind does what its flag says."""
import numpy as np
import pytest
import tensorflow as tf

from tfgraft.engine.augment import Augmentation, augment
from tfgraft.graphs.registry import mobilenet_v1_card

CARD = mobilenet_v1_card('0.25', 128)


def _image():
    return np.random.RandomState(0).uniform(-1, 1, (16, 12, 3)).astype(np.float32)


def _copies(augmentation, seeds):
    image = tf.constant(_image())
    return [augment(image, augmentation, CARD, tf.constant(seed, tf.int64)).numpy() for seed in seeds]


@pytest.mark.parametrize('augmentation', [
    Augmentation(flip_left_right=True), Augmentation(rotation=0.1), Augmentation(random_crop=20),
    Augmentation(random_scale=20), Augmentation(random_brightness=20),
    Augmentation(True, 0.1, 10, 10, 10)])
def test_same_seed_same_copy_other_seeds_differ(augmentation):
    seeds = [[0, k] for k in range(8)]
    first, again = _copies(augmentation, seeds), _copies(augmentation, seeds)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert len({copy.tobytes() for copy in first}) > 1
    assert all(copy.shape == (16, 12, 3) for copy in first)


def test_flip_gives_the_image_or_its_mirror_about_half_the_time():
    image = _image()
    copies = _copies(Augmentation(flip_left_right=True), [[3, k] for k in range(200)])
    flipped = [np.array_equal(copy, image[:, ::-1]) for copy in copies]
    assert all(f or np.array_equal(copy, image) for f, copy in zip(flipped, copies))
    assert 70 < sum(flipped) < 130


def test_brightness_keeps_black_black():
    black = np.full((4, 4, 3), CARD.input_range[0], np.float32)
    copy = augment(tf.constant(black), Augmentation(random_brightness=50), CARD,
                   tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_allclose(copy, black, atol=1e-6)


def test_rotation_turns_at_most_the_limit():
    image = np.zeros((33, 33, 3), np.float32)
    image[16, 16:, :] = 1.0                       # a ray from the centre to the right edge
    for k in range(20):
        copy = augment(tf.constant(image), Augmentation(rotation=0.05), CARD,
                       tf.constant([5, k], tf.int64)).numpy()
        rows, cols = np.nonzero(copy[..., 0] > 0.5)
        far = np.argmax(cols)
        angle = abs(np.arctan2(rows[far] - 16, cols[far] - 16))
        assert angle <= 0.05 * 2 * np.pi + 0.1
