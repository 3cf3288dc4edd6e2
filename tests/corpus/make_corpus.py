"""A folder of awkward and broken image files, made at test time.

    make_corpus(root) -> {relative path: Expected(outcome, reason, fallback)}

outcome is 'used' (becomes a record), 'skipped' (listed as skipped; reason
is a word its reason must contain) or 'ignored' (never listed: hidden files,
OS litter, a link to a folder). One skip is not image_check's but the
extractor's: 'astronaut_copy.jpg' has the same bytes as 'astronaut.jpg' (which sorts first), and
an image goes into the records once. fallback is True where tf.io.decode_image
gets the pixels wrong and records.image_check.fallback_decode is needed.

Photos are small crops of scikit-image's bundled pictures; Pillow (tests
only) writes the formats. Run `python tests/corpus/make_corpus.py OUT_DIR`
to look at it.
"""
import collections
import io
import os
import struct
import sys
import zlib

import numpy as np
import skimage.data
from PIL import Image

Expected = collections.namedtuple('Expected', 'outcome reason fallback', defaults=('', False))

GOOD = 'good_class'
ODD = 'Ünïcode 🐱 class'
BAD = 'bad_stuff'
EMPTY = 'empty_class'


def photo(name, step):
    """A small natural RGB image from skimage.data."""
    image = getattr(skimage.data, name)()[::step, ::step]
    return np.ascontiguousarray(image[:, :, :3])


def encode(image, fmt, **options):
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_bytes(pixels):
    """A PNG of a uint8 or uint16 [H, W, C] array (Pillow cannot write 16-bit RGB)."""
    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = pixels.astype('>u2' if depth == 16 else 'u1').reshape(height, -1)
    raw = b''.join(b'\x00' + row.tobytes() for row in rows)
    return (b'\x89PNG\r\n\x1a\n'
            + png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, depth, color_type, 0, 0, 0))
            + png_chunk(b'IDAT', zlib.compress(raw)) + png_chunk(b'IEND', b''))


def png_header_only(width, height):
    """Signature and IHDR of a PNG declaring width x height, and nothing else."""
    return b'\x89PNG\r\n\x1a\n' + png_chunk(
        b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))


def jpeg_header_only(width, height):
    """SOI, a baseline frame header declaring width x height, EOI."""
    frame = struct.pack('>BHHB', 8, height, width, 3) + b'\x01\x22\x00\x02\x11\x01\x03\x11\x01'
    return b'\xff\xd8' + b'\xff\xc0' + struct.pack('>H', 2 + len(frame)) + frame + b'\xff\xd9'


def with_thumbnail(jpeg, thumbnail):
    """The JPEG with an APP1 segment holding another JPEG, as cameras store thumbnails."""
    segment = b'Exif\x00\x00' + thumbnail
    return jpeg[:2] + b'\xff\xe1' + struct.pack('>H', 2 + len(segment)) + segment + jpeg[2:]


def animated(frames, fmt, **options):
    first, *rest = [Image.fromarray(frame) for frame in frames]
    return encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0, **options)


