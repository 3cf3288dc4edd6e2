"""Pictures for `tfgraft demo` that ship inside scikit-image, so it needs no download.

Two sets, both from files bundled in the scikit-image wheel (no pooch fetch):
- texture patches to train the rootstock network on: square patches cut from
  fifteen photos (brick, grass, gravel, moon, coffee...) at three scales, one
  class per photo;
- the labelled set the demo grafts a head for: `lfw_subset`, 100 faces then
  100 non-faces (25x25 grey), written as PNG files in class folders.
"""
import os

import imageio.v3 as imageio
import numpy as np
import skimage.data
import skimage.transform

from tfgraft.records.atomic import atomic_write

# Photos bundled with scikit-image; each is one class of patches.
TEXTURE_SOURCES = ('brick', 'grass', 'gravel', 'moon', 'camera', 'coins', 'cell', 'text',
                   'astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field',
                   'immunohistochemistry', 'retina')
# Patches are cut from the photo at full, half and quarter size, so the
# rootstock sees both fine grain and coarse shapes.
PATCH_HALVINGS = 2

DEMO_CLASSES = ('faces', 'non_faces')
DEMO_IMAGES_PER_CLASS = 100
# lfw_subset is 25x25; written at the rootstock's input size (32) so the
# pipeline's own resize has nothing left to do.
DEMO_IMAGE_SIZE = 32


def as_uint8(pixels):
    """Float pixels in [0, 1] (or uint8 already) -> uint8."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return pixels
    return np.clip(np.round(pixels.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def as_rgb_uint8(image):
    """Grey or RGB(A), float in [0, 1] or uint8 -> uint8 [H, W, 3]."""
    image = as_uint8(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3]


def halve(image):
    """Mean of each 2x2 block of an [H, W, 3] uint8 image (odd edges dropped)."""
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    pixels = image[:height, :width].astype(np.uint16)
    total = pixels[0::2, 0::2] + pixels[1::2, 0::2] + pixels[0::2, 1::2] + pixels[1::2, 1::2]
    return ((total + 2) // 4).astype(np.uint8)


def photo_scales(photo):
    """The photo at full size, half and quarter size."""
    levels = [photo]
    for _ in range(PATCH_HALVINGS):
        levels.append(halve(levels[-1]))
    return levels


def texture_patches(patch_size, patches_per_class=256, seed=0):
    """Random square patches of the bundled photos, one class per photo.

    Returns (images uint8 [N, patch_size, patch_size, 3], labels int64 [N],
    class_names); the same seed always gives the same patches.
    """
    rng = np.random.RandomState(seed)
    images, labels = [], []
    for label, name in enumerate(TEXTURE_SOURCES):
        photo = as_rgb_uint8(getattr(skimage.data, name)())
        levels = [level for level in photo_scales(photo) if min(level.shape[:2]) >= patch_size]
        for _ in range(patches_per_class):
            level = levels[rng.randint(len(levels))]
            top = rng.randint(level.shape[0] - patch_size + 1)
            left = rng.randint(level.shape[1] - patch_size + 1)
            images.append(level[top:top + patch_size, left:left + patch_size])
            labels.append(label)
    return np.stack(images), np.array(labels, np.int64), list(TEXTURE_SOURCES)


def face_images():
    """lfw_subset as (uint8 [200, 25, 25] grey images, labels: 0 face, 1 non-face)."""
    grey = as_uint8(skimage.data.lfw_subset())
    labels = np.repeat(np.arange(len(DEMO_CLASSES)), DEMO_IMAGES_PER_CLASS)
    return grey, labels


def write_demo_images(out_dir):
    """Write the faces / non-faces set as PNG files in class folders; returns the folder."""
    image_dir = os.path.join(out_dir, 'faces_and_non_faces')
    images, labels = face_images()
    for class_name in DEMO_CLASSES:
        os.makedirs(os.path.join(image_dir, class_name), exist_ok=True)
    for index, (image, label) in enumerate(zip(images, labels)):
        large = skimage.transform.resize(image, (DEMO_IMAGE_SIZE, DEMO_IMAGE_SIZE), order=1,
                                         preserve_range=True, anti_aliasing=False)
        class_name = DEMO_CLASSES[label]
        path = os.path.join(image_dir, class_name, '%s_%03d.png' % (class_name, index))
        pixels = np.round(large).astype(np.uint8)
        atomic_write(path, lambda handle: imageio.imwrite(handle, pixels, extension='.png'))
    return image_dir
