"""Scale: peak memory of each command at 10x the data, and Beam throughput per worker count.

Each command row of COMMANDS runs as a child process (`python -m tfgraft.tools.cli ...`)
at every data size of its part, in fresh output folders, `--rounds` times interleaved; the
child's peak RSS comes from os.wait4's rusage. Printed per row: the median peak RSS at each
size and the ratio of the largest size to the smallest (target <= 1.5).

Parts (`--only`, comma-separated; all three by default):
  records  `verify`, `train` (300 steps) and `evaluate --split train`, train and evaluate
           also with `--max_in_memory_mb 0` (always streamed), on synthetic 2048-d records
           (Inception-v3's width; 5 Gaussian classes, 80/10/10 train/validation/test),
           written by records/writer.py shard by shard (`--record_sizes`, default 20k, 200k).
           At 20k the train split (125 MiB of vectors) is under the default
           --max_in_memory_mb 1024 and held in memory; at 200k (1250 MiB) it is streamed.
  images   `bottlenecks` on JPEGs made from the real cats_and_dogs_filtered photos (small
           random crops and mirror flips; `--image_sizes`, default 1k, 10k).
  beam     `bottlenecks --runner DirectRunner` with 1 and 2 worker processes
           (multi_processing), and the in-process path for reference, on a generated image
           set from an empty bottleneck folder (`--beam_images`, default 1000); images/s
           over the command's whole wall time, start-up included.

    python benchmarks/scale.py [--only records,images,beam] [--rounds 5] [--work_dir DIR]
        [--record_sizes 20000,200000] [--image_sizes 1000,10000] [--beam_images 1000]

To add a command's row: a Row in COMMANDS with its part, a `prepare(work_dir, size)` that
makes (once) and returns its input, and an `argv(prepared, out_dir)` of its command line.
"""
import argparse
import collections
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

HERE = os.path.dirname(os.path.abspath(__file__))
BEAM_WORKERS = (1, 2)
PARTS = ('records', 'images', 'beam')
RECORD_SIZE = 2048
RECORD_CLASSES = ['class_%d' % i for i in range(5)]
RECORD_FRACTIONS = (('train', 0.8), ('validation', 0.1), ('test', 0.1))
TRAIN_STEPS = '300'


def assets_root():
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(HERE, '..', '..', 'shared', 'assets')


def mobilenet_graph():
    return os.path.join(assets_root(), 'mobilenet_v1_0.25_128', 'frozen_graph.pb')


