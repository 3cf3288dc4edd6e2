"""Write a stand-in of a pretrained network whose real file cannot be had.

The stand-in has exactly the real file's format, node or layer names and
shapes, with random weights: the real loading code runs on it unchanged.

examples:
  tfgraft standin inception_v3 --output tensorflow_inception_graph.pb
"""
HELP = 'write a random-weight stand-in with a real network\'s names and shapes'

KINDS = ('inception_v3',)


def add_arguments(parser):
    parser.add_argument('kind', choices=KINDS, help='which network to imitate')
    parser.add_argument('--output', required=True, help='file to write')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')


def run(args):
    from tfgraft.graphs.standin import write_inception_standin
    write_inception_standin(args.output, args.seed)
    print('wrote %s stand-in to %s' % (args.kind, args.output))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('standin'))
