"""A confusion matrix as a PNG, drawn with numpy and written by skimage.io.

Rows are true classes, columns predicted ones, in labels.txt order; a cell's
blue is its share of the row, and its count is written in a 3x5 pixel font.
"""
import numpy as np

# 3x5 glyphs of the digits, one string of 15 pixels each, row by row.
DIGITS = {
    '0': '111101101101111', '1': '010110010010111', '2': '111001111100111',
    '3': '111001111001111', '4': '101101111001001', '5': '111100111001111',
    '6': '111100111101111', '7': '111001010010010', '8': '111101111101111',
    '9': '111101111001111',
}
BLUE = np.array([33, 102, 172], np.float64)
WHITE = np.array([255, 255, 255], np.float64)
GRID = np.array([160, 160, 160], np.uint8)


def _glyph(digit, scale):
    bits = np.array([int(b) for b in DIGITS[digit]], bool).reshape(5, 3)
    return np.kron(bits, np.ones((scale, scale), bool))


def _write_number(image, number, top, left, size, colour):
    """Centre `number` in the size x size cell at (top, left), if it fits."""
    text = str(number)
    for scale in (3, 2, 1):
        width = len(text) * 4 * scale - scale
        if width <= size - 2 and 5 * scale <= size - 2:
            break
    else:
        return
    y = top + (size - 5 * scale) // 2
    x = left + (size - width) // 2
    for digit in text:
        mask = _glyph(digit, scale)
        image[y:y + mask.shape[0], x:x + mask.shape[1]][mask] = colour
        x += 4 * scale


def confusion_image(matrix, cell=32):
    """uint8 RGB image of the matrix."""
    matrix = np.asarray(matrix)
    count = matrix.shape[0]
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = count * cell + 1
    image = np.empty((side, side, 3), np.uint8)
    image[:] = GRID
    for row in range(count):
        for col in range(count):
            top, left = row * cell + 1, col * cell + 1
            colour = WHITE + (BLUE - WHITE) * shares[row, col]
            image[top:top + cell - 1, left:left + cell - 1] = colour.astype(np.uint8)
            ink = (255, 255, 255) if shares[row, col] > 0.5 else (0, 0, 0)
            _write_number(image, int(matrix[row, col]), top, left, cell - 1, ink)
    return image


def write_confusion_png(matrix, path, cell=32):
    import skimage.io
    skimage.io.imsave(path, confusion_image(matrix, cell), check_contrast=False)