def make_images(work_dir, count, seed=0):
    """`count` JPEGs (two classes) made from the real photos by crops and flips; made once."""
    from PIL import Image
    folder = os.path.join(work_dir, 'images-%d' % count)
    if os.path.isdir(folder):
        return folder
    source = os.path.join(assets_root(), 'cats_and_dogs_filtered')
    photos = sorted(os.path.join(root, name) for root, _, names in os.walk(source)
                    for name in names if name.endswith('.jpg'))
    rng = random.Random(seed)
    partial = folder + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    for index in range(count):
        path = photos[index * 7919 % len(photos)]    # a prime step: both classes, all photos
        label = os.path.basename(os.path.dirname(path))
        with Image.open(path) as image:
            width, height = image.size
            cut_x, cut_y = rng.randint(0, width // 10), rng.randint(0, height // 10)
            cropped = image.convert('RGB').crop(
                (cut_x, cut_y, width - rng.randint(0, width // 10), height - rng.randint(0, height // 10)))
            if rng.random() < 0.5:
                cropped = cropped.transpose(Image.FLIP_LEFT_RIGHT)
            os.makedirs(os.path.join(partial, label), exist_ok=True)
            cropped.save(os.path.join(partial, label, '%s_%06d.jpg' % (label, index)), quality=90)
    os.replace(partial, folder)
    return folder


def bottlenecks_argv(image_dir, out_dir, *extra):
    return ['bottlenecks', '--image_dir', image_dir, '--graph', mobilenet_graph(),
            '--bottleneck_dir', out_dir] + list(extra)


class SyntheticSplit:
    """A split's serialized examples, made when the writer takes a slice of them."""

    def __init__(self, split, count, centres, seed):
        self.split, self.count, self.centres, self.seed = split, count, centres, seed

    def __len__(self):
        return self.count

    def __getitem__(self, part):
        from tfgraft.records import schema
        start, stop, _ = part.indices(self.count)
        rng = np.random.RandomState([self.seed, start])
        labels = np.arange(start, stop) % len(RECORD_CLASSES)
        vectors = self.centres[labels] + rng.randn(stop - start, RECORD_SIZE).astype(np.float32)
        return [schema.make_example(vector, label, RECORD_CLASSES[label],
                                    '%s/%s_%08d.jpg' % (RECORD_CLASSES[label], self.split,
                                                        start + offset),
                                    '%064x' % (self.seed << 40 | start + offset + 1))
                for offset, (vector, label) in enumerate(zip(vectors, labels))]


def make_records(work_dir, total, seed=0):
    """A bottleneck folder of `total` synthetic records (separable classes); made once."""
    from tfgraft.graphs.registry import GraphCard
    from tfgraft.records import schema, writer
    folder = os.path.join(work_dir, 'records-%d' % total)
    if os.path.isfile(os.path.join(folder, writer.MANIFEST_NAME)):
        return folder
    rng = np.random.RandomState(seed)
    centres = rng.randn(len(RECORD_CLASSES), RECORD_SIZE).astype(np.float32) * 0.1
    card = GraphCard(name='synthetic_2048', input_tensor='input:0', input_kind='image',
                     input_size=(8, 8), input_range=(-1.0, 1.0), bottleneck_tensor='pool:0',
                     bottleneck_size=RECORD_SIZE)
    manifest = {'schema_version': schema.SCHEMA_VERSION, 'bottleneck_size': RECORD_SIZE,
                'classes': RECORD_CLASSES, 'splits': {},
                'graph': {'card': card.to_dict(), 'sha256': 'a' * 64, 'path': '', 'layer': None}}
    splits = {}
    for index, (split, fraction) in enumerate(RECORD_FRACTIONS):
        count = int(total * fraction)
        splits[split] = SyntheticSplit(split, count, centres, seed * 10 + index)
        labels = np.arange(count) % len(RECORD_CLASSES)
        manifest['splits'][split] = {'count': count, 'per_class': {
            name: int((labels == label).sum()) for label, name in enumerate(RECORD_CLASSES)}}
    writer.write_records(folder, splits, RECORD_CLASSES, manifest)
    return folder


def make_model(work_dir, total):
    """(records, a model trained on them) for the evaluate rows; trained once, not measured."""
    records = make_records(work_dir, total)
    model_dir = os.path.join(work_dir, 'model-%d' % total)
    if not os.path.isfile(os.path.join(model_dir, 'checkpoint')):
        shutil.rmtree(model_dir, ignore_errors=True)
        run_child(train_argv(records, model_dir), os.path.join(work_dir, 'commands.log'))
    return records, model_dir


def train_argv(records, out_dir, *extra):
    return ['train', '--bottleneck_dir', records, '--model_dir', out_dir,
            '--how_many_training_steps', TRAIN_STEPS, '--eval_step_interval', TRAIN_STEPS] + list(extra)


def evaluate_argv(prepared, _, *extra):
    records, model_dir = prepared
    return ['evaluate', '--bottleneck_dir', records, '--model_dir', model_dir,
            '--split', 'train'] + list(extra)


STREAMED = ('--max_in_memory_mb', '0')
Row = collections.namedtuple('Row', 'part name prepare argv')

COMMANDS = [
    Row('records', 'verify', make_records,
        lambda records, _: ['verify', '--bottleneck_dir', records]),
    Row('records', 'train', make_records, train_argv),
    Row('records', 'train --max_in_memory_mb 0', make_records,
        lambda records, out: train_argv(records, out, *STREAMED)),
    Row('records', 'evaluate --split train', make_model, evaluate_argv),
    Row('records', 'evaluate --split train --max_in_memory_mb 0', make_model,
        lambda prepared, out: evaluate_argv(prepared, out, *STREAMED)),
    Row('images', 'bottlenecks', make_images, bottlenecks_argv),
]


def run_child(argv, log_path):
    """(wall seconds, peak RSS in MB) of `python -m tfgraft.tools.cli argv`."""
    started = time.time()
    with open(log_path, 'ab') as log:
        child = subprocess.Popen([sys.executable, '-m', 'tfgraft.tools.cli'] + argv,
                                 stdout=log, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        sys.exit('benchmark command failed (exit %d), see %s: %s'
                 % (child.returncode, log_path, ' '.join(argv)))
    return time.time() - started, usage.ru_maxrss / 1024.0


def fresh(work_dir, name):
    folder = os.path.join(work_dir, 'out', name)
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def memory_rows(work_dir, rounds, log_path, parts, sizes):
    for row in COMMANDS:
        if row.part not in parts:
            continue
        row_sizes = sizes[row.part]
        inputs = {size: row.prepare(work_dir, size) for size in row_sizes}
        peaks = {size: [] for size in row_sizes}
        for round_index in range(rounds):
            for size in row_sizes:
                seconds, peak = run_child(row.argv(inputs[size], fresh(work_dir, 'memory')),
                                          log_path)
                peaks[size].append(peak)
                print('  round %d: %s at %d: %.1f s, peak RSS %.0f MB'
                      % (round_index + 1, row.name, size, seconds, peak), flush=True)
        medians = {size: statistics.median(values) for size, values in peaks.items()}
        small, large = min(row_sizes), max(row_sizes)
        print('%-44s ' % row.name + '  '.join('%d: %.0f MB' % (s, medians[s]) for s in row_sizes)
              + '   peak RSS %d / %d: %.2f (target <= 1.5)'
              % (large, small, medians[large] / medians[small]), flush=True)


def beam_throughput(work_dir, rounds, count, log_path):
    image_dir = make_images(work_dir, count)
    ways = [('in-process', [])] + [
        ('beam %d worker%s' % (n, 's' if n > 1 else ''),
         ['--runner', 'DirectRunner', '--direct_num_workers=%d' % n,
          '--direct_running_mode=multi_processing']) for n in BEAM_WORKERS]
    rates = {name: [] for name, _ in ways}
    for round_index in range(rounds):
        for name, extra in ways:
            seconds, _ = run_child(bottlenecks_argv(image_dir, fresh(work_dir, 'beam'), *extra),
                                   log_path)
            rates[name].append(count / seconds)
            print('  round %d: %s: %.1f s, %.1f images/s'
                  % (round_index + 1, name, seconds, count / seconds), flush=True)
    base = rates['in-process']
    for name, _ in ways:
        ratios = [rate / ref for rate, ref in zip(rates[name], base)]
        print('%-16s median %.1f images/s over %d images (x%.2f of in-process, median of the '
              'rounds\' ratios)' % (name, statistics.median(rates[name]), count,
                                   statistics.median(ratios)), flush=True)


def sizes_of(text):
    return tuple(int(size) for size in text.split(','))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--work_dir', help='keep generated images and records here '
                                           '(default: a temp folder)')
    parser.add_argument('--only', default=','.join(PARTS),
                        help='parts to run, comma-separated: records, images, beam (default all)')
    parser.add_argument('--record_sizes', default='20000,200000',
                        help='synthetic records in all, per size (default 20000,200000)')
    parser.add_argument('--image_sizes', default='1000,10000',
                        help='images of the bottlenecks rows (default 1000,10000)')
    parser.add_argument('--beam_images', type=int, default=1000,
                        help='images of the Beam throughput runs (default 1000)')
    args = parser.parse_args()
    parts = args.only.split(',')
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error('unknown part(s) %s: use %s' % (', '.join(sorted(unknown)), ', '.join(PARTS)))
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='tfgraft-scale-')
    os.makedirs(work_dir, exist_ok=True)
    log_path = os.path.join(work_dir, 'commands.log')
    print('work folder %s; the commands\' output goes to %s' % (work_dir, log_path))
    try:
        memory_rows(work_dir, args.rounds, log_path, parts,
                    {'records': sizes_of(args.record_sizes), 'images': sizes_of(args.image_sizes)})
        if 'beam' in parts:
            beam_throughput(work_dir, args.rounds, args.beam_images, log_path)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == '__main__':
    main()
