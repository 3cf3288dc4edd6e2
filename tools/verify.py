"""Check a bottleneck directory: every record's CRC and schema, and the manifest.

Reads every record of every shard; checks the vector size against the graph
card, labels against labels.txt, no image twice in a split, the manifest's
counts against the shards, and that no shard is missing or unlisted. Prints
the records per split, or each problem (exit status 1).

example:
  tfgraft verify --bottleneck_dir /tmp/bottlenecks
"""
HELP = 'check bottleneck records against their manifest (CRCs, schema, counts)'


def add_arguments(parser):
    parser.add_argument('--bottleneck_dir', required=True, help='folder written by `tfgraft bottlenecks`')


def run(args):
    import sys
    from tfgraft.records.reader import read_manifest
    from tfgraft.records.schema import SPLITS
    from tfgraft.records.verify import verify_records
    problems = verify_records(args.bottleneck_dir)
    if problems:
        for problem in problems:
            print('problem: %s' % problem, file=sys.stderr)
        print('%s: %d problem(s)' % (args.bottleneck_dir, len(problems)), file=sys.stderr)
        return 1
    manifest = read_manifest(args.bottleneck_dir)
    for split in [name for name in SPLITS if name in manifest['splits']]:
        info = manifest['splits'][split]
        per_class = ', '.join('%s %d' % item for item in info['per_class'].items())
        print('%-10s %6d records in %d shard(s) (%s)'
              % (split, info['count'], len(info['shards']), per_class))
    print('OK: %s (%d classes, %d-d bottlenecks from %s, graph sha256 %s)'
          % (args.bottleneck_dir, len(manifest['classes']), manifest['bottleneck_size'],
             manifest['graph']['card']['name'], manifest['graph']['sha256'][:12]))
    return 0


if __name__ == '__main__':
    import sys
    from tfgraft.tools.cli import run_tool
    sys.exit(run_tool('verify'))
