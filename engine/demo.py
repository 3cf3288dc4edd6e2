"""The whole job on data that ships with scikit-image: the `tfgraft demo` run.

rootstock network (graphs/rootstock.py) -> demo photos (records/demo_images.py)
-> bottleneck records -> softmax head -> export -> predictions, all in one
work_dir; a re-run reuses the rootstock and the records.
"""
import os

import numpy as np


def run_demo(work_dir, seed=0):
    """Run the five steps, printing each; returns the training result."""
    from tfgraft.engine.export import export_frozen_graph
    from tfgraft.engine.prediction import predict_images
    from tfgraft.engine.training import head_settings, train_model
    from tfgraft.graphs.frozen import load_frozen_backbone
    from tfgraft.graphs.rootstock import build_rootstock
    from tfgraft.records.demo_images import write_demo_images
    from tfgraft.records.extract import write_bottlenecks
    work_dir = os.path.abspath(work_dir)
    graph = os.path.join(work_dir, 'rootstock', 'rootstock.pb')
    if not os.path.isfile(graph):
        print('1/5 training the rootstock network on scikit-image texture patches')
        build_rootstock(graph, seed=seed)
    else:
        print('1/5 rootstock: reusing %s' % graph)
    print('2/5 writing the faces / non-faces photos')
    image_dir = write_demo_images(work_dir)
    print('3/5 bottleneck records')
    bottleneck_dir = os.path.join(work_dir, 'bottlenecks')
    write_bottlenecks(image_dir, load_frozen_backbone(graph), bottleneck_dir)
    print('4/5 training the softmax head')
    model_dir = os.path.join(work_dir, 'model')
    result = train_model(head_settings(), bottleneck_dir, model_dir)
    print('5/5 export and predict')
    output_graph = os.path.join(work_dir, 'output_graph.pb')
    export_frozen_graph(model_dir, output_graph, os.path.join(work_dir, 'output_labels.txt'))
    samples = [os.path.join(image_dir, name, sorted(os.listdir(os.path.join(image_dir, name)))[0])
               for name in ('faces', 'non_faces')]
    params, rows = predict_images(model_dir, samples)
    for path, probabilities in rows:
        best = int(np.argmax(probabilities))
        print('  %s -> %s (score = %.3f)' % (os.path.relpath(path, work_dir),
                                             params['classes'][best], probabilities[best]))
    print('exported %s (feed DecodeJpeg/contents:0 or input:0, read final_result:0)' % output_graph)
    if result['test']:
        print('demo test accuracy: %.1f%% on %d images'
              % (result['test']['accuracy'] * 100, result['test']['count']))
    return result
