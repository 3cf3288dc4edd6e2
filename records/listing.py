"""List a folder of labelled photos: one class per subfolder, and its split.

If the folder holds `train/` and `validation/` (and maybe `test/`) subfolders,
as the Keras tutorials lay data out, those are the splits. Otherwise each
image's split comes from a stable hash (split rules):

  file_name   (default) sha1 of the file's name alone, with anything after
              `_nohash_` removed: the same image lands in the same split on
              every run and machine, wherever the folder lives.
  retrain_py  retrain.py's create_image_lists exactly: sha1 of the path as it
              spells it, `<image_dir as typed>/<class folder>/<file name>`, with
              anything after `_nohash_` removed, and only the files it reads
              (`*.jpg`, `*.jpeg`, `*.JPG`, `*.JPEG` directly in a class folder).

Both turn the sha1 into a percentage the same way (modulo 2**27, times
100 / (2**27 - 1)): below --validation_percentage is validation, below
validation + testing is test, the rest train.
"""
import dataclasses
import hashlib
import os
import re

from tfgraft.graphs.errors import GraftError
from tfgraft.records import storage
from tfgraft.records.image_check import is_candidate_file

SPLIT_FOLDERS = ('train', 'validation', 'test')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp')
RETRAIN_PY_EXTENSIONS = ('jpg', 'jpeg', 'JPG', 'JPEG')     # its globs, case-sensitive
SPLIT_RULES = ('file_name', 'retrain_py')
MAX_NUM_IMAGES_PER_CLASS = 2 ** 27 - 1


@dataclasses.dataclass(frozen=True)
class ImageEntry:
    path: str        # relative to the image folder, '/'-separated
    label: int
    split: str


@dataclasses.dataclass
class ImageList:
    image_dir: str
    classes: list
    entries: list
    skipped: list    # [{'image_path': ..., 'reason': ...}]
    split_rule: str


def hash_split(file_name, validation_percentage, testing_percentage):
    """'train', 'validation' or 'test' for a file name, stable across runs."""
    hash_name = re.sub(r'_nohash_.*$', '', file_name)
    digest = int(hashlib.sha1(hash_name.encode('utf-8')).hexdigest(), 16)
    percentage = (digest % (MAX_NUM_IMAGES_PER_CLASS + 1)) * (100.0 / MAX_NUM_IMAGES_PER_CLASS)
    if percentage < validation_percentage:
        return 'validation'
    if percentage < validation_percentage + testing_percentage:
        return 'test'
    return 'train'


def retrain_py_split(image_dir, class_folder, file_name, validation_percentage, testing_percentage):
    """retrain.py's split of <image_dir>/<class_folder>/<file_name>: the whole path, as
    typed, is hashed (so `photos`, `photos/` and `./photos` can split differently)."""
    return hash_split(os.path.join(image_dir, class_folder, file_name), validation_percentage,
                      testing_percentage)


def _retrain_py_files(class_dir):
    """The file names retrain.py's globs find in a class folder (not below it)."""
    return sorted(name for name in storage.listdir(class_dir)
                  if is_candidate_file(name) and name.rsplit('.', 1)[-1] in RETRAIN_PY_EXTENSIONS
                  and '.' in name and storage.isfile(os.path.join(class_dir, name)))


def _files_below(folder):
    """Relative paths of the files below `folder`, sorted; links to folders not followed."""
    found = []
    for root, dirs, files in storage.walk(folder):
        dirs[:] = sorted(d for d in dirs if is_candidate_file(d))
        below = storage.relative(root, folder)
        prefix = '' if below == os.curdir else below + os.sep
        found.extend(prefix + name for name in files if is_candidate_file(name))
    return sorted(found)


def _subfolders(folder):
    return sorted(name for name in storage.listdir(folder)
                  if is_candidate_file(name) and storage.isdir(os.path.join(folder, name)))


