"""Seeded fuzz cases over the three kinds of untrusted input tfgraft reads.

(a) mutated JPEGs in a class-folder layout through records.extract.write_bottlenecks
    with the real MobileNet backbone: each image is used or skipped;
(b) mutated frozen graphs (.pb) through graphs.frozen.load_frozen_backbone, run on
    one image when accepted: refused with GraftError or accepted-and-ran;
(c) mutated weight files (.npy pickles, .npz) through graphs.npy_weights.load_weights:
    refused or loaded; pickle payloads must never run (a marker file tells).

Every case runs in a worker subprocess (this file, run with --worker) with a
timeout: a worker killed by a signal is a crash, one that does not answer in
time is a hang (it is killed and restarted). Any exception other than
GraftError is a crash too. tests/test_fuzz_small.py runs a few cases;
benchmarks/fuzz.py runs many and prints the table.
"""
import json
import os
import pickle
import pickletools
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN_OPS = ('WriteFile', 'ReadFile', 'PyFunc', 'EagerPyFunc', 'Save', 'MatchingFiles')
TINY_FLAGS = {'input_tensor': 'input:0', 'bottleneck_tensor': 'out:0', 'input_size': 32,
              'input_range': [-1.0, 1.0]}


def assets_root():
    return os.environ.get('TFGRAFT_ASSETS') or os.path.join(ROOT, '..', 'shared', 'assets')


def asset(*parts):
    path = os.path.join(assets_root(), *parts)
    if not os.path.exists(path):
        raise SystemExit('real asset missing: %s (set TFGRAFT_ASSETS)' % path)
    return path


# ---------------------------------------------------------------- byte mutations

def mutate_bytes(rng, data, keep=0):
    """One random damage to `data`, leaving the first `keep` bytes alone."""
    data = bytearray(data)
    span = max(len(data) - keep, 1)
    kind = rng.integers(4)
    at = keep + int(rng.integers(span))
    if kind == 0:  # byte flips
        for _ in range(int(rng.integers(1, 17))):
            data[(keep + int(rng.integers(span))) % len(data)] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # truncation
        del data[at:]
    elif kind == 2:  # inserted run
        run = rng.integers(256, size=int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
        data[at:at] = run
    else:  # deleted run
        del data[at:at + int(rng.integers(1, 4096))]
    return bytes(data)


def corrupt_jpeg_header(rng, data):
    """Damage a header field: frame size (huge or zero), a segment length, or a marker."""
    data = bytearray(data)
    frames = [m.start() for m in re.finditer(rb'\xff[\xc0-\xc2]', bytes(data))]
    segments = [m.start() for m in re.finditer(rb'\xff[\xc4\xdb\xda\xe0-\xef]', bytes(data[:4096]))]
    kind = rng.integers(4)
    if kind == 0 and frames:  # SOFn: FF Cn len(2) precision(1) height(2) width(2) components(1)
        at = frames[0]
        height, width = [(0xFFFF, 0xFFFF), (0, 0), (0xFFFF, 1), (1, 0xFFFF)][int(rng.integers(4))]
        data[at + 5:at + 9] = struct.pack('>HH', height, width)
    elif kind == 1 and frames:  # component count / precision
        data[frames[0] + 4 + int(rng.integers(2)) * 5] = int(rng.integers(256))
    elif kind == 2 and segments:  # segment length
        at = segments[int(rng.integers(len(segments)))]
        data[at + 2:at + 4] = struct.pack('>H', int(rng.choice([0, 1, 2, 0xFFFF, rng.integers(65536)])))
    else:  # lost start-of-image or a marker turned into another
        at = segments[int(rng.integers(len(segments)))] if segments and rng.integers(2) else 0
        data[at + 1] = int(rng.integers(256))
    return bytes(data)


def make_jpegs(rng, sources, count, folder):
    """`count` mutated copies of the source photos under folder/{cats,dogs}/; their paths."""
    paths = []
    for index in range(count):
        source = sources[int(rng.integers(len(sources)))]
        with open(source, 'rb') as handle:
            data = handle.read()
        data = corrupt_jpeg_header(rng, data) if rng.integers(3) == 0 else mutate_bytes(rng, data, 2)
        path = os.path.join(folder, ('cats', 'dogs')[index % 2], 'fuzz_%04d.jpg' % index)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(data)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- graph mutations

def tiny_graph_def():
    """input [N, 32, 32, 3] -> conv -> relu -> mean -> out [N, 8]."""
    import tensorflow as tf
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 32, 32, 3], name='input')
        weights = tf.constant(np.random.default_rng(0).standard_normal((3, 3, 3, 8), np.float32))
        net = tf.nn.relu(tf.nn.conv2d(images, weights, 2, 'SAME'))
        tf.reduce_mean(net, axis=[1, 2], name='out')
    return graph.as_graph_def()


