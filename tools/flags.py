"""The flags the commands share: one name, one type and one help text for each idea.

Names are retrain.py's where it had one (--image_dir, --bottleneck_dir,
--how_many_training_steps, --train_batch_size, --validation_percentage ...).
An older spelling still works as an alias, named in the flag's help. Choices are
read from the tables (engine.model_dir.HEAD_DEFAULTS = heads.HEADS,
optimizers.OPTIMIZERS; neither imports TensorFlow, so --help stays instant),
the network names copied from graphs.networks (checked by tests/test_layers.py).
"""
import argparse

from tfgraft.engine.model_dir import HEAD_DEFAULTS
from tfgraft.engine.optimizers import OPTIMIZERS as OPTIMIZER_TABLE

HEADS = tuple(HEAD_DEFAULTS)            # = engine.heads.HEADS
OPTIMIZERS = tuple(OPTIMIZER_TABLE)
# graphs.networks.npy_networks(): that module builds graphs and imports TensorFlow,
# so this is a copy, which tests/test_layers.py checks.
NPY_NETWORKS = ('alexnet', 'vgg16')


def comma_list(text):
    return [part.strip() for part in text.split(',') if part.strip()]


def hidden_units(text):
    try:
        units = [int(part) for part in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError('expected sizes separated by commas, like 1024,512') from None
    if any(size < 1 for size in units):
        raise argparse.ArgumentTypeError('layer sizes must be positive')
    return units


def alias_note(*old):
    return ' (old spelling: %s)' % ', '.join(old)


# ---------------------------------------------------------------- backbone

def add_backbone_arguments(parser):
    group = parser.add_argument_group('backbone')
    group.add_argument('--graph', help='frozen GraphDef (.pb) to use as the backbone')
    group.add_argument('--backbone', help='backbone name: %s (with --weights), or a known frozen '
                       'graph\'s card name (with --graph)' % ' or '.join(NPY_NETWORKS))
    group.add_argument('--weights', help='.npy or .npz weight file for --backbone %s'
                       % '|'.join(NPY_NETWORKS))
    group.add_argument('--layer', help='bottleneck layer of an .npy-built backbone (e.g. relu6)')
    group.add_argument('--input_tensor', help='for an unknown graph: the float image input tensor')
    group.add_argument('--bottleneck_tensor', help='for an unknown graph: the bottleneck tensor')
    group.add_argument('--input_size', type=int, help='for an unknown graph: input height = width')
    group.add_argument('--input_range', type=float, nargs=2, metavar=('LOW', 'HIGH'),
                       help='for an unknown graph: values of pixels 0 and 255 (default -1 1)')
    group.add_argument('--allow_op', action='append', default=[], metavar='OP',
                       help='allow one more op type in the graph (repeatable; it runs!)')
    group.add_argument('--exact_graph', action='store_true',
                       help='run the frozen graph as the file has it; by default it is '
                            'rewritten for inference when loaded (batch norm and 8-bit '
                            'weights folded into the convolutions: faster, vectors equal '
                            'to about 1e-5)')


def add_extraction_arguments(parser):
    parser.add_argument('--fast_decode', action='store_true',
                        help='decode JPEGs at least twice the input size on both sides at '
                             '1/2, 1/4 or 1/8 scale (libjpeg DCT scaling), then resize: much '
                             'faster on large photos, slightly different pixels (a separate '
                             'cache of vectors)')
    parser.add_argument('--precision', choices=('float32', 'bfloat16'), default='float32',
                        help='number format of the backbone (default float32). bfloat16 runs '
                             'convolutions through oneDNN in bfloat16: faster only on CPUs '
                             'with AVX-512 BF16 or AMX (refused elsewhere), at the cost of '
                             'vectors that agree with float32 to 2-3 significant digits only '
                             '(8-bit mantissa); a separate cache of vectors')


def backbone_settings(args):
    """The keyword arguments of graphs.factory.load_backbone the backbone flags give."""
    return dict(graph=args.graph, network=args.backbone, weights=args.weights, layer=args.layer,
                allow_ops=args.allow_op, input_tensor=args.input_tensor,
                bottleneck_tensor=args.bottleneck_tensor, input_size=args.input_size,
                input_range=args.input_range, exact_graph=getattr(args, 'exact_graph', False))


# ---------------------------------------------------------------- images and splits

def add_validation_percentage(parser):
    parser.add_argument('--validation_percentage', type=float, default=10,
                        help='percent of images for validation when the folder has no '
                             'split subfolders (default 10)')


def add_split_arguments(parser):
    add_validation_percentage(parser)
    parser.add_argument('--testing_percentage', type=float, default=10,
                        help='percent of images for test (default 10)')
    parser.add_argument('--split_rule', choices=('file_name', 'retrain_py'), default='file_name',
                        help='file_name (default): sha1 of the file name, the same wherever the '
                             'folder lives; retrain_py: sha1 of <image_dir as typed>/<class>/<file>, '
                             'retrain.py\'s split exactly (same test images)')
    parser.add_argument('--max_pixels', type=int, default=None,
                        help='refuse images whose header declares more pixels (default 90 MP)')
    parser.add_argument('--skip_empty_classes', action='store_true',
                        help='leave out class folders with no images instead of stopping')


def listing_settings(args):
    """The keyword arguments of records.extract.write_bottlenecks the split flags give."""
    return dict(validation_percentage=args.validation_percentage,
                testing_percentage=args.testing_percentage, max_pixels=args.max_pixels,
                skip_empty_classes=args.skip_empty_classes, split_rule=args.split_rule)


# ---------------------------------------------------------------- training a head

TRAINING_FLAGS = ('head', 'learning_rate', 'optimizer', 'learning_rate_decay', 'decay_steps',
                  'train_batch_size', 'hidden_units', 'dropout', 'how_many_training_steps',
                  'eval_step_interval', 'save_checkpoints_steps', 'keep_checkpoint_max',
                  'summaries_dir', 'max_in_memory_mb', 'seed')


def add_training_arguments(parser, prefix='', title='training'):
    """The `tfgraft train` flags; with a prefix (finetune's stage1_) each name gets it."""
    group = parser.add_argument_group(title)

    def flag(name, **options):
        group.add_argument('--' + prefix + name, dest=prefix + name, **options)
    flag('head', choices=HEADS, help='the layers to graft (default softmax, or the model_dir\'s)')
    flag('how_many_training_steps', type=int, default=4000,
         help='train until this many steps in all (default 4000)')
    flag('learning_rate', type=float, help='default: the head\'s (see above)')
    flag('optimizer', choices=OPTIMIZERS, help='default: the head\'s (see above)')
    flag('learning_rate_decay', type=float,
         help='multiply the learning rate by this every --decay_steps (default 1: none)')
    flag('decay_steps', type=int, help='steps per decay (default 1000)')
    flag('train_batch_size', type=int, help='records per step (default 100)')
    flag('hidden_units', type=hidden_units, help='dnn head: hidden layer sizes, like 1024,512')
    flag('dropout', type=float, help='dnn and logit heads: dropout rate')
    flag('eval_step_interval', type=int, default=10,
         help='measure validation accuracy every this many steps (default 10)')
    flag('save_checkpoints_steps', type=int, default=500,
         help='save a checkpoint every this many steps (default 500)')
    flag('keep_checkpoint_max', type=int, default=5, help='checkpoints kept (default 5)')
    flag('summaries_dir',
         help='TensorBoard events go to its train/ and validation/ (default: model_dir)')
    flag('max_in_memory_mb', type=float, default=1024,
         help='when the vectors of the train, validation and test splits take more than '
              'this many MiB together, they are streamed from their shards (tf.data, shuffle '
              'buffer) instead of held in memory (default 1024)')
    if not prefix:    # finetune's own --seed seeds both stages
        flag('seed', type=int, default=0,
             help='seed of initial weights, batch draws and dropout: the same seed on '
                  'the same records trains the same model (default 0)')


def training_settings(args, prefix='', seed=None):
    """(head settings, TrainingRun) for engine.training.train_model from the training flags."""
    from tfgraft.engine.training import HEAD_SETTINGS, TrainingRun
    values = {name: getattr(args, prefix + name) for name in TRAINING_FLAGS
              if hasattr(args, prefix + name)}
    if seed is not None:
        values['seed'] = seed
    settings = {name: values[name] for name in HEAD_SETTINGS}
    run = TrainingRun(**{name: values[name] for name in TRAINING_FLAGS
                         if name not in HEAD_SETTINGS and name in values})
    return settings, run


# ---------------------------------------------------------------- export

def add_export_arguments(parser, defaults=False):
    parser.add_argument('--output_graph', default='/tmp/output_graph.pb' if defaults else None,
                        help='where the frozen graph goes' + (' (default %(default)s)' if defaults
                                                              else ' (needed by --format frozen)'))
    parser.add_argument('--output_labels', default='/tmp/output_labels.txt' if defaults else None,
                        help='where the labels file goes, one class a line'
                        + (' (default %(default)s)' if defaults else ''))
    parser.add_argument('--final_tensor_name', default='final_result',
                        help='name of the output op (default final_result)')
