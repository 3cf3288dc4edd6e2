"""Fine-tune deeper layers of a backbone on images, continuing a model_dir.

Frozen graphs (--graph), the MobileNetV2 / Keras InceptionV3 tutorials' two stages:
  stage 1  the head, trained by `tfgraft train` on cached bottlenecks in --model_dir
           (if it holds no checkpoint, stage 1 runs here first on --bottleneck_dir);
  stage 2  layers from --fine_tune_at K (or --fine_tune_from NAME) on are unfrozen
           and trained with the head on images, with a new optimizer (default
           rmsprop) at a lower rate (default 3e-5), continuing the same
           global step, checkpoints and TensorBoard curves. Batch norm stays in
           inference mode.
.npy networks (--backbone alexnet|vgg16 --weights W), kratzert's finetune_alexnet:
  fc8 is re-initialised for the new classes, --train_layers are trained, the
  other layers stay as in W; a checkpoint and validation accuracy every epoch.

Augmentation flags change the images in the tf.data pipeline; bottlenecks are
never cached here. learning_curves.png in the model_dir shows loss and accuracy
over both stages. `tfgraft predict` and `tfgraft export` read the fine-tuned model.

Stage 1 here is `tfgraft train` on --bottleneck_dir; its flags are train's with a
stage1_ prefix (--stage1_how_many_training_steps, --stage1_head ...).
The numbered layers for --fine_tune_at: `tfgraft inspect` (--list_layers, the old
way, still prints them).

examples:
  tfgraft finetune --image_dir cats_and_dogs_filtered --model_dir /tmp/model \\
      --graph mobilenet.pb --fine_tune_at 20 --epochs 2 --flip_left_right --rotation 0.1
  tfgraft finetune --image_dir photos --model_dir /tmp/alex --backbone alexnet \\
      --weights bvlc_alexnet.npy --train_layers fc7,fc8 --epochs 10
"""
from tfgraft.tools import flags

HELP = 'fine-tune deeper backbone layers with the head on images (second stage)'


def add_arguments(parser):
    parser.add_argument('--image_dir', help='one subfolder of images per class (or train/ validation/)')
    parser.add_argument('--model_dir', help='the model_dir to continue (or create)')
    parser.add_argument('--graph', help='frozen graph .pb')
    parser.add_argument('--backbone', help='%s (with --weights)' % ' or '.join(flags.NPY_NETWORKS))
    parser.add_argument('--weights', help='.npy or .npz weight file of --backbone')
    parser.add_argument('--fine_tune_at', type=int,
                        help='first layer number to train (frozen graphs; for graphs from '
                             '`tfgraft convert keras --model`, Keras\'s own layer index)')
    parser.add_argument('--fine_tune_from', help='first layer to train, by name prefix (frozen graphs)')
    parser.add_argument('--train_layers', type=flags.comma_list, default=['fc8'],
                        help='.npy networks: layers to train, like fc7,fc8 (default fc8)')
    parser.add_argument('--list_layers', action='store_true',
                        help='deprecated: print the numbered layers of --graph and exit '
                             '(`tfgraft inspect` does this)')
    parser.add_argument('--bottleneck_dir', help='records for stage 1 when --model_dir has no checkpoint')
    parser.add_argument('--epochs', type=int, default=1, help='passes over the training images (default 1)')
    parser.add_argument('--learning_rate', type=float,
                        help='default: 3e-5 (frozen, as the MobileNetV2 tutorial), 0.01 (.npy)')
    parser.add_argument('--optimizer', choices=flags.OPTIMIZERS,
                        help='default: rmsprop (frozen), sgd (.npy)')
    parser.add_argument('--train_batch_size', '--batch_size', dest='train_batch_size', type=int,
                        default=32, help='images per step (default 32)' + flags.alias_note('--batch_size'))
    flags.add_validation_percentage(parser)
    parser.add_argument('--seed', type=int, default=0,
                        help='shuffle and initialisation seed of both stages (default 0)')
    augment = parser.add_argument_group('augmentation (images are streamed, not cached)')
    augment.add_argument('--flip_left_right', action='store_true', help='mirror half the images')
    augment.add_argument('--rotation', type=float, default=0.0,
                         help='turn by up to this fraction of 2*pi either way (0.1: 36 degrees)')
    augment.add_argument('--random_crop', type=float, default=0.0, help='crop margin, percent')
    augment.add_argument('--random_scale', type=float, default=0.0, help='zoom in by up to, percent')
    augment.add_argument('--random_brightness', type=float, default=0.0, help='brightness +-, percent')
    flags.add_training_arguments(parser, prefix='stage1_',
                                 title='stage 1 (frozen graphs, when --model_dir has no head yet)')


def run(args):
    from tfgraft.engine.augment import Augmentation
    from tfgraft.graphs.errors import GraftError
    if args.list_layers:
        return print_layers(args)
    if not args.image_dir or not args.model_dir:
        raise GraftError('finetune needs --image_dir and --model_dir')
    if args.epochs < 1 or args.train_batch_size < 1:
        raise GraftError('--epochs and --train_batch_size must be at least 1')
    from tfgraft.engine.finetune import finetune
    augmentation = Augmentation(args.flip_left_right, args.rotation, args.random_crop,
                                args.random_scale, args.random_brightness)
    finetune(args.image_dir, args.model_dir, graph=args.graph, network=args.backbone,
             weights=args.weights, fine_tune_at=args.fine_tune_at,
             fine_tune_from=args.fine_tune_from, train_layers=args.train_layers,
             bottleneck_dir=args.bottleneck_dir, epochs=args.epochs,
             learning_rate=args.learning_rate, optimizer=args.optimizer,
             train_batch_size=args.train_batch_size,
             validation_percentage=args.validation_percentage, seed=args.seed,
             augmentation=augmentation,
             stage_one=flags.training_settings(args, prefix='stage1_', seed=args.seed),
             progress=True)
    return 0


def print_layers(args):
    """The deprecated --list_layers: the layers `tfgraft inspect` lists, numbered."""
    import sys
    from tfgraft.graphs.errors import GraftError
    from tfgraft.graphs.factory import load_backbone
    from tfgraft.graphs.unfreeze import keras_numbered, list_layers
    if not args.graph:
        raise GraftError('--list_layers needs --graph (the .npy networks\' layers are conv1 ... fc8)')
    print('tfgraft: note: --list_layers is deprecated; `tfgraft inspect` lists the layers',
          file=sys.stderr)
    backbone = load_backbone(graph=args.graph)
    for number, layer in keras_numbered(list_layers(backbone.graph_def, backbone.card), backbone.card):
        print('%3d' % number + layer.describe()[3:])     # Keras's index for converted Keras models
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('finetune'))
