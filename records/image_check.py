"""Look at an image file's header before anything decodes it.

`inspect_image` reads a few KB of a file (`hash_and_inspect` all of it):
its format from the magic bytes (never from the name: a PNG named .jpg is a
PNG, a text file named .jpg is not an image), the size its header declares,
and whether the file ends where its format says it must. Empty, truncated,
unknown and oversized files (decompression bombs) raise SkipImage with a
short reason; nothing is decoded.

Which files tf.io.decode_image(channels=3, dtype=uint8) decodes right, tried
on TF 2.21 (tests/test_image_check.py checks each against Pillow):
  JPEG   grey, YCbCr, Adobe CMYK, progressive
  PNG    grey, grey+alpha, RGB, RGBA, palette, 8 and 16 bits, interlaced
  GIF    first frame; BMP 24 and 32 bits; WebP still, lossy or lossless
Everything else it decodes wrongly or not at all: palette (1, 4, 8 bits),
16-bit, RLE and OS/2 BMPs, BMPs with bytes after the pixels, animated WebP.
For those ImageInfo.fallback says why, and `fallback_decode` reads them.
"""
import dataclasses
import hashlib
import io
import os
import stat
import struct

from tfgraft.records import storage

# Pillow's MAX_IMAGE_PIXELS: a 90 MP RGB image is 256 MB decoded.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
IGNORED_NAMES = ('thumbs.db', 'desktop.ini')

HEAD_BYTES = 1024
WHOLE_FILE_BYTES = 32 << 20
TAIL_BYTES = 1024
SCAN_CHUNK = 1 << 16
MAX_JPEG_MARKERS = 256

JPEG_SOF_CODES = {0xC0: 'baseline', 0xC1: 'extended', 0xC2: 'progressive',
                  0xC9: 'arithmetic', 0xCA: 'progressive arithmetic'}
JPEG_UNSUPPORTED_SOF_CODES = (0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF)
JPEG_COLORS = {1: 'grey', 3: 'rgb', 4: 'cmyk'}
PNG_COLORS = {0: 'grey', 2: 'rgb', 3: 'palette', 4: 'grey+alpha', 6: 'rgba'}
PNG_END = b'IEND\xaeB`\x82'
JPEG_END = b'\xff\xd9'

UNSUPPORTED_MAGIC = (
    (b'II*\x00', 'TIFF'), (b'MM\x00*', 'TIFF'),
    (b'\xff\x0a', 'JPEG XL'), (b'\x00\x00\x00\x0cJXL ', 'JPEG XL'),
    (b'\x00\x00\x00\x0cjP  ', 'JPEG 2000'), (b'\xff\x4f\xff\x51', 'JPEG 2000'),
    (b'8BPS', 'Photoshop'), (b'\x00\x00\x01\x00', 'Windows icon'),
)
NON_IMAGE_MAGIC = ((b'%PDF', 'PDF'), (b'PK\x03\x04', 'zip archive'))
HEIF_BRANDS = {b'heic': 'HEIC', b'heix': 'HEIC', b'hevc': 'HEIC', b'mif1': 'HEIF',
               b'msf1': 'HEIF', b'avif': 'AVIF', b'avis': 'AVIF'}


class SkipImage(Exception):
    """A file left out of the records; str(error) is the short reason."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    format: str        # 'jpeg', 'png', 'gif', 'bmp' or 'webp'
    width: int
    height: int
    color: str         # 'grey', 'grey+alpha', 'rgb', 'rgba', 'palette' or 'cmyk'
    bit_depth: int     # bits per sample (per pixel for BMP)
    animated: bool = False
    fallback: str = ''  # why tf.io.decode_image gets it wrong; '' when it gets it right

    @property
    def needs_fallback(self):
        return bool(self.fallback)


def is_candidate_file(name):
    """False for hidden files and OS litter; every other file is inspected.

    The extension is not trusted either way: a photo without one is used, a
    README.txt in a class folder is reported as skipped ('not an image').
    """
    return not name.startswith('.') and name.lower() not in IGNORED_NAMES


def too_many_pixels(width, height, max_pixels):
    return width * height > max_pixels


# O_NONBLOCK: opening a named pipe must not wait for a writer (fstat then turns it away);
# it changes nothing for a regular file.
OPEN_FLAGS = os.O_RDONLY | getattr(os, 'O_BINARY', 0) | getattr(os, 'O_NONBLOCK', 0)


def inspect_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """ImageInfo from the file's header; raises SkipImage if it cannot be used."""
    return _examine(path, max_pixels, hashing=False)[2]


