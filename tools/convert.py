"""Convert pretrained weights into files tfgraft reads.

modes:
  h5-to-npz  Keras VGG16 weights (.h5 in the keras.applications layout: block1_conv1
             ... block5_conv3, and fc1 fc2 predictions when it has the top) -> the
             vgg16 weight dict (conv1_1 ... fc8) as .npz, checked against VGG16
  npy-to-pb  an AlexNet or VGG16 .npy/.npz weight dict read at one layer -> a frozen
             GraphDef (float input 'input' [N, H, W, 3], output the layer) and its
             sidecar card, for --graph
  keras      a keras.applications network (--application), or a user's whole Keras model
             file (--model: a Keras 2 .h5 from model.save, Teachable Machine exports
             included, a Keras 3 .keras, or a SavedModel folder) cut at its pretrained
             backbone -> a frozen GraphDef and its sidecar card

The .h5 file must keep the layer names: a Keras weights file as published, or
model.save('model.h5'). Keras 3 .weights.h5 files number their layers instead.

examples:
  tfgraft convert h5-to-npz --h5 vgg16_weights_tf_dim_ordering_tf_kernels.h5 \\
      --output_weights vgg16.npz
  tfgraft convert npy-to-pb --backbone alexnet --weights bvlc_alexnet.npy --layer relu7 \\
      --output_graph alexnet_relu7.pb
  tfgraft convert keras --application MobileNetV2 --alpha 0.35 --input_size 128 \\
      --output_graph mobilenet_v2.pb
  tfgraft convert keras --model keras_model.h5 --output_graph teachable.pb
  tfgraft convert squeezenet --weights squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5 \\
      --output_graph squeezenet.pb

--model reads the file's config JSON and rebuilds it from built-in Keras layers only
(no Lambda, no custom classes: nothing from the file runs), then copies the weights
in by layer name. The backbone ends at the pooled output before the user's head
(the first Dense or Flatten), or at --layer NAME (average-pooled if 4-D). The card
lists the backbone's layers in Keras's order: `tfgraft finetune --fine_tune_at K`
then means Keras layer K, as in base_model.layers[K:]. A SavedModel folder runs
nothing either: its serving signature's ops are checked, its weights read by
variable name, its config taken from keras_metadata.pb (Keras 2), else its layers
must be a known application (MobileNetV2, InceptionV3, ResNet50, VGG16).
"""
from tfgraft.tools import flags

HELP = ('Keras .h5 -> .npz weights; .npy network -> frozen .pb; Keras application, Keras model '
        'file or SqueezeNet weights -> .pb')


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

    keras = modes.add_parser('keras', help='Keras application or model file -> frozen GraphDef + card')
    source = keras.add_mutually_exclusive_group(required=True)
    source.add_argument('--application', help='e.g. MobileNetV2, ResNet50')
    source.add_argument('--model', help="a whole Keras model: .h5 (Keras 2 model.save), .keras, or a "
                                     "SavedModel folder")
    keras.add_argument('--layer', help='--model: the backbone\'s last layer (default: the pooled '
                                       'output before the head)')
    keras.add_argument('--preprocessing', choices=('tf', 'caffe'),
                       help='--model: tf (RGB to [-1, 1]) or caffe (BGR minus the ImageNet means); '
                            'default: from the recognised application')
    keras.add_argument('--weights', help='Keras weights file (.h5); random weights without it')
    keras.add_argument('--alpha', type=float, default=1.0, help='width multiplier (MobileNets)')
    keras.add_argument('--input_size', type=int, help='input height = width')
    keras.add_argument('--output_graph', required=True, help='the .pb file to write')

    squeeze = modes.add_parser('squeezenet', help='SqueezeNet v1.1 Keras weights (.h5) -> frozen GraphDef + card')
    squeeze.add_argument('--weights', required=True,
                         help='keras-squeezenet weights (.h5, layers conv1, fire2/squeeze1x1 ...)')
    squeeze.add_argument('--input_size', type=int, default=227, help='input height = width (default 227)')
    squeeze.add_argument('--output_graph', required=True, help='the .pb file to write')


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
    from tfgraft.graphs.errors import GraftError
    from tfgraft.graphs.frozen import card_file_for
    from tfgraft.graphs.keras_convert import convert_keras_application
    if args.model:
        from tfgraft.graphs.keras_model import convert_keras_model
        if args.weights or args.alpha != 1.0:
            raise GraftError('--weights and --alpha are for --application; --model files hold their own')
        card, cut = convert_keras_model(args.model, args.output_graph, layer=args.layer,
                                        input_size=args.input_size, preprocessing=args.preprocessing)
        print('wrote %s (%s -> %s after layer %s, %d-d, %s %s) and %s'
              % (args.output_graph, card.input_tensor, card.bottleneck_tensor, cut,
                 card.bottleneck_size, card.channel_order, list(card.input_range),
                 card_file_for(args.output_graph)))
        return
    if args.layer or args.preprocessing:
        raise GraftError('--layer and --preprocessing are for --model')
    card = convert_keras_application(args.application, args.output_graph, weights=args.weights,
                                     alpha=args.alpha, input_size=args.input_size)
    print('wrote %s (%s -> %s, %d-d) and %s' % (args.output_graph, card.input_tensor,
                                               card.bottleneck_tensor, card.bottleneck_size,
                                               card_file_for(args.output_graph)))


def _squeezenet(args):
    from tfgraft.graphs.frozen import card_file_for
    from tfgraft.graphs.squeezenet import convert_squeezenet
    card = convert_squeezenet(args.weights, args.output_graph, input_size=args.input_size)
    print('wrote %s (%s -> %s, %d-d) and %s' % (args.output_graph, card.input_tensor,
                                               card.bottleneck_tensor, card.bottleneck_size,
                                               card_file_for(args.output_graph)))


def run(args):
    {'h5-to-npz': _h5_to_npz, 'npy-to-pb': _npy_to_pb, 'keras': _keras,
     'squeezenet': _squeezenet}[args.mode](args)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('convert'))
