"""Write a stand-in of a pretrained network whose real file cannot be had.

The stand-in has exactly the real file's format, node or layer names and
shapes, with random weights: the real loading code runs on it unchanged.

examples:
  tfgraft standin inception_v3 --output tensorflow_inception_graph.pb
  tfgraft standin alexnet --output bvlc_alexnet.npy
  tfgraft standin vgg16 --output vgg16.npy --width_divisor 8
"""
HELP = 'write a random-weight stand-in with a real network\'s names and shapes'

# graphs.networks.standin_networks(), checked by tests/test_layers.py (it imports TensorFlow)
KINDS = ('alexnet', 'vgg16', 'inception_v3')


def add_arguments(parser):
    parser.add_argument('kind', choices=KINDS, help='which network to imitate')
    parser.add_argument('--output', required=True, help='file to write')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--width_divisor', type=int, default=1,
                        help='alexnet, vgg16: narrow every layer by this factor (default 1)')


def run(args):
    from tfgraft.graphs.errors import GraftError
    from tfgraft.graphs.networks import NETWORKS
    if args.width_divisor < 1:
        raise GraftError('--width_divisor must be at least 1')
    NETWORKS[args.kind].standin(args.output, args.seed, args.width_divisor)
    print('wrote %s stand-in to %s' % (args.kind, args.output))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('standin'))
