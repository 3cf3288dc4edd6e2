"""AlexNet as in the Caffe reference model (bvlc_alexnet.npy).

Input 227x227, BGR, mean-subtracted (graphs/registry.py's card says how).
Padding as kratzert's finetune_alexnet_with_tensorflow: VALID for conv1 and
the pools, SAME elsewhere, so pool5 is 6x6x256. The weight dict maps conv1 ...
conv5, fc6, fc7, fc8 to [weights, biases]; the grouped layers (conv2, conv4,
conv5) hold half the input depth: conv2 [5, 5, 48, 256]. conv layers end in
their ReLU; fc6/fc7 are linear, relu6/relu7 their ReLUs.
"""
from tfgraft.graphs.layers import (
    Conv, Dropout, FullyConnected, LocalResponseNorm, MaxPool, ReLU, network_builder)

INPUT_SIZE = 227


def layer_table(num_classes=1000, width_divisor=1):
    """The network, layer by layer; width_divisor narrows it (stand-ins for tests)."""
    def width(depth):
        return depth // width_divisor

    def norm(name):
        return LocalResponseNorm(name, depth_radius=2, alpha=2e-5, beta=0.75, bias=1.0)

    return (
        Conv('conv1', 11, width(96), stride=4, padding='VALID'),
        norm('norm1'),
        MaxPool('pool1', 3, 2),
        Conv('conv2', 5, width(256), groups=2),
        norm('norm2'),
        MaxPool('pool2', 3, 2),
        Conv('conv3', 3, width(384)),
        Conv('conv4', 3, width(384), groups=2),
        Conv('conv5', 3, width(256), groups=2),
        MaxPool('pool5', 3, 2),
        FullyConnected('fc6', width(4096)), ReLU('relu6'), Dropout('drop6'),
        FullyConnected('fc7', width(4096)), ReLU('relu7'), Dropout('drop7'),
        FullyConnected('fc8', num_classes),
    )


# images [N, 227, 227, 3] -> (last layer's output, end_points by layer name); see
# graphs/layers.py network_builder for the arguments.
alexnet = network_builder('alexnet', layer_table)