def hash_and_inspect(path, max_pixels=DEFAULT_MAX_PIXELS):
    """(os.stat_result, hex sha256, ImageInfo) of a file, in one pass; raises SkipImage
    as inspect_image does.

    The stat is taken on the open file before it is read, so a later change shows in
    its size or mtime. A file of up to WHOLE_FILE_BYTES is read once, into memory, and
    inspected there; a bigger one is inspected, then streamed through the hash.
    """
    return _examine(path, max_pixels, hashing=True)


def _examine(path, max_pixels, hashing):
    try:
        if storage.is_url(path):    # tf.io.gfile (records/storage.py): stat, then read
            status = storage.stat(path)
            return _examine_file(status, status.is_file, lambda: storage.read_bytes(path),
                                 lambda: storage.open_read(path), max_pixels, hashing)
        fd = os.open(path, OPEN_FLAGS)
        try:
            status = os.fstat(fd)
            return _examine_file(status, stat.S_ISREG(status.st_mode),
                                 lambda: _read_whole(fd, status.st_size),
                                 lambda: os.fdopen(fd, 'rb', closefd=False), max_pixels, hashing)
        finally:
            os.close(fd)
    except OSError as error:
        raise SkipImage('unreadable: %s' % (error.strerror or str(error)).lower()) from None


def _examine_file(status, regular, read_whole, open_file, max_pixels, hashing):
    """_examine's checks and reading of one file, given its status and how to read it."""
    if not regular:
        raise SkipImage('not a regular file')
    if status.st_size == 0:
        raise SkipImage('empty file')
    if hashing and status.st_size <= WHOLE_FILE_BYTES:
        contents = read_whole()
        info = _inspect(io.BytesIO(contents), len(contents), max_pixels)
        return status, hashlib.sha256(contents).hexdigest(), info
    with open_file() as handle:
        info = _inspect(handle, status.st_size, max_pixels)
        if not hashing:
            return status, None, info
        digest = hashlib.sha256()
        handle.seek(0)
        for chunk in iter(lambda: handle.read(SCAN_CHUNK), b''):
            digest.update(chunk)
        return status, digest.hexdigest(), info


def _read_whole(fd, size):
    """The bytes of an open file that fstat says holds `size`, with bare os calls (cheaper
    than open().read(), which counts when thousands are hashed before extraction). One
    read when the size still holds; a file that grew or shrank meanwhile is read to its end."""
    parts, total = [], 0
    while total != size:
        part = os.read(fd, size + 1)
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b''.join(parts)


def _inspect(handle, size, max_pixels):
    head = handle.read(HEAD_BYTES)
    info, body_start, end_marker = _read_header(head, handle, size)
    if info.width <= 0 or info.height <= 0:
        raise SkipImage('zero-size image: header says %dx%d' % (info.width, info.height))
    if too_many_pixels(info.width, info.height, max_pixels):
        raise SkipImage('too many pixels: %dx%d > max_pixels %d'
                        % (info.width, info.height, max_pixels))
    if end_marker and not _has_end_marker(handle, size, end_marker, body_start):
        raise SkipImage('truncated %s (no end marker)' % info.format.upper())
    return info


