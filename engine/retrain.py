"""retrain.py's whole job in one call: bottlenecks, a trained head, curves, test report, frozen graph.

Each step is a library call of its own (records.extract.write_bottlenecks,
engine.training.train_model, engine.evaluation.evaluate_model,
engine.export.export_frozen_graph); this runs them in order on one model_dir.
"""
import tempfile


def intermediate_steps(total, frequency):
    """Steps after which retrain.py-style intermediate graphs are exported (before the last)."""
    if frequency <= 0:
        return []
    return list(range(frequency, total, frequency))


def retrain(image_dir, backbone_settings, bottleneck_dir, settings, run, output_graph,
            output_labels=None, final_tensor_name='final_result', model_dir=None,
            listing_settings=None, misclassified_report=False, intermediate_store_frequency=0,
            intermediate_output_graphs_dir=''):
    """Returns {'model_dir', 'train', 'test', 'params', 'report' (test report or None), 'curves'}.

    backbone_settings: graphs.factory.load_backbone's keywords; listing_settings:
    write_bottlenecks' split keywords; settings and run: engine.training.train_model's.
    A new temporary model_dir is made unless one is named. With
    intermediate_store_frequency, retrain.py's intermediate graphs are exported as
    <intermediate_output_graphs_dir>intermediate_<step>.pb on the way.
    """
    import dataclasses
    import os
    from tfgraft.engine.curves import save_training_curves
    from tfgraft.engine.deploy import export_formats
    from tfgraft.engine.evaluation import evaluate_model, report_lines
    from tfgraft.engine.export import export_frozen_graph
    from tfgraft.engine.training import train_model
    from tfgraft.graphs.factory import load_backbone
    from tfgraft.records.extract import write_bottlenecks
    write_bottlenecks(image_dir, load_backbone(**backbone_settings), bottleneck_dir,
                      **(listing_settings or {}))
    model_dir = model_dir or tempfile.mkdtemp(prefix='tfgraft-retrain-')
    for step in intermediate_steps(run.how_many_training_steps, intermediate_store_frequency):
        train_model(settings, bottleneck_dir, model_dir,
                    dataclasses.replace(run, how_many_training_steps=step))
        path = intermediate_output_graphs_dir + 'intermediate_%d.pb' % step
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        export_frozen_graph(model_dir, path, None, final_tensor_name)
        print('intermediate graph after step %d: %s' % (step, path))
    result = train_model(settings, bottleneck_dir, model_dir, run)
    curves = save_training_curves(model_dir, run.summaries_dir)
    print('learning curves: %s' % curves)
    report = None
    if result['test'] and misclassified_report:
        report = evaluate_model(model_dir, bottleneck_dir, 'test')
        print('\n'.join(report_lines(report, misclassified=True)))
    export_formats(model_dir, ['frozen'], output_graph, output_labels, final_tensor_name)
    return dict(result, model_dir=model_dir, report=report, curves=curves)