def list_image_files(folder):
    """Every candidate image file below a folder, sorted (for predict on a folder)."""
    if not storage.isdir(folder):
        raise GraftError('not a folder: %s' % folder)
    return [os.path.join(folder, rel) for rel in _files_below(folder)
            if rel.lower().endswith(IMAGE_EXTENSIONS)]


def _relative(parts):
    return '/'.join(p.replace(os.sep, '/') for p in parts if p)


def list_images(image_dir, validation_percentage=10, testing_percentage=10,
                skip_empty_classes=False, split_rule='file_name'):
    """An ImageList for `image_dir`. Files are not opened here.

    split_rule: 'file_name' or 'retrain_py' (see the module's docstring); the
    folder layout's own splits win over the default rule, and retrain_py refuses them.
    """
    if split_rule not in SPLIT_RULES:
        raise GraftError('unknown split rule %r: use one of %s' % (split_rule, ', '.join(SPLIT_RULES)))
    if not storage.isdir(image_dir):
        raise GraftError('image folder not found: %s' % image_dir)
    if not 0 <= validation_percentage + testing_percentage < 100 or \
            min(validation_percentage, testing_percentage) < 0:
        raise GraftError('validation and testing percentages must be >= 0 and add up to less than 100')
    top = _subfolders(image_dir)
    retrain_py = split_rule == 'retrain_py'
    if 'train' in top and ('validation' in top or 'test' in top):
        if retrain_py:
            raise GraftError('%s holds train/ and validation/ folders: retrain.py would read them as '
                             'classes; drop --split_rule retrain_py to use the folders as the splits'
                             % image_dir)
        split_dirs = [(split, split) for split in SPLIT_FOLDERS if split in top]
        split_rule = 'folders'
    elif retrain_py:
        split_dirs = [('', None)]
        split_rule = ('retrain_py: sha1 of %s/<class>/<file>, %g%% validation, %g%% test'
                      % (image_dir.rstrip(os.sep) or os.sep, validation_percentage, testing_percentage))
    else:
        split_dirs = [('', None)]
        split_rule = 'hash: %g%% validation, %g%% test' % (validation_percentage, testing_percentage)
    class_names = _subfolders(os.path.join(image_dir, split_dirs[0][0]))
    if not class_names:
        raise GraftError('%s has no class subfolders (one folder of images per class)' % image_dir)
    if split_rule == 'folders':
        for folder, _ in split_dirs[1:]:
            extra = set(_subfolders(os.path.join(image_dir, folder))) - set(class_names)
            if extra:
                raise GraftError('%s/ has classes that train/ lacks: %s' % (folder, ', '.join(sorted(extra))))

    files_by_class = {name: [] for name in class_names}
    for folder, split in split_dirs:
        for name in class_names:
            class_dir = os.path.join(image_dir, folder, name)
            if not storage.isdir(class_dir):
                continue
            if retrain_py:
                for rel in _retrain_py_files(class_dir):
                    files_by_class[name].append((_relative([name, rel]), retrain_py_split(
                        image_dir, name, rel, validation_percentage, testing_percentage)))
                continue
            for rel in _files_below(class_dir):
                chosen = split or hash_split(os.path.basename(rel), validation_percentage,
                                             testing_percentage)
                files_by_class[name].append((_relative([folder, name, rel]), chosen))

    skipped, classes = [], []
    for name in class_names:
        if files_by_class[name]:
            classes.append(name)
        elif skip_empty_classes:
            skipped.append({'image_path': name + '/', 'reason': 'class folder has no images'})
        else:
            raise GraftError('class folder %r has no images (remove it, or pass '
                             '--skip_empty_classes)' % name)
    if len(classes) < 2:
        raise GraftError('%s needs at least 2 classes with images, found %d'
                         % (image_dir, len(classes)))
    entries = [ImageEntry(path, label, split)
               for label, name in enumerate(classes)
               for path, split in files_by_class[name]]
    return ImageList(storage.absolute(image_dir), classes, entries, skipped, split_rule)