def corrupt_attr(rng, node):
    """Damage one attribute of a node: types, shapes, lists, strings, tensors."""
    from tensorflow.core.framework import types_pb2
    if not node.attr:
        node.input.append('missing_node:0')
        return
    key = sorted(node.attr)[int(rng.integers(len(node.attr)))]
    value = node.attr[key]
    which = value.WhichOneof('value')
    huge = int(rng.choice([0, -7, 1 << 31, 1 << 40]))
    if which == 'type':
        value.type = int(rng.choice([types_pb2.DT_STRING, types_pb2.DT_RESOURCE,
                                     types_pb2.DT_VARIANT, 99, types_pb2.DT_INT8]))
    elif which == 'list' and value.list.i:
        value.list.i[int(rng.integers(len(value.list.i)))] = huge
    elif which == 's':
        value.s = bytes(rng.choice([b'NCHW', b'FOO', b'', b'\xff' * 9]))
    elif which == 'shape':
        dims = value.shape.dim or [value.shape.dim.add()]
        dims[int(rng.integers(len(dims)))].size = huge
    elif which == 'tensor':
        tensor = value.tensor
        choice = rng.integers(3)
        if choice == 0 and tensor.tensor_shape.dim:
            tensor.tensor_shape.dim[int(rng.integers(len(tensor.tensor_shape.dim)))].size = huge
        elif choice == 1:
            tensor.dtype = int(rng.choice([types_pb2.DT_STRING, types_pb2.DT_INT64, 99]))
        else:
            tensor.tensor_content = tensor.tensor_content[:int(rng.integers(len(tensor.tensor_content) + 1))]
    elif which == 'i':
        value.i = huge
    elif which == 'f':
        value.f = float(rng.choice([np.nan, np.inf, -1e30]))
    else:
        del node.attr[key]


def mutate_graph(rng, graph_def):
    """Serialized bytes of a damaged copy: forbidden op, attr damage, rewiring or byte damage."""
    from tensorflow.core.framework import graph_pb2
    copy = graph_pb2.GraphDef()
    copy.CopyFrom(graph_def)
    node = copy.node[int(rng.integers(len(copy.node)))]
    kind = rng.integers(5)
    if kind == 0:
        node.op = FORBIDDEN_OPS[int(rng.integers(len(FORBIDDEN_OPS)))]
    elif kind in (1, 2):
        corrupt_attr(rng, node)
    elif kind == 3:  # rewiring: a self loop, a missing input or an input dropped
        choice = rng.integers(3)
        if choice == 0 or not node.input:
            node.input.append(node.name)
        elif choice == 1:
            node.input[0] = 'no/such/node'
        else:
            del node.input[:]
    data = copy.SerializeToString()
    return mutate_bytes(rng, data) if kind == 4 else data


def make_graphs(rng, count, folder):
    """[(path, flags)]: mutated MobileNet and tiny graphs (.pb)."""
    import tensorflow as tf
    from tfgraft.graphs.standin import build_inception_standin_graph_def
    real = tf.compat.v1.GraphDef()
    with open(asset('mobilenet_v1_0.25_128', 'frozen_graph.pb'), 'rb') as handle:
        real.ParseFromString(handle.read())
    sources = [(real, {}), (tiny_graph_def(), TINY_FLAGS),
               (build_inception_standin_graph_def(), {})]
    os.makedirs(folder, exist_ok=True)
    cases = []
    for index in range(count):
        graph_def, flags = sources[(0, 0, 1, 1, 2)[index % 5]]
        path = os.path.join(folder, 'fuzz_%04d.pb' % index)
        with open(path, 'wb') as handle:
            handle.write(mutate_graph(rng, graph_def))
        cases.append((path, flags))
    return cases