def _read_header(head, handle, size):
    """(ImageInfo, where the image data starts, end marker to look for or None)."""
    if head.startswith(b'\xff\xd8\xff'):
        return _jpeg(handle)
    if head.startswith(b'\x89PNG\r\n\x1a\n'):
        return _png(head), 33, PNG_END
    if head[:6] in (b'GIF87a', b'GIF89a'):
        return _gif(head), 13, None
    if head.startswith(b'BM'):
        return _bmp(head, size), 14, None
    if head.startswith(b'RIFF') and head[8:12] == b'WEBP':
        return _webp(head, size), 12, None
    for magic, name in UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            raise SkipImage('unsupported format (%s)' % name)
    if head[4:8] == b'ftyp' and head[8:12] in HEIF_BRANDS:
        raise SkipImage('unsupported format (%s)' % HEIF_BRANDS[head[8:12]])
    for magic, name in NON_IMAGE_MAGIC:
        if head.startswith(magic):
            raise SkipImage('not an image (%s)' % name)
    if _looks_like_text(head):
        raise SkipImage('not an image (text)')
    raise SkipImage('not an image (unknown format)')


def _looks_like_text(head):
    if b'\x00' in head:
        return False
    binary = head.translate(None, bytes(range(32, 256)) + b'\t\n\r\f\b\x1b')
    return len(binary) <= len(head) // 20


def _jpeg(handle):
    """Walk the markers from SOI to the frame header (SOF), seeking past each segment."""
    position = 2
    for _ in range(MAX_JPEG_MARKERS):
        handle.seek(position)
        marker = handle.read(4)
        if len(marker) < 4:
            raise SkipImage('truncated JPEG (no frame header)')
        if marker[0] != 0xFF:
            raise SkipImage('corrupt JPEG (no marker at byte %d)' % position)
        code = marker[1]
        if code == 0xFF or code == 0x01 or 0xD0 <= code <= 0xD7:   # fill byte, standalone
            position += 1 if code == 0xFF else 2
            continue
        if code in (0xD9, 0xDA):
            raise SkipImage('corrupt JPEG (no frame header before the image data)')
        length = struct.unpack('>H', marker[2:4])[0]
        if code in JPEG_UNSUPPORTED_SOF_CODES:
            raise SkipImage('unsupported format (lossless or hierarchical JPEG)')
        if code in JPEG_SOF_CODES:
            frame = handle.read(6)
            if len(frame) < 6:
                raise SkipImage('truncated JPEG (no frame header)')
            precision, height, width, components = struct.unpack('>BHHB', frame)
            if precision != 8:
                raise SkipImage('unsupported format (%d-bit JPEG)' % precision)
            if components not in JPEG_COLORS:
                raise SkipImage('corrupt JPEG (%d colour components)' % components)
            info = ImageInfo('jpeg', width, height, JPEG_COLORS[components], 8)
            return info, position + 2 + length, JPEG_END
        if length < 2:
            raise SkipImage('corrupt JPEG (segment length %d at byte %d)' % (length, position))
        position += 2 + length
    raise SkipImage('corrupt JPEG (no frame header in %d markers)' % MAX_JPEG_MARKERS)


def _png(head):
    if head[12:16] != b'IHDR' or len(head) < 29:
        raise SkipImage('corrupt PNG (no IHDR header)')
    width, height, depth, color_type = struct.unpack('>IIBB', head[16:26])
    if color_type not in PNG_COLORS:
        raise SkipImage('corrupt PNG (colour type %d)' % color_type)
    return ImageInfo('png', width, height, PNG_COLORS[color_type], depth, b'acTL' in head)


def _gif(head):
    # No end check: decoders accept a GIF without its trailer byte; TF fails on a cut one.
    if len(head) < 10:
        raise SkipImage('truncated GIF (no screen descriptor)')
    width, height = struct.unpack('<HH', head[6:10])
    return ImageInfo('gif', width, height, 'palette', 8, b'NETSCAPE2.0' in head)


