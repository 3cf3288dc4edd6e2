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


def image_files(paths):
    """Files as given, folders expanded; each checked so a bad file is named, not crashed on."""
    import os
    from tfgraft.graphs.errors import GraftError
    from tfgraft.records.image_check import SkipImage, inspect_image
    from tfgraft.records.listing import list_image_files
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = list_image_files(path)
            if not found:
                raise GraftError('no image files in %s' % path)
            files.extend(found)
        elif os.path.exists(path):
            files.append(path)
        else:
            raise GraftError('image not found: %s' % path)
    for path in files:
        try:
            info = inspect_image(path)
        except SkipImage as error:
            raise GraftError('cannot read image %s: %s' % (path, error)) from None
        if info.needs_fallback:
            raise GraftError('cannot read image %s: TensorFlow decodes it wrongly (%s); '
                             'convert it to PNG or JPEG' % (path, info.fallback))
    return files


def predict_images(model_dir, paths, batch_size=16):
    """[(image path, probabilities)] in the order given; params and checkpoint checked first."""
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.engine.estimator import Estimator
    from tfgraft.engine.heads import model_fn
    from tfgraft.engine.inputs import images_input_fn
    from tfgraft.graphs.factory import load_described
    params = model_dirs.read_params(model_dir)
    estimator = Estimator(model_fn, model_dir, params)
    checkpoint = estimator.latest_checkpoint()
    files = image_files(paths)
    if params.get('fine_tune'):      # backbone layers trained by `tfgraft finetune`
        from tfgraft.engine.finetune import predict_rows
        rows = predict_rows(model_dir, params, checkpoint, files, batch_size)
    else:
        backbone = load_described(params['graph'])
        rows = estimator.predict(images_input_fn(files, backbone, batch_size), checkpoint)
    return params, [(path, row['probabilities']) for path, row in zip(files, rows)]


def run(args):
    import numpy as np
    from tfgraft.engine import model_dir as model_dirs
    from tfgraft.graphs.errors import GraftError
    classes = model_dirs.read_params(args.model_dir)['classes']
    if args.top_k is not None and not 1 <= args.top_k <= len(classes):
        raise GraftError('--top_k %d: the model has %d classes' % (args.top_k, len(classes)))
    if args.batch_size < 1:
        raise GraftError('--batch_size must be at least 1')
    top_k = args.top_k or min(5, len(classes))
    _, results = predict_images(args.model_dir, args.image_path, args.batch_size)
    for path, probabilities in results:
        best = np.argsort(-probabilities, kind='stable')[:top_k]
        print(path)
        for index in best:
            print('  %s (score = %.5f)' % (classes[index], probabilities[index]))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('predict'))