# ---------------------------------------------------------------- weight-file mutations

class Payload:
    """Unpickling this calls function(argument): what a hostile weight file does."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def payloads(marker):
    touch = 'touch %s' % marker
    return [(os.system, touch), (eval, '__import__("os").system(%r)' % touch),
            (exec, 'open(%r, "w").close()' % marker), (subprocess.call, ['touch', marker])]


def pickle_start(path):
    from numpy.lib import format as npy_format
    with open(path, 'rb') as handle:
        npy_format.read_magic(handle)
        npy_format.read_array_header_1_0(handle)
        return handle.tell()


def swap_globals(rng, data, start):
    """One global the pickle names (GLOBAL, or two strings before STACK_GLOBAL)
    retargeted to os.system, builtins.eval or the like."""
    module, name = [(b'os', b'system'), (b'builtins', b'eval'), (b'posix', b'system'),
                    (b'builtins', b'getattr'), (b'subprocess', b'call')][int(rng.integers(5))]
    ops = [(op.name, arg, start + pos) for op, arg, pos in pickletools.genops(data[start:])
           if op.name != 'MEMOIZE']
    edits = []  # (position, old length, new bytes)
    for index, (op, arg, pos) in enumerate(ops):
        if op == 'GLOBAL':
            edits.append([(pos, len(arg) + 3, b'c' + module + b'\n' + name + b'\n')])
        elif op == 'STACK_GLOBAL' and ops[index - 1][0] == ops[index - 2][0] == 'SHORT_BINUNICODE':
            edits.append([(p, 2 + len(a.encode()), b'\x8c' + bytes([len(text)]) + text)
                          for (_, a, p), text in zip(ops[index - 2:index], (module, name))])
    for pos, length, text in sorted(edits[int(rng.integers(len(edits)))], reverse=True):
        data = data[:pos] + text + data[pos + length:]
    return data


def make_weight_files(rng, count, folder, marker):
    """Mutated .npy pickles and .npz files of the stand-in AlexNet weights; their paths."""
    from tfgraft.graphs.npy_standin import standin_weights
    from tfgraft.graphs.npy_weights import save_weights
    os.makedirs(folder, exist_ok=True)
    weights = standin_weights('alexnet', width_divisor=8)
    npy = os.path.join(folder, 'source.npy')
    np.save(npy, {layer: list(pair) for layer, pair in weights.items()}, allow_pickle=True)
    npz = save_weights(weights, os.path.join(folder, 'source.npz'))
    with open(npy, 'rb') as handle:
        npy_data = handle.read()
    with open(npz, 'rb') as handle:
        npz_data = handle.read()
    start = pickle_start(npy)
    hostile = payloads(marker)
    paths = []
    for index in range(count):
        kind = rng.integers(5)
        if kind == 0:
            data, suffix = swap_globals(rng, npy_data, start), '.npy'
        elif kind == 1:  # a whole hostile pickle, alone or inside a weight dict
            function, argument = hostile[int(rng.integers(len(hostile)))]
            held = Payload(function, argument)
            if rng.integers(2):
                held = {'conv1': [held, held]}
            data = npy_data[:start] + pickle.dumps(held, protocol=int(rng.integers(2, 6)))
            suffix = '.npy'
        elif kind == 2:
            data, suffix = mutate_bytes(rng, npy_data), '.npy'
        elif kind == 3:
            data, suffix = mutate_bytes(rng, npz_data), '.npz'
        else:  # npz member header damaged: huge shape, object dtype, other order
            data = npz_data
            headers = [m.start() for m in re.finditer(rb"\{'descr'", data)]
            at = headers[int(rng.integers(len(headers)))]
            end = data.index(b'\n', at)  # the header is padded with spaces up to here
            field = rng.choice([b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,)}",
                                b"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}",
                                b"{'descr': '<f4', 'fortran_order': True, 'shape': (-1, 4)}",
                                b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}"])
            data, suffix = data[:at] + bytes(field).ljust(end - at)[:end - at] + data[end:], '.npz'
        path = os.path.join(folder, 'fuzz_%04d%s' % (index, suffix))
        with open(path, 'wb') as handle:
            handle.write(data)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- the worker subprocess

def _outcome(job):
    """('ok'|'refused'|'error', detail) for one case, in the worker."""
    from tfgraft.graphs.errors import GraftError
    try:
        return 'ok', job()
    except GraftError as error:
        return 'refused', str(error)[:200]
    except BaseException as error:  # anything else is what the fuzz run looks for
        return 'error', '%s: %s' % (type(error).__name__, ' '.join(str(error).split())[:300])


def _run_on_image(backbone, image):
    """The bottleneck of one image, through the pipeline's own session loop."""
    from tfgraft.records.extract import compute_bottlenecks
    vectors = []
    compute_bottlenecks([image], backbone, 1, lambda index, vector: vectors.append(vector),
                        progress=False)
    return [list(vector.shape) for vector in vectors]


