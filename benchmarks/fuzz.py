"""Seeded fuzz run over the three kinds of untrusted input tfgraft reads; prints a table.

The cases and the worker live in tests/corpus/fuzz.py (tests/test_fuzz_small.py
runs a few of them); this runs many:

    python benchmarks/fuzz.py [--seed 0] [--jpegs 500] [--pbs 100] [--npys 100]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))
from corpus.fuzz import run_fuzz  # noqa: E402  (tests/ is not a package)


def table(results, seed):
    lines = ['seed %d' % seed, '',
             '| input | cases | used / ran / loaded | skipped / refused | crashes | hangs |',
             '|---|---|---|---|---|---|']
    labels = {'jpeg': 'JPEG -> write_bottlenecks', 'pb': '.pb -> load_frozen_backbone + run',
              'npy': '.npy/.npz -> load_weights'}
    for kind, counts in results.items():
        lines.append('| %s | %d | %d | %d | %d | %d |' % (
            labels[kind], counts['cases'], counts['ok'], counts['refused'], counts['crashes'],
            counts['hangs']))
    lines.append('')
    lines.append('payload marker files created: %d' % len(results['npy'].get('markers', [])))
    for counts in results.values():
        lines.extend('- ' + failure for failure in counts['failures'])
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jpegs', type=int, default=500)
    parser.add_argument('--pbs', type=int, default=100)
    parser.add_argument('--npys', type=int, default=100)
    args = parser.parse_args()
    started = time.time()
    results = run_fuzz(args.seed, args.jpegs, args.pbs, args.npys)
    print(table(results, args.seed))
    print('\n%.0f s' % (time.time() - started))
    failed = any(r['crashes'] or r['hangs'] for r in results.values()) or results['npy']['markers']
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
