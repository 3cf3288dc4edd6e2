"""Show what tfgraft sees in a backbone, a bottleneck dir or a model_dir.

For a frozen graph (.pb): the graph card and how it was found (caller, flags,
sidecar card, tensor names), the input and bottleneck tensors with the shapes
measured on the graph, the op histogram, the graph's sha256, and the numbered
layers that `tfgraft finetune --fine_tune_at K` counts. For a Keras model (.h5,
.keras or a SavedModel folder): the same for the backbone `tfgraft convert keras
--model` would write, converted in memory (nothing is written), its layers
numbered by Keras's own index. For a bottleneck dir or
a model_dir: the same for the backbone it was made with, and what it holds.

examples:
  tfgraft inspect mobilenet_v1_0.50_160/quantized_graph.pb
  tfgraft inspect keras_model.h5
  tfgraft inspect /tmp/bottlenecks --json
"""
HELP = 'show the card, measured tensor shapes, ops and numbered layers of a backbone'


def add_arguments(parser):
    parser.add_argument('path', help='a .pb file, a Keras model (.h5, .keras, SavedModel folder), '
                                         'a bottleneck dir or a model_dir')
    parser.add_argument('--json', action='store_true', help='print one JSON object instead')
    parser.add_argument('--allow_op', action='append', default=[], metavar='OP',
                        help='allow one more op type in the graph (repeatable)')


def run(args):
    import json
    from tfgraft.engine.inspection import inspect_path
    from tfgraft.graphs.inspection import format_description
    info = inspect_path(args.path, args.allow_op)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print('\n'.join(format_description(info)))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('inspect_path'))
