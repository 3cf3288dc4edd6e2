"""Convert pretrained weights into files tfgraft reads.

modes:
  h5-to-npz  Keras VGG16 weights (.h5 in the keras.applications layout: block1_conv1
             ... block5_conv3, and fc1 fc2 predictions when it has the top) -> the
             vgg16 weight dict (conv1_1 ... fc8) as .npz, checked against VGG16
  npy-to-pb  an AlexNet or VGG16 .npy/.npz weight dict read at one layer -> a frozen
             GraphDef (float input 'input' [N, H, W, 3], output the layer) and its
             sidecar card, for --graph
  keras      a keras.applications network -> a frozen GraphDef and its sidecar card

The .h5 file must keep the layer names: a Keras weights file as published, or
model.save('model.h5'). Keras 3 .weights.h5 files number their layers instead.

examples:
  tfgraft convert h5-to-npz --h5 vgg16_weights_tf_dim_ordering_tf_kernels.h5 \\
      --output_weights vgg16.npz
  tfgraft convert npy-to-pb --backbone alexnet --weights bvlc_alexnet.npy --layer relu7 \\
      --output_graph alexnet_relu7.pb
  tfgraft convert keras --application MobileNetV2 --alpha 0.35 --input_size 128 \\
      --output_graph mobilenet_v2.pb
"""
from tfgraft.tools import flags

HELP = 'Keras .h5 -> .npz weights; .npy network -> frozen .pb; Keras application -> .pb'


def add_arguments(parser):
    modes = parser.add_subparsers(dest='mode', metavar='mode')
    modes.required = True
    h5_to_npz = modes.add_parser('h5-to-npz', help='Keras VGG16 .h5 weights -> vgg16 .npz')
    h5_to_npz.add_argument('--h5', required=True, help='Keras VGG16 weights (.h5)')
    h5_to_npz.add_argument('--output_weights', required=True, help='the .npz file to write')

    npy_to_pb = modes.add_parser('npy-to-pb', help='.npy/.npz network -> frozen GraphDef + card')
    npy_to_pb.add_argument('--backbone', required=True, choices=flags.NPY_NETWORKS)
    npy_to_pb.add_argument('--weights', required=True, help='.npy or .npz weight file')
    npy_to_pb.add_argument('--layer', help='output layer (default: relu7 for alexnet, '
                                           'relu6 for vgg16)')
    npy_to_pb.add_argument('--output_graph', required=True, help='the .pb file to write')

    keras = modes.add_parser('keras', help='keras.applications network -> frozen GraphDef + card')
    keras.add_argument('--application', required=True, help='e.g. MobileNetV2, ResNet50')
    keras.add_argument('--weights', help='Keras weights file (.h5); random weights without it')
    keras.add_argument('--alpha', type=float, default=1.0, help='width multiplier (MobileNets)')
    keras.add_argument('--input_size', type=int, help='input height = width')
    keras.add_argument('--output_graph', required=True, help='the .pb file to write')


def _h5_to_npz(args):
    from tfgraft.graphs.keras_h5 import vgg16_weights_from_h5
    from tfgraft.graphs.npy_weights import save_weights
    weights = vgg16_weights_from_h5(args.h5)
    save_weights(weights, args.output_weights)
    top = 'with fc6-fc8' if 'fc6' in weights else 'convolutional layers only'
    print('wrote %s: vgg16, %d layers, %s' % (args.output_weights, len(weights), top))


def _npy_to_pb(args):
    from tfgraft.graphs.frozen import card_file_for
    from tfgraft.graphs.npy_backbone import load_npy_backbone
    backbone = load_npy_backbone(args.backbone, args.weights, args.layer)
    card = backbone.write_frozen_graph(args.output_graph)
    print('wrote %s (%s -> %s, %d-d) and %s' % (args.output_graph, card.input_tensor,
                                               card.bottleneck_tensor, card.bottleneck_size,
                                               card_file_for(args.output_graph)))


def _keras(args):
    from tfgraft.graphs.frozen import card_file_for
    from tfgraft.graphs.keras_convert import convert_keras_application
    card = convert_keras_application(args.application, args.output_graph, weights=args.weights,
                                     alpha=args.alpha, input_size=args.input_size)
    print('wrote %s (%s -> %s, %d-d) and %s' % (args.output_graph, card.input_tensor,
                                               card.bottleneck_tensor, card.bottleneck_size,
                                               card_file_for(args.output_graph)))


def run(args):
    {'h5-to-npz': _h5_to_npz, 'npy-to-pb': _npy_to_pb, 'keras': _keras}[args.mode](args)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('convert'))
