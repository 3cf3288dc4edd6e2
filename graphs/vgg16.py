"""VGG16 as in tensorflow-vgg (machrisaa), from vgg16.npy.

Input 224x224, pixel values 0..255, BGR minus the VGG means
[103.939, 116.779, 123.68]; graphs/registry.py's card says so and
graphs/preprocessing.py does it (centre crop to a square, resize to 224, as
the VGG transfer-learning tutorial loaded its images). The weight dict maps
conv1_1 ... conv5_3, fc6, fc7, fc8 to [weights, biases]; fc6 weights are
[25088, 4096] (pool5 7x7x512 flattened). conv layers end in their ReLU;
fc6/fc7 are linear and relu6 (the tutorial's 4096-d codes), relu7 their ReLUs.
"""
from tfgraft.graphs.layers import Conv, Dropout, FullyConnected, MaxPool, ReLU, network_builder

INPUT_SIZE = 224

# Keras applications VGG16 layer names -> ours (graphs/keras_h5.py, for `tfgraft convert h5-to-npz`).
KERAS_LAYER_NAMES = {
    'block1_conv1': 'conv1_1', 'block1_conv2': 'conv1_2',
    'block2_conv1': 'conv2_1', 'block2_conv2': 'conv2_2',
    'block3_conv1': 'conv3_1', 'block3_conv2': 'conv3_2', 'block3_conv3': 'conv3_3',
    'block4_conv1': 'conv4_1', 'block4_conv2': 'conv4_2', 'block4_conv3': 'conv4_3',
    'block5_conv1': 'conv5_1', 'block5_conv2': 'conv5_2', 'block5_conv3': 'conv5_3',
    'fc1': 'fc6', 'fc2': 'fc7', 'predictions': 'fc8',
}


def layer_table(num_classes=1000, width_divisor=1):
    """The network, layer by layer; width_divisor narrows it (stand-ins for tests)."""
    def conv(name, depth):
        return Conv(name, 3, depth // width_divisor)

    def pool(name):
        return MaxPool(name, 2, 2, padding='SAME')

    return (
        conv('conv1_1', 64), conv('conv1_2', 64), pool('pool1'),
        conv('conv2_1', 128), conv('conv2_2', 128), pool('pool2'),
        conv('conv3_1', 256), conv('conv3_2', 256), conv('conv3_3', 256), pool('pool3'),
        conv('conv4_1', 512), conv('conv4_2', 512), conv('conv4_3', 512), pool('pool4'),
        conv('conv5_1', 512), conv('conv5_2', 512), conv('conv5_3', 512), pool('pool5'),
        FullyConnected('fc6', 4096 // width_divisor), ReLU('relu6'), Dropout('drop6'),
        FullyConnected('fc7', 4096 // width_divisor), ReLU('relu7'), Dropout('drop7'),
        FullyConnected('fc8', num_classes),
    )


# images [N, 224, 224, 3] -> (last layer's output, end_points by layer name); see
# graphs/layers.py network_builder for the arguments.
vgg16 = network_builder('vgg16', layer_table)