def worker_main(mobilenet_pb, image):
    """Answer one JSON line per JSON request on the original stdout."""
    channel = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # anything libraries print goes to stderr, not into the answers
    from tfgraft.graphs.frozen import load_frozen_backbone
    from tfgraft.graphs.npy_weights import load_weights
    from tfgraft.records.extract import write_bottlenecks
    from tfgraft.records.reader import read_manifest
    backbone = load_frozen_backbone(mobilenet_pb)
    channel.write('ready\n')
    channel.flush()
    for line in sys.stdin:
        case = json.loads(line)
        if case['kind'] == 'jpeg':
            def job():
                write_bottlenecks(case['dir'], backbone, case['out'], batch_size=16, progress=False)
                manifest = read_manifest(case['out'])
                return {'used': sum(s['count'] for s in manifest['splits'].values()),
                        'skipped': len(manifest['skipped'])}
        elif case['kind'] == 'pb':
            def job():
                flags = dict(case['flags'])
                if 'input_range' in flags:
                    flags['input_range'] = tuple(flags['input_range'])
                return _run_on_image(load_frozen_backbone(case['path'], **flags), image)
        else:
            def job():
                return len(load_weights(case['path']))
        outcome, detail = _outcome(job)
        channel.write(json.dumps({'outcome': outcome, 'detail': detail}) + '\n')
        channel.flush()


class Worker:
    """A worker subprocess; run(case, timeout) -> (outcome, detail), outcome in
    ok / refused / error / crash (killed by a signal or exited) / hang."""

    def __init__(self, mobilenet_pb, image, log_path):
        self.command = [sys.executable, os.path.abspath(__file__), '--worker', mobilenet_pb, image]
        self.log = open(log_path, 'ab')
        self.process = None

    def start(self):
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, cwd=ROOT)
        if self._read_line(300) != 'ready':
            raise RuntimeError('fuzz worker did not start; see %s' % self.log.name)

    def _read_line(self, timeout):
        """One answer line, '' if the worker died, None if it did not answer in time."""
        deadline, data = time.time() + timeout, b''
        fd = self.process.stdout.fileno()
        while not data.endswith(b'\n'):
            left = deadline - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return ''
            data += chunk
        return data.decode().strip()

    def run(self, case, timeout):
        if self.process is None:
            self.start()
        try:
            self.process.stdin.write((json.dumps(case) + '\n').encode())
            self.process.stdin.flush()
            line = self._read_line(timeout)
        except BrokenPipeError:  # died before the case was sent
            line = ''
        if line:
            answer = json.loads(line)
            return answer['outcome'], answer['detail']
        if line is None:
            self.process.kill()
        code = self.process.wait()
        self.process = None
        if line is None:
            return 'hang', 'no answer in %ds' % timeout
        return 'crash', 'killed by signal %d' % -code if code < 0 else 'exited with %d' % code

    def close(self):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()
            self.process = None
        self.log.close()


# ---------------------------------------------------------------- the three runs

def new_counts():
    return {'cases': 0, 'ok': 0, 'refused': 0, 'crashes': 0, 'hangs': 0, 'failures': []}


