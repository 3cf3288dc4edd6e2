"""Graph cards: what tfgraft needs to know to use a pretrained network.

A card names the tensors to feed and to read, and the preprocessing that turns
a decoded RGB image (uint8, any size) into what the network expects. Known
frozen graphs are matched to their card by tensor names; .npy-built networks
have a card per network; any other graph gets a card from command-line flags.
"""
import dataclasses
import json

from tfgraft.graphs.errors import GraftError

INPUT_KINDS = ('jpeg', 'image')
RESIZE_MODES = ('squash', 'center_crop')


@dataclasses.dataclass(frozen=True)
class GraphCard:
    name: str
    # Tensor the network's own input is fed to. For input_kind 'jpeg' it takes
    # one JPEG file's bytes (batch 1, as the Inception-v3 tutorial feeds it).
    input_tensor: str
    input_kind: str
    input_size: tuple          # (height, width)
    input_range: tuple         # (value of pixel 0, value of pixel 255)
    bottleneck_tensor: str
    bottleneck_size: int
    channel_order: str = 'RGB'
    channel_mean: tuple = ()   # subtracted after scaling, in channel_order
    resize: str = 'squash'     # 'squash' to input_size, or 'center_crop' first
    # Where a batch of preprocessed float images can be fed and a batch of
    # bottlenecks read. Empty when input_tensor / bottleneck_tensor already
    # take batches.
    image_tensor: str = ''
    image_bottleneck_tensor: str = ''
    # For .npy-built networks: the network's name in graphs/networks.py's table.
    network: str = ''
    # For converted Keras models: the backbone's layer names in Keras's own order
    # (index = Keras layer index), so fine_tune_at can count as Keras does.
    keras_layers: tuple = ()

    def __post_init__(self):
        if self.input_kind not in INPUT_KINDS:
            raise GraftError('graph card %s: input kind %r is not one of %s'
                             % (self.name, self.input_kind, ', '.join(INPUT_KINDS)))
        if self.resize not in RESIZE_MODES:
            raise GraftError('graph card %s: resize %r is not one of %s'
                             % (self.name, self.resize, ', '.join(RESIZE_MODES)))
        if self.channel_order not in ('RGB', 'BGR'):
            raise GraftError('graph card %s: channel order must be RGB or BGR' % self.name)
        object.__setattr__(self, 'input_size', tuple(int(v) for v in self.input_size))
        object.__setattr__(self, 'input_range', tuple(float(v) for v in self.input_range))
        object.__setattr__(self, 'channel_mean', tuple(float(v) for v in self.channel_mean))
        object.__setattr__(self, 'keras_layers', tuple(str(v) for v in self.keras_layers))

    @property
    def batch_input_tensor(self):
        """The tensor a float image batch [N, H, W, 3] is fed to."""
        return self.image_tensor or self.input_tensor

    @property
    def batch_bottleneck_tensor(self):
        return self.image_bottleneck_tensor or self.bottleneck_tensor

    def preprocessing_key(self):
        """A string that changes whenever the pixels fed to the network would."""
        return json.dumps({
            'size': list(self.input_size), 'range': list(self.input_range),
            'order': self.channel_order, 'mean': list(self.channel_mean),
            'resize': self.resize, 'version': 1}, sort_keys=True)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise GraftError('graph card has unknown fields: %s' % ', '.join(sorted(unknown)))
        return cls(**data)


INCEPTION_V3 = GraphCard(
    name='inception_v3',
    input_tensor='DecodeJpeg/contents:0',
    input_kind='jpeg',
    input_size=(299, 299),
    input_range=(-1.0, 127.0 / 128.0),     # (x - 128) / 128, as the graph's Sub and Mul do
    bottleneck_tensor='pool_3/_reshape:0',
    bottleneck_size=2048,
    image_tensor='Mul:0',
    image_bottleneck_tensor='pool_3:0',
)

MOBILENET_V1_DEPTHS = ('1.0', '0.75', '0.50', '0.25')
MOBILENET_V1_SIZES = (224, 192, 160, 128)


def mobilenet_v1_card(depth='0.25', size=128):
    depth_value = float(depth)
    bottleneck_size = int(round(1024 * depth_value))
    return GraphCard(
        name='mobilenet_v1_%s_%d' % (depth, size),
        input_tensor='input:0',
        input_kind='image',
        input_size=(size, size),
        input_range=(-1.0, 1.0),           # x / 127.5 - 1
        bottleneck_tensor='MobilenetV1/Logits/AvgPool_1a/AvgPool:0',
        bottleneck_size=bottleneck_size,
    )


def _known_cards():
    cards = {INCEPTION_V3.name: INCEPTION_V3}
    for depth in MOBILENET_V1_DEPTHS:
        for size in MOBILENET_V1_SIZES:
            card = mobilenet_v1_card(depth, size)
            cards[card.name] = card
    return cards


KNOWN_CARDS = _known_cards()


def register(card):
    """Add a card to the known ones (the .npy networks' cards below are added so)."""
    KNOWN_CARDS[card.name] = card
    return card


def get_card(name):
    if name not in KNOWN_CARDS:
        raise GraftError('unknown backbone %r; known: %s' % (name, ', '.join(sorted(KNOWN_CARDS))))
    return KNOWN_CARDS[name]


# The cards of the .npy-built networks (graphs/networks.py's table names them). The
# bottleneck is the default layer; graphs/npy_backbone.py sets the one asked for.
ALEXNET = register(GraphCard(
    name='alexnet', input_tensor='input:0', input_kind='image', input_size=(227, 227),
    input_range=(0.0, 255.0), bottleneck_tensor='relu7', bottleneck_size=4096,
    channel_order='BGR', channel_mean=(103.939, 116.779, 123.68), resize='squash',
    network='alexnet'))

VGG16 = register(GraphCard(
    name='vgg16', input_tensor='input:0', input_kind='image', input_size=(224, 224),
    input_range=(0.0, 255.0), bottleneck_tensor='relu6', bottleneck_size=4096,
    channel_order='BGR', channel_mean=(103.939, 116.779, 123.68), resize='center_crop',
    network='vgg16'))
