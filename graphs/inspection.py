"""What tfgraft sees in a backbone: its card and how it was found, the input and
bottleneck tensors with their measured shapes, the op histogram, the graph's
sha256 and the numbered layers that `--fine_tune_at` counts.

Nothing here runs the graph beyond what loading does (shape inference, or one
batch of zero images where shapes are not static).
"""
import collections


def describe_frozen(backbone, graph_def):
    """A dict describing a FrozenGraphBackbone (graphs/frozen.py); graph_def: the
    whole graph its file holds (the backbone keeps only the part it runs)."""
    from tfgraft.graphs.shapes import static_shape
    from tfgraft.graphs.unfreeze import keras_numbered, list_layers
    card = backbone.card
    declared = static_shape(graph_def, card.batch_input_tensor)
    measured = backbone.measured
    return {
        'path': backbone.path,
        'sha256': backbone.sha256,
        'nodes': len(graph_def.node),
        'ops': dict(collections.Counter(node.op for node in graph_def.node)
                    .most_common()),
        'card': card.to_dict(),
        'card_found': backbone.card_source,
        'input': {
            'tensor': card.input_tensor, 'kind': card.input_kind,
            'batch_tensor': card.batch_input_tensor, 'declared_shape': declared,
            'fed_shape': [None] + list(card.input_size) + [3],
            'preprocessing': _preprocessing_text(card),
        },
        'bottleneck': {
            'tensor': card.batch_bottleneck_tensor,
            'shape': [None] + list(measured.bottleneck_shape) if measured else None,
            'width': card.bottleneck_size,
        },
        # Numbered as --fine_tune_at counts: Keras's own index for converted Keras models.
        'layers': [{'index': number, 'name': layer.name, 'op': layer.op,
                    'trainable': len(layer.trainable), 'fixed': len(layer.fixed)}
                   for number, layer in keras_numbered(list_layers(backbone.graph_def, card), card)],
    }


def describe_npy(backbone):
    """A dict describing an .npy-built network (graphs/npy_backbone.py)."""
    card = backbone.card
    return {
        'path': backbone.path, 'sha256': backbone.sha256, 'card': card.to_dict(),
        'card_found': 'the %s network, layer %s' % (card.network, backbone.layer),
        'input': {'tensor': card.input_tensor, 'kind': card.input_kind,
                  'batch_tensor': card.batch_input_tensor, 'declared_shape': None,
                  'fed_shape': [None] + list(card.input_size) + [3],
                  'preprocessing': _preprocessing_text(card)},
        'bottleneck': {'tensor': backbone.layer, 'shape': None, 'width': card.bottleneck_size},
        'layers': [{'index': i, 'name': name, 'op': '', 'trainable': 2, 'fixed': 0}
                   for i, name in enumerate(backbone.weights)],
    }


def _preprocessing_text(card):
    low, high = card.input_range
    text = '%s, %s to %dx%d, pixels 0..255 to %g..%g' % (
        card.channel_order, 'centre crop then resize' if card.resize == 'center_crop' else 'resize',
        card.input_size[0], card.input_size[1], low, high)
    if card.channel_mean:
        text += ', minus channel means %s' % ', '.join('%g' % m for m in card.channel_mean)
    return text


def format_description(info):
    """The description as the lines `tfgraft inspect` prints."""
    lines = ['file:        %s' % info['path'],
             'sha256:      %s%s' % (info['sha256'], info.get('sha256_of', ''))]
    if 'nodes' in info:
        ops = ', '.join('%s %d' % item for item in info['ops'].items())
        lines.append('nodes:       %d (%s)' % (info['nodes'], ops))
    card, put = info['card'], info['input']
    lines.append('card:        %s (%s)' % (card['name'], info['card_found']))
    declared = '' if put['declared_shape'] is None else ', declares %s' % _dims(put['declared_shape'])
    lines.append('input:       %s%s; fed %s at %s' % (put['tensor'], declared, _dims(put['fed_shape']),
                                                     put['batch_tensor']))
    lines.append('preprocess:  %s' % put['preprocessing'])
    neck = info['bottleneck']
    shape = '' if neck['shape'] is None else ' %s ->' % _dims(neck['shape'])
    lines.append('bottleneck:  %s%s %d-d vectors' % (neck['tensor'], shape, neck['width']))
    lines.append('layers (--fine_tune_at K trains layer K and above): %d' % len(info['layers']))
    for layer in info['layers']:
        lines.append('  %3d  %-48s %s' % (layer['index'], layer['name'], layer['op']))
    for key in ('records', 'model'):
        if key in info:
            lines.append('%-12s %s' % (key + ':', info[key]))
    return lines


def _dims(dims):
    return '[%s]' % ', '.join('N' if d is None else str(d) for d in dims)
