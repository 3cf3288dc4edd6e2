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


def _training_args(extra):
    import argparse
    from tfgraft.tools import train
    parser = argparse.ArgumentParser()
    train.add_training_arguments(parser)
    return parser.parse_args(extra)


def run(args):
    import os
    import numpy as np
    from tfgraft.engine.demo_data import write_demo_images
    from tfgraft.engine.export import export_frozen_graph
    from tfgraft.engine.rootstock import build_rootstock
    from tfgraft.graphs.frozen import load_frozen_backbone
    from tfgraft.records.extract import write_bottlenecks
    from tfgraft.tools import predict, train

    work_dir = os.path.abspath(args.work_dir)
    graph = os.path.join(work_dir, 'rootstock', 'rootstock.pb')
    if not os.path.isfile(graph):
        print('1/5 training the rootstock network on scikit-image texture patches')
        build_rootstock(graph, seed=args.seed)
    else:
        print('1/5 rootstock: reusing %s' % graph)
    print('2/5 writing the faces / non-faces photos')
    image_dir = write_demo_images(work_dir)
    print('3/5 bottleneck records')
    bottleneck_dir = os.path.join(work_dir, 'bottlenecks')
    write_bottlenecks(image_dir, load_frozen_backbone(graph), bottleneck_dir)
    print('4/5 training the softmax head')
    model_dir = os.path.join(work_dir, 'model')
    result = train.train_model(_training_args([]), bottleneck_dir, model_dir)
    print('5/5 export and predict')
    output_graph = os.path.join(work_dir, 'output_graph.pb')
    export_frozen_graph(model_dir, output_graph, os.path.join(work_dir, 'output_labels.txt'))
    samples = [os.path.join(image_dir, name, sorted(os.listdir(os.path.join(image_dir, name)))[0])
               for name in ('faces', 'non_faces')]
    params, rows = predict.predict_images(model_dir, samples)
    for path, probabilities in rows:
        best = int(np.argmax(probabilities))
        print('  %s -> %s (score = %.3f)' % (os.path.relpath(path, work_dir),
                                             params['classes'][best], probabilities[best]))
    print('exported %s (feed DecodeJpeg/contents:0 or input:0, read final_result:0)' % output_graph)
    if result['test']:
        print('demo test accuracy: %.1f%% on %d images'
              % (result['test']['accuracy'] * 100, result['test']['count']))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('demo'))