def _bmp(head, size):
    if len(head) < 26:
        raise SkipImage('truncated BMP (no header)')
    pixels_at, header_size = struct.unpack('<II', head[10:18])
    if header_size == 12:   # OS/2 BITMAPCOREHEADER
        width, height, _, bits = struct.unpack('<HHHH', head[18:26])
        compression, fallback = 0, 'OS/2 BMP header'
    elif header_size >= 40 and len(head) >= 34:
        width, height, _, bits, compression = struct.unpack('<iiHHI', head[18:34])
        fallback = ''
    else:
        raise SkipImage('corrupt BMP (header size %d)' % header_size)
    height = abs(height)    # negative: rows stored top-down, which TF reads right
    if compression not in (0, 1, 2, 3):
        raise SkipImage('unsupported format (BMP with embedded JPEG or PNG)')
    if compression in (1, 2):
        fallback = fallback or 'RLE-compressed BMP'
    elif bits not in (1, 4, 8, 16, 24, 32):
        raise SkipImage('corrupt BMP (%d bits per pixel)' % bits)
    else:
        expected = pixels_at + (bits * width + 31) // 32 * 4 * height
        if width > 0 and size < expected:
            raise SkipImage('truncated BMP (%d of %d bytes)' % (size, expected))
        if bits <= 8:
            fallback = fallback or '%d-bit palette BMP' % bits
        elif bits == 16:
            fallback = fallback or '16-bit BMP'
        elif size > expected:
            fallback = fallback or 'BMP with bytes after the pixels'
    color = 'palette' if bits <= 8 else 'rgb'
    return ImageInfo('bmp', width, height, color, bits, fallback=fallback)


def _webp(head, size):
    if len(head) < 30:
        raise SkipImage('truncated WEBP (no header)')
    riff_size = struct.unpack('<I', head[4:8])[0]
    if size < 8 + riff_size:
        raise SkipImage('truncated WEBP (%d of %d bytes)' % (size, 8 + riff_size))
    chunk = head[12:16]
    if chunk == b'VP8 ' and head[23:26] == b'\x9d\x01\x2a':
        width, height = struct.unpack('<HH', head[26:30])
        return ImageInfo('webp', width & 0x3FFF, height & 0x3FFF, 'rgb', 8)
    if chunk == b'VP8L' and head[20:21] == b'\x2f':
        bits = struct.unpack('<I', head[21:25])[0]
        color = 'rgba' if bits >> 28 & 1 else 'rgb'
        return ImageInfo('webp', (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, color, 8)
    if chunk == b'VP8X' and len(head) >= 30:
        flags = head[20]
        width = int.from_bytes(head[24:27], 'little') + 1
        height = int.from_bytes(head[27:30], 'little') + 1
        animated = bool(flags & 0x02)
        return ImageInfo('webp', width, height, 'rgba' if flags & 0x10 else 'rgb', 8, animated,
                         'animated WebP' if animated else '')
    raise SkipImage('corrupt WEBP (unknown %r chunk)' % chunk.decode('latin-1'))


def _has_end_marker(handle, size, marker, body_start):
    """Whether `marker` occurs after body_start: the file's tail first, then backwards.

    Bytes after the end marker (padding, camera trailers) are allowed; only a
    file cut short, or one with a long trailer, costs more than one read.
    """
    end = size
    while end > body_start:
        start = max(body_start, end - (TAIL_BYTES if end == size else SCAN_CHUNK))
        handle.seek(start)
        if marker in handle.read(end + len(marker) - 1 - start):
            return True
        end = start
    return False


def fallback_decode(path):
    """uint8 RGB [H, W, 3] of a file whose ImageInfo.fallback is set (first frame).

    Reads with scikit-image (imageio): slower than TensorFlow, right for the
    BMP and WebP kinds TF gets wrong. Alpha is dropped, as TF drops it.
    """
    import numpy as np
    import skimage.io
    try:     # a URL's bytes are read through tf.io.gfile; imageio reads them from memory
        source = storage.read_seekable(path) if storage.is_url(path) else path
        image = np.asarray(skimage.io.imread(source))
    except Exception as error:  # imageio raises many types for a bad file
        raise SkipImage('cannot decode: %s' % str(error).split('\n')[0]) from None
    if image.ndim == 4:
        image = image[0]
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SkipImage('cannot decode: %s pixels' % image.dtype)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] < 3:                 # grey or grey+alpha
        image = np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])
