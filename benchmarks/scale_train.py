"""Peak RSS of `tfgraft train`, `evaluate` and `verify` at 1x and 10x the records.

Synthetic 2048-d records (Inception-v3's size; Gaussian clusters, one per class,
so the labels are separable), 80/10/10 train/validation/test, written by the
project's records writer (records/writer.py) in shards of 1024, generated shard
by shard so this script's memory stays flat too. Each command runs in its own
process; its peak RSS is that process's ru_maxrss (os.wait4). The default
--max_in_memory_mb 1024 holds the 1x train split (125 MiB) in memory and streams
the 10x one (1250 MiB); the rows with `--max_in_memory_mb 0` stream both.
Printed: a table of peak RSS per command and size, and the ratio 10x / 1x
(target: at most 1.5).

    python benchmarks/scale_train.py [--sizes 20000,200000] [--limits default,0] [--folder DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZE = 2048
CLASSES = ['class_%d' % i for i in range(5)]
FRACTIONS = (('train', 0.8), ('validation', 0.1), ('test', 0.1))


class SyntheticSplit:
    """A sequence of serialized examples made when sliced (the writer takes slices)."""

    def __init__(self, split, count, centres, seed):
        self.split, self.count, self.centres, self.seed = split, count, centres, seed

    def __len__(self):
        return self.count

    def __getitem__(self, part):
        from tfgraft.records import schema
        start, stop, _ = part.indices(self.count)
        rng = np.random.RandomState([self.seed, start])
        labels = np.arange(start, stop) % len(CLASSES)
        vectors = self.centres[labels] + rng.randn(stop - start, SIZE).astype(np.float32)
        return [schema.make_example(vector, label, CLASSES[label],
                                    '%s/%s_%08d.jpg' % (CLASSES[label], self.split, start + offset),
                                    '%064x' % (self.seed << 40 | start + offset + 1))
                for offset, (vector, label) in enumerate(zip(vectors, labels))]


def write_records(folder, total, seed=0):
    from tfgraft.graphs.registry import GraphCard
    from tfgraft.records import schema, writer
    if os.path.isfile(os.path.join(folder, writer.MANIFEST_NAME)):
        return folder                     # made by an earlier run
    rng = np.random.RandomState(seed)
    centres = rng.randn(len(CLASSES), SIZE).astype(np.float32) * 0.1
    card = GraphCard(name='synthetic_2048', input_tensor='input:0', input_kind='image',
                     input_size=(8, 8), input_range=(-1.0, 1.0), bottleneck_tensor='pool:0',
                     bottleneck_size=SIZE)
    manifest = {'schema_version': schema.SCHEMA_VERSION, 'bottleneck_size': SIZE,
                'classes': CLASSES, 'splits': {},
                'graph': {'card': card.to_dict(), 'sha256': 'a' * 64, 'path': '', 'layer': None}}
    splits = {}
    for index, (split, fraction) in enumerate(FRACTIONS):
        count = int(total * fraction)
        splits[split] = SyntheticSplit(split, count, centres, seed * 10 + index)
        labels = np.arange(count) % len(CLASSES)
        manifest['splits'][split] = {'count': count, 'per_class': {
            name: int((labels == label).sum()) for label, name in enumerate(CLASSES)}}
    writer.write_records(folder, splits, CLASSES, manifest)
    return folder


def peak_rss_mb(argv):
    """(peak RSS in MiB, seconds) of one command run in its own process."""
    started = time.time()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit('failed: %s\n%s' % (' '.join(argv), out.decode('utf-8', 'replace')[-3000:]))
    return usage.ru_maxrss / 1024.0, time.time() - started


def commands(records, model_dir, limit):
    tfgraft = [sys.executable, '-m', 'tfgraft.tools.cli']
    memory = [] if limit is None else ['--max_in_memory_mb', str(limit)]
    return [
        ('verify', tfgraft + ['verify', '--bottleneck_dir', records]),
        ('train', tfgraft + ['train', '--bottleneck_dir', records, '--model_dir', model_dir,
                             '--how_many_training_steps', '300', '--eval_step_interval', '300']
         + memory),
        ('evaluate', tfgraft + ['evaluate', '--bottleneck_dir', records, '--model_dir', model_dir,
                                '--split', 'train'] + memory),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='20000,200000', help='records in all, 1x and 10x')
    parser.add_argument('--folder', default='/tmp/tfgraft_scale_train')
    parser.add_argument('--limits', default='default,0',
                        help='--max_in_memory_mb values to run train and evaluate with, in this '
                             'order (default: the default, then 0: always streamed)')
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(',')]
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    rows = {}
    limits = [None if text == 'default' else float(text) for text in args.limits.split(',')]
    for limit in limits:
        for size in sizes:
            records = write_records(os.path.join(args.folder, 'records_%d' % size), size)
            model_dir = os.path.join(args.folder, 'model_%d_%s' % (size, limit))
            if os.path.isdir(model_dir):
                subprocess.run(['rm', '-rf', model_dir], check=True)
            for name, argv in commands(records, model_dir, limit):
                if name == 'verify' and limit is not None:
                    continue          # verify has no limit: it always streams
                label = name if limit is None else '%s --max_in_memory_mb %g' % (name, limit)
                rows[label, size] = peak_rss_mb(argv)
                print('%-32s %8d records: peak RSS %7.1f MiB (%.0f s)'
                      % (label, size, rows[label, size][0], rows[label, size][1]), flush=True)
    print()
    print('%-32s %s  10x/1x' % ('command', '  '.join('%9d' % size for size in sizes)))
    for label in dict.fromkeys(label for label, _ in rows):
        peaks = [rows[label, size][0] for size in sizes]
        print('%-32s %s  %5.2f' % (label, '  '.join('%9.1f' % peak for peak in peaks),
                                   peaks[-1] / peaks[0]))
    print(json.dumps({'%s @ %d' % key: round(value[0], 1) for key, value in rows.items()}))


if __name__ == '__main__':
    main()