def corpus_files():
    """{relative path: (bytes, Expected)} for every regular file of the corpus."""
    astronaut, chelsea = photo('astronaut', 8), photo('chelsea', 4)
    coffee, rocket = photo('coffee', 5), photo('rocket', 5)
    grey = Image.fromarray(chelsea).convert('L')
    jpeg = encode(astronaut, 'JPEG', quality=90)
    thumbnail = encode(astronaut[::4, ::4], 'JPEG', quality=90)
    used = Expected('used')
    files = {
        GOOD + '/astronaut.jpg': (jpeg, used),
        GOOD + '/chelsea.jpg': (encode(chelsea, 'JPEG', quality=90), used),
        GOOD + '/coffee.png': (encode(coffee, 'PNG'), used),
        GOOD + '/grey photo.jpg': (encode(grey, 'JPEG', quality=90), used),
        GOOD + '/rgba.png': (encode(Image.fromarray(rocket).convert('RGBA'), 'PNG'), used),
        GOOD + '/cmyk.jpg': (encode(Image.fromarray(coffee).convert('CMYK'), 'JPEG', quality=95), used),
        GOOD + '/sixteen bit.png': (png_bytes(chelsea.astype(np.uint16) * 257), used),
        GOOD + '/animated.gif': (animated([astronaut, astronaut[::-1]], 'GIF'), used),
        GOOD + '/picture.bmp': (encode(rocket, 'BMP'), used),
        GOOD + '/one pixel.png': (encode(np.full((1, 1, 3), 200, np.uint8), 'PNG'), used),
        GOOD + '/long thin.png': (encode(np.tile(coffee[:3, :100], (1, 100, 1)), 'PNG'), used),
        GOOD + '/png named.jpg': (encode(rocket, 'PNG'), used),
        GOOD + '/still.webp': (encode(coffee, 'WEBP', quality=90), used),
        GOOD + '/no extension': (encode(coffee[::-1], 'JPEG', quality=90), used),
        GOOD + '/astronaut_copy.jpg': (jpeg, Expected('skipped', 'duplicate')),
        GOOD + '/padded.jpg': (jpeg + bytes(5000), used),
        GOOD + '/thumbnail.jpg': (with_thumbnail(jpeg, thumbnail), used),
        GOOD + '/.hidden.jpg': (jpeg, Expected('ignored', 'hidden')),
        GOOD + '/café ☕ 😀.jpg': (encode(coffee, 'JPEG', quality=90), used),
        ODD + '/rocket ünï 🚀.jpg': (encode(rocket, 'JPEG', quality=90), used),
        ODD + '/astronaut.png': (encode(astronaut, 'PNG'), used),
        BAD + '/survivor.jpg': (encode(chelsea[::-1], 'JPEG', quality=90), used),
        BAD + '/palette.bmp': (encode(Image.fromarray(rocket).convert('P'), 'BMP'),
                               Expected('used', '', True)),
        BAD + '/animated.webp': (animated([coffee, coffee[::-1]], 'WEBP', lossless=True),
                                 Expected('used', '', True)),
        BAD + '/empty.jpg': (b'', Expected('skipped', 'empty')),
        BAD + '/truncated.jpg': (jpeg[:len(jpeg) // 2], Expected('skipped', 'truncated')),
        BAD + '/truncated thumbnail.jpg': (with_thumbnail(jpeg, thumbnail)[:-300],
                                           Expected('skipped', 'truncated')),
        BAD + '/truncated.png': (encode(coffee, 'PNG')[:2000], Expected('skipped', 'truncated')),
        BAD + '/notes.jpg': (b'These are not the pixels you are looking for.\n' * 20,
                             Expected('skipped', 'not an image')),
        BAD + '/page.jpg': (b'<!DOCTYPE html><html><body>404 Not Found</body></html>\n',
                            Expected('skipped', 'not an image')),
        BAD + '/readme.txt': (b'class notes\n', Expected('skipped', 'not an image')),
        BAD + '/random.bin': (bytes(range(256)) * 4, Expected('skipped', 'not an image')),
        BAD + '/bomb.png': (png_header_only(40000, 40000), Expected('skipped', 'too many pixels')),
        BAD + '/bomb.jpg': (jpeg_header_only(40000, 40000), Expected('skipped', 'too many pixels')),
        BAD + '/zero width.png': (png_header_only(0, 10), Expected('skipped', 'zero-size')),
        BAD + '/scan.tiff': (encode(rocket, 'TIFF'), Expected('skipped', 'unsupported format')),
        EMPTY + '/.DS_Store': (b'\x00\x00\x00\x01Bud1', Expected('ignored', 'hidden')),
        EMPTY + '/Thumbs.db': (b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1' + bytes(64), Expected('ignored')),
        EMPTY + '/desktop.ini': (b'[.ShellClassInfo]\n', Expected('ignored')),
    }
    return files


def make_corpus(root):
    """Write the corpus below `root`; returns {relative path: Expected}."""
    expected = {}
    for relative, (data, outcome) in corpus_files().items():
        path = os.path.join(root, *relative.split('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(data)
        expected[relative] = outcome
    links = {
        BAD + '/loop.jpg': ('loop.jpg', Expected('skipped', 'unreadable')),
        BAD + '/dangling.jpg': ('nowhere.jpg', Expected('skipped', 'unreadable')),
        GOOD + '/loop dir': ('..', Expected('ignored', 'link to a folder')),
    }
    for relative, (target, outcome) in links.items():
        os.symlink(target, os.path.join(root, *relative.split('/')))
        expected[relative] = outcome
    if hasattr(os, 'mkfifo'):
        os.mkfifo(os.path.join(root, BAD, 'pipe.jpg'))
        expected[BAD + '/pipe.jpg'] = Expected('skipped', 'not a regular file')
    return expected


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python tests/corpus/make_corpus.py OUT_DIR')
    for name, case in sorted(make_corpus(sys.argv[1]).items()):
        print('%-8s %-20s %s%s' % (case.outcome, case.reason, name,
                                   '  (fallback decode)' if case.fallback else ''))
