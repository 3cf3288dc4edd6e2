"""retrain.py's flags that `tfgraft retrain` takes besides its own, and the ones it refuses.

Every flag of TensorFlow Hub's examples/image_retraining/retrain.py parses, so a
retrain.py command line runs unchanged or stops with one line saying what to use
instead; README.md has the table. Flags with the same meaning are handled by
tools/retrain.py; the ones here are checked by check_retrain_py_flags().
"""
import os

from tfgraft.graphs.errors import GraftError

DISTORTIONS = ('flip_left_right', 'random_crop', 'random_scale', 'random_brightness')
VERBOSITY = {'DEBUG': 'DEBUG', 'INFO': 'INFO', 'WARN': 'WARNING', 'ERROR': 'ERROR', 'FATAL': 'CRITICAL'}


def add_retrain_py_arguments(parser):
    group = parser.add_argument_group('more retrain.py flags (see README: retrain.py flags)')
    group.add_argument('--intermediate_store_frequency', type=int, default=0,
                       help='also export the graph every this many steps, as '
                            '<intermediate_output_graphs_dir>intermediate_<step>.pb (default 0: never)')
    group.add_argument('--intermediate_output_graphs_dir', default='/tmp/intermediate_graph/',
                       help='prefix of the intermediate graphs (default %(default)s)')
    group.add_argument('--test_batch_size', type=int, default=-1,
                       help='-1 only: the whole test split is scored, as retrain.py\'s -1')
    group.add_argument('--validation_batch_size', type=int, default=-1,
                       help='-1 only: validation accuracy is measured on the whole validation split')
    group.add_argument('--logging_verbosity', choices=sorted(VERBOSITY), default='ERROR',
                       help='level of TensorFlow\'s own log messages (default ERROR)')
    for name in DISTORTIONS:
        kind = {'action': 'store_true'} if name == 'flip_left_right' else {'type': float, 'default': 0}
        group.add_argument('--' + name, help='refused: distortions are `tfgraft finetune` flags '
                           '(same names, same meaning)', **kind)
    group.add_argument('--tfhub_module', help='refused: give the backbone with --graph (frozen .pb)')
    group.add_argument('--architecture', help='refused (tensorflow-for-poets): use --graph')
    group.add_argument('--checkpoint_path', help='refused: checkpoints live in --model_dir')
    group.add_argument('--saved_model_dir', help='also write a SavedModel in this folder (as retrain.py: '
                       'the folder itself, e.g. /tmp/saved_models/$(date +%%s)/; new or empty)')


def write_retrain_py_saved_model(model_dir, saved_model_dir, final_tensor_name):
    """retrain.py's --saved_model_dir: the SavedModel in that very folder (which, as for
    retrain.py, must be new or empty), written beside it first and renamed into place."""
    import os
    import shutil
    from tfgraft.engine.saved_model_export import write_saved_model
    target = os.path.abspath(saved_model_dir)
    partial = os.path.join(os.path.dirname(target), '.%s.partial' % os.path.basename(target))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    write_saved_model(model_dir, partial, final_tensor_name=final_tensor_name)
    os.replace(partial, target)
    return target


def check_retrain_py_flags(args):
    """One GraftError line for a retrain.py flag tfgraft does not take, naming what to use."""
    if args.tfhub_module:
        raise GraftError('--tfhub_module: TensorFlow Hub modules are not read; give a frozen graph '
                         'with --graph model.pb (or --backbone alexnet|vgg16 --weights W)')
    if args.architecture:
        raise GraftError('--architecture: give the network itself with --graph model.pb '
                         '(e.g. mobilenet_v1_0.25_128/frozen_graph.pb)')
    if args.checkpoint_path:
        raise GraftError('--checkpoint_path: tfgraft keeps checkpoints in a folder; use --model_dir DIR')
    used = [name for name in DISTORTIONS if getattr(args, name)]
    if used:
        raise GraftError('--%s: distortions need every image through the backbone at every step; '
                         'retrain without them, then run `tfgraft finetune --model_dir M --image_dir D '
                         '--graph G --%s ...` (same flags, same meaning)' % (used[0], used[0]))
    for flag, where in (('test_batch_size', 'test'), ('validation_batch_size', 'validation')):
        if getattr(args, flag) != -1:
            raise GraftError('--%s: tfgraft always scores the whole %s split (retrain.py\'s -1); '
                             'drop the flag' % (flag, where))
    if args.intermediate_store_frequency < 0:
        raise GraftError('--intermediate_store_frequency must be 0 (never) or a number of steps')
    if args.saved_model_dir and os.path.exists(args.saved_model_dir) and (
            not os.path.isdir(args.saved_model_dir) or os.listdir(args.saved_model_dir)):
        raise GraftError('--saved_model_dir %s exists and is not empty; name a new folder (TF Serving: a new version '
                         'number below the base path), or use `tfgraft export --format saved_model '
                         '--saved_model_dir BASE` which picks the next version' % args.saved_model_dir)


def set_logging_verbosity(name):
    import tensorflow as tf
    tf.get_logger().setLevel(VERBOSITY[name])


def intermediate_steps(total, frequency):
    """Steps after which retrain.py-style intermediate graphs are exported (before the last)."""
    if frequency <= 0:
        return []
    return list(range(frequency, total, frequency))
