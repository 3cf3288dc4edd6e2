"""Label images with a trained model_dir: its backbone (named in params.json) and head.

Prints, for each image, the --top_k classes and their scores. Folders are
searched for image files.

example:
  tfgraft predict --model_dir /tmp/model --image_path cat.jpg photos/ --top_k 3
"""
HELP = 'label images with a trained model_dir'


def add_arguments(parser):
    parser.add_argument('--model_dir', required=True, help='a model_dir from `tfgraft train`')
    parser.add_argument('--image_path', required=True, nargs='+', metavar='IMAGE',
                        help='image files or folders of them')
    parser.add_argument('--top_k', type=int, help='classes shown per image (default: 5 or fewer)')
    parser.add_argument('--batch_size', type=int, default=16, help='images per backbone run')
    parser.add_argument('--exact_graph', action='store_true', default=None,
                        help='run the frozen graph as the file has it (default: as the '
                             'bottlenecks were made, rewritten for inference unless they '
                             'were made with --exact_graph)')


def run(args):
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.engine.prediction import predict_images, top_k_lines
    from tfgraft.graphs.errors import GraftError
    classes = model_dirs.read_params(args.model_dir)['classes']
    if args.top_k is not None and not 1 <= args.top_k <= len(classes):
        raise GraftError('--top_k %d: the model has %d classes' % (args.top_k, len(classes)))
    if args.batch_size < 1:
        raise GraftError('--batch_size must be at least 1')
    top_k = args.top_k or min(5, len(classes))
    _, results = predict_images(args.model_dir, args.image_path, args.batch_size,
                                args.exact_graph)
    print('\n'.join(top_k_lines(classes, results, top_k)))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('predict'))