def tally(counts, name, outcome, detail, ok=1, refused=0):
    if outcome == 'ok':
        counts['ok'] += ok
        counts['refused'] += refused
    elif outcome == 'refused':
        counts['refused'] += 1
    else:
        counts['hangs' if outcome == 'hang' else 'crashes'] += 1
        counts['failures'].append('%s: %s %s' % (name, outcome, detail))


def fuzz_jpegs(worker, rng, sources, count, work, chunk=50):
    """Mutated JPEGs through write_bottlenecks, `chunk` per call; a failing chunk is
    re-run one image at a time so that each crash names its file."""
    counts = new_counts()
    paths = make_jpegs(rng, sources, count, os.path.join(work, 'jpegs'))
    counts['cases'] = len(paths)
    for first in range(0, len(paths), chunk):
        group = paths[first:first + chunk]
        outcome, detail = _jpeg_group(worker, group, work, 'chunk_%04d' % first, 60 + 2 * len(group))
        if outcome == 'ok':
            counts['ok'] += detail['used']
            counts['refused'] += detail['skipped']
            continue
        for path in group:
            outcome, detail = _jpeg_group(worker, [path], work, os.path.basename(path), 60)
            if outcome == 'ok':
                tally(counts, path, outcome, detail, detail['used'], detail['skipped'])
            else:
                tally(counts, path, outcome, detail)
    return counts


def _jpeg_group(worker, group, work, name, timeout):
    image_dir = os.path.join(work, 'runs', name, 'images')
    for path in group:
        target = os.path.join(image_dir, os.path.basename(os.path.dirname(path)))
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, target)
    case = {'kind': 'jpeg', 'dir': image_dir, 'out': os.path.join(work, 'runs', name, 'out')}
    return worker.run(case, timeout)


def fuzz_graphs(worker, rng, count, work):
    counts = new_counts()
    for path, flags in make_graphs(rng, count, os.path.join(work, 'graphs')):
        counts['cases'] += 1
        outcome, detail = worker.run({'kind': 'pb', 'path': path, 'flags': flags}, 120)
        tally(counts, path, outcome, detail)
    return counts


def fuzz_weights(worker, rng, count, work):
    counts = new_counts()
    marker_dir = os.path.join(work, 'markers')
    os.makedirs(marker_dir, exist_ok=True)
    for path in make_weight_files(rng, count, os.path.join(work, 'weights'),
                                  os.path.join(marker_dir, 'payload_ran')):
        counts['cases'] += 1
        outcome, detail = worker.run({'kind': 'npy', 'path': path}, 60)
        tally(counts, path, outcome, detail)
    counts['markers'] = os.listdir(marker_dir)
    return counts


def run_fuzz(seed=0, jpegs=500, pbs=100, npys=100, work=None, sources_per_class=3):
    """{'jpeg': counts, 'pb': counts, 'npy': counts}; counts as new_counts()."""
    rng = np.random.default_rng(seed)
    photos = asset('cats_and_dogs_filtered', 'train')
    sources = [os.path.join(photos, name, file_name) for name in ('cats', 'dogs')
               for file_name in sorted(os.listdir(os.path.join(photos, name)))[:sources_per_class]]
    owned = work is None
    work = work or tempfile.mkdtemp(prefix='tfgraft_fuzz_')
    worker = Worker(asset('mobilenet_v1_0.25_128', 'frozen_graph.pb'), sources[0],
                    os.path.join(work, 'worker.log'))
    results = {}
    try:
        results = {'jpeg': fuzz_jpegs(worker, rng, sources, jpegs, work),
                   'pb': fuzz_graphs(worker, rng, pbs, work),
                   'npy': fuzz_weights(worker, rng, npys, work)}
    finally:
        worker.close()
        if owned and results and not any(r['crashes'] or r['hangs'] for r in results.values()):
            shutil.rmtree(work, ignore_errors=True)
        elif owned:
            print('fuzz cases kept in %s' % work, file=sys.stderr)
    return results


if __name__ == '__main__' and sys.argv[1:2] == ['--worker']:
    worker_main(*sys.argv[2:4])
