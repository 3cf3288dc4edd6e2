"""Freeze a trained model_dir into one GraphDef: backbone + head, ready to deploy.

Feed `DecodeJpeg/contents:0` one image file's bytes (or `input:0` a batch of
preprocessed float images) and read `final_result:0`, as the retrain.py
graphs were used. It loads in plain TensorFlow, without tfgraft. A sidecar
<output_graph>.serving.json describes the input and output tensors.

example:
  tfgraft export --model_dir /tmp/model --output_graph /tmp/output_graph.pb \\
      --output_labels /tmp/output_labels.txt
"""
HELP = 'one frozen graph (backbone + head) and a labels file'


def add_export_arguments(parser, defaults=False):
    parser.add_argument('--output_graph', required=not defaults,
                        default='/tmp/output_graph.pb' if defaults else None,
                        help='where the frozen graph goes' + (' (default %(default)s)' if defaults else ''))
    parser.add_argument('--output_labels', default='/tmp/output_labels.txt' if defaults else None,
                        help='where the labels file goes, one class a line'
                        + (' (default %(default)s)' if defaults else ''))
    parser.add_argument('--final_tensor_name', default='final_result',
                        help='name of the output op (default final_result)')


def add_arguments(parser):
    parser.add_argument('--model_dir', required=True, help='a model_dir from `tfgraft train`')
    add_export_arguments(parser)


def export_model(model_dir, args):
    from tfgraft.engine.export import export_frozen_graph, sidecar_path
    export_frozen_graph(model_dir, args.output_graph, args.output_labels, args.final_tensor_name)
    print('wrote %s (%s) and %s' % (args.output_graph, sidecar_path(args.output_graph),
                                    args.output_labels or 'no labels file'))


def run(args):
    export_model(args.model_dir, args)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('export'))
