"""Why the load-time rewrite barely moves model-only speed: Grappler already does it.

For each graph of --graphs, the backbone alone (benchmarks/extract.py model_only) in
four ways, interleaved for --rounds rounds: the file's graph and tfgraft's rewrite
(graphs/optimize.py), each under extraction's session settings (Grappler's constant
folding, arithmetic and remapper passes) and with Grappler off. Then the ops that
actually run in each case (the partition graphs after Grappler), counted by type.
No assertion: the figures are the result.

usage: python benchmarks/rewrite_vs_grappler.py [--rounds 5] [--images 3000] [--graphs DIR ...]
"""
import argparse
import collections
import os
import sys

from extract import GRAPHS, assets_root, median, model_only

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402

from tfgraft.graphs import registry  # noqa: E402
from tfgraft.graphs.frozen import load_frozen_backbone  # noqa: E402
from tfgraft.records.extract import session_config  # noqa: E402

tf1 = tf.compat.v1


def grappler_off():
    rewrite = rewriter_config_pb2.RewriterConfig(disable_meta_optimizer=True)
    return tf1.ConfigProto(graph_options=tf1.GraphOptions(rewrite_options=rewrite))


def ops_that_run(backbone, config):
    """Op types of the graph the session runs after Grappler, most common first."""
    batch = np.zeros([2] + list(backbone.card.input_size) + [3], np.float32)
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, batch.shape)
        bottleneck = backbone.build(images)
    options = tf1.RunOptions(output_partition_graphs=True)
    metadata = tf1.RunMetadata()
    with tf1.Session(graph=graph, config=config) as sess:
        sess.run(bottleneck, {images: batch}, options=options, run_metadata=metadata)
    counts = collections.Counter(node.op for part in metadata.partition_graphs for node in part.node)
    for plumbing in ('_Arg', '_Retval', '_Recv', '_Send', 'NoOp', 'Placeholder'):
        counts.pop(plumbing, None)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--images', type=int, default=3000, help='images a way')
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--graphs', nargs='+', default=list(GRAPHS))
    args = parser.parse_args()
    configs = {'grappler': session_config(), 'no grappler': grappler_off()}
    for relative in args.graphs:
        graph = os.path.join(assets_root(), relative)
        _, depth, size = os.path.dirname(relative).rsplit('_', 2)
        card = registry.mobilenet_v1_card(depth, int(size))
        backbones = {'file': load_frozen_backbone(graph, card=card, exact_graph=True),
                     'rewritten': load_frozen_backbone(graph, card=card)}
        runs = collections.OrderedDict(((b, c), []) for c in configs for b in backbones)
        for _ in range(args.rounds):
            for (b, c), values in runs.items():
                values.append(model_only(backbones[b], args.images, args.batch_size, configs[c]))
        print('\n### %s, model only, %d images a way, batch %d' % (card.name, args.images, args.batch_size))
        print('| graph | session | images/s (median) | every round |\n|---|---|---:|---|')
        for (b, c), values in runs.items():
            print('| %s | %s | %.1f | %s |' % (b, c, median(values), ' '.join('%.0f' % v for v in values)))
        print('\n| ratio (inside each round) | median | every round |\n|---|---:|---|')
        for c in configs:
            ratio = [r / f for r, f in zip(runs[('rewritten', c)], runs[('file', c)])]
            print('| rewritten / file, %s | %.2f | %s |' % (c, median(ratio), ' '.join('%.2f' % v for v in ratio)))
        ratio = [g / n for g, n in zip(runs[('file', 'grappler')], runs[('file', 'no grappler')])]
        print('| file: grappler / no grappler | %.2f | %s |' % (median(ratio), ' '.join('%.2f' % v for v in ratio)))
        print('\n| graph | session | ops that run |\n|---|---|---|')
        for (b, c) in runs:
            counts = ops_that_run(backbones[b], configs[c])
            print('| %s | %s | %d: %s |' % (b, c, sum(counts.values()),
                                            ', '.join('%s %d' % kv for kv in counts.most_common(8))))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
