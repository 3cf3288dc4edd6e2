"""The whole job on an embedded default: no files from outside are needed.

1. trains a small rootstock network on patches of photos that ship inside
   scikit-image and freezes it to rootstock.pb (+ rootstock.card.json);
2. writes scikit-image's faces / non-faces set as a folder of labelled photos;
3. runs the real pipeline on them: bottleneck records -> softmax head ->
   test accuracy -> one exported frozen graph -> predictions.

Everything lands in --work_dir; a re-run reuses what is there.

example:
  tfgraft demo --work_dir /tmp/tfgraft_demo
"""
HELP = 'run the whole pipeline on data that ships with scikit-image'


def add_arguments(parser):
    parser.add_argument('--work_dir', default='tfgraft_demo',
                        help='where the rootstock, records, model and export go (default %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='rootstock seed (default 0)')


def run(args):
    from tfgraft.engine.demo import run_demo
    run_demo(args.work_dir, args.seed)
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('demo'))
