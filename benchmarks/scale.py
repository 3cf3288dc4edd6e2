"""Scale: peak memory of each command at 10x the data, and Beam throughput per worker count.

Each command row of COMMANDS runs as a child process (`python -m tfgraft.tools.cli ...`)
at every data size of the row, in fresh output folders, `--rounds` times interleaved; the
child's peak RSS comes from os.wait4's rusage. Printed per row: the median peak RSS at each
size and the ratio of the largest size to the smallest (target <= 1.5).

Images are made by this script from the real cats_and_dogs_filtered photos (small random
crops and mirror flips, re-encoded as JPEG) into the work folder, one class per folder.
Beam throughput: `tfgraft bottlenecks --runner DirectRunner` with 1 and 2 worker processes
(multi_processing), and the in-process path for reference, on a generated image set, from
an empty bottleneck folder (`--beam_images`, default 1000); images/s over the command's
whole wall time, start-up included.

    python benchmarks/scale.py [--rounds 5] [--work_dir DIR] [--only memory,beam] [--beam_images 1000]

To add a command's row: a Row in COMMANDS with its sizes, a `prepare(work_dir, size)` that
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

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

HERE = os.path.dirname(os.path.abspath(__file__))
BEAM_WORKERS = (1, 2)


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


Row = collections.namedtuple('Row', 'name sizes prepare argv')

COMMANDS = [
    Row('bottlenecks', (1000, 10000), make_images, bottlenecks_argv),
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


def memory_rows(work_dir, rounds, log_path):
    for row in COMMANDS:
        inputs = {size: row.prepare(work_dir, size) for size in row.sizes}
        peaks = {size: [] for size in row.sizes}
        for round_index in range(rounds):
            for size in row.sizes:
                seconds, peak = run_child(row.argv(inputs[size], fresh(work_dir, row.name)), log_path)
                peaks[size].append(peak)
                print('  round %d: %s at %d: %.1f s, peak RSS %.0f MB'
                      % (round_index + 1, row.name, size, seconds, peak), flush=True)
        medians = {size: statistics.median(values) for size, values in peaks.items()}
        small, large = min(row.sizes), max(row.sizes)
        print('%-12s ' % row.name + '  '.join('%d: %.0f MB' % (s, medians[s]) for s in row.sizes)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--work_dir', help='keep generated images here (default: a temp folder)')
    parser.add_argument('--only', default='memory,beam', help='memory, beam or both')
    parser.add_argument('--beam_images', type=int, default=1000,
                        help='images of the Beam throughput runs (default 1000)')
    args = parser.parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='tfgraft-scale-')
    os.makedirs(work_dir, exist_ok=True)
    log_path = os.path.join(work_dir, 'commands.log')
    print('work folder %s; the commands\' output goes to %s' % (work_dir, log_path))
    try:
        if 'memory' in args.only:
            memory_rows(work_dir, args.rounds, log_path)
        if 'beam' in args.only:
            beam_throughput(work_dir, args.rounds, args.beam_images, log_path)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == '__main__':
    main()
