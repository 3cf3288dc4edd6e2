"""Validation accuracy with and without --fast_decode, on every real MobileNet rootstock.

For each graph: `tfgraft bottlenecks` of cats_and_dogs_filtered (its train/ and
validation/ folders are the splits) with and without --fast_decode, a default
head (`tfgraft train`, softmax, 4000 steps, seed 0) on each, and `tfgraft evaluate
--split validation`. Prints both accuracies and their difference; --fast_decode
could only be on by default if every difference were within 0.3 points.

usage: python benchmarks/fast_decode_accuracy.py [--graphs NAME ...] [--work DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

GRAPHS = ('mobilenet_v1_0.25_128/frozen_graph.pb', 'mobilenet_v1_0.25_224/frozen_graph.pb',
          'mobilenet_v1_0.50_160/quantized_graph.pb', 'mobilenet_v1_0.75_224/quantized_graph.pb')


def assets_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(here, '..', '..', 'shared', 'assets')


def tfgraft(*arguments):
    subprocess.run([sys.executable, '-m', 'tfgraft.tools.cli'] + list(arguments), check=True,
                   stdout=subprocess.DEVNULL)


def validation_accuracy(graph, card_name, work, fast_decode):
    name = card_name + ('_fast' if fast_decode else '')
    records, model = os.path.join(work, name, 'records'), os.path.join(work, name, 'model')
    tfgraft('bottlenecks', '--image_dir', os.path.join(assets_root(), 'cats_and_dogs_filtered'),
            '--bottleneck_dir', records, '--graph', graph, '--backbone', card_name,
            *(['--fast_decode'] if fast_decode else []))
    tfgraft('train', '--bottleneck_dir', records, '--model_dir', model)
    tfgraft('evaluate', '--bottleneck_dir', records, '--model_dir', model, '--split', 'validation')
    with open(os.path.join(model, 'eval_validation', 'report.json')) as handle:
        return json.load(handle)['accuracy'] * 100


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--graphs', nargs='+', default=list(GRAPHS))
    parser.add_argument('--work', help='where records and models go (default: a temporary folder)')
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix='tfgraft-fast-decode-')
    print('| graph | validation accuracy, full decode | with --fast_decode | difference (points) |')
    print('|---|---:|---:|---:|')
    for relative in args.graphs:
        folder = os.path.dirname(relative)
        card_name = folder      # the releases' folders are named as their cards
        graph = os.path.join(assets_root(), relative)
        full = validation_accuracy(graph, card_name, work, False)
        fast = validation_accuracy(graph, card_name, work, True)
        print('| %s | %.1f | %.1f | %+.1f |' % (folder, full, fast, fast - full), flush=True)


if __name__ == '__main__':
    main()
