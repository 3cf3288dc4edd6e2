"""What a client outside tfgraft must feed an exported model, in the terms clients use.

Clients normalise a pixel p (0..255, after the resize) as (p - mean) / std:
TensorFlow's label_image (`--input_mean`, `--input_std`), TFLite metadata's
NormalizationOptions. A card's input_range (low, high) and channel_mean give,
per channel in the card's channel order, std = 255 / (high - low) and
mean = (channel_mean - low) * std.
"""


def normalisation(card):
    """{'mean': [3 floats], 'std': [3 floats]} in the card's channel order."""
    low, high = card.input_range
    std = 255.0 / (high - low)
    channel_mean = card.channel_mean or (0.0, 0.0, 0.0)
    return {'mean': [(m - low) * std for m in channel_mean], 'std': [std] * 3}


def label_image_command(card, graph, labels, image='IMAGE.jpg', output_layer='final_result'):
    """The TensorFlow for Poets label_image.py command line for an exported frozen graph,
    or None when its one scalar mean and RGB input cannot express the card."""
    norm = normalisation(card)
    if card.channel_order != 'RGB' or len(set(norm['mean'])) != 1 or card.resize != 'squash':
        return None
    height, width = card.input_size
    return ('python label_image.py --graph=%s --labels=%s --input_layer=input '
            '--output_layer=%s --input_height=%d --input_width=%d --input_mean=%g '
            '--input_std=%g --image=%s' % (graph, labels, output_layer, height, width,
                                           norm['mean'][0], norm['std'][0], image))
