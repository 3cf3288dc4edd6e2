"""The layer order README.md's architecture section draws, kept by parsing every import.

    base      graphs/errors.py, records/ atomic, storage, pipeline, decode, image_check,
              listing, demo_images, progress: what every layer may use
    backbone  graphs/
    records   records/ (schema, writer, reader, cache, verify, extract)
    engine    engine/
    tools     tools/

A module may import its own layer and the layers below it, never one above.
Besides: no command in tools/ imports another command (tools/cli.py,
flags.py, retrain_flags.py and quiet_start.py are shared), no module imports a private (_name) from another,
and nothing in tests/ imports benchmarks/.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('graphs', 'records', 'engine', 'tools')
BASE = {'graphs.errors', 'records.atomic', 'records.storage', 'records.pipeline', 'records.decode',
        'records.image_check', 'records.listing', 'records.demo_images', 'records.progress'}
LAYERS = ('base', 'backbone', 'records', 'engine', 'tools')
FOLDER_LAYER = {'graphs': 'backbone', 'records': 'records', 'engine': 'engine', 'tools': 'tools'}
# tools/ modules that are not commands: every command may import them.
SHARED_TOOLS = {'tools.cli', 'tools.flags', 'tools.retrain_flags', 'tools.quiet_start',
                'tools.__init__'}


def layer_of(module):
    """'graphs.errors' -> 'base'; 'engine.heads' -> 'engine'."""
    if module in BASE:
        return 'base'
    return FOLDER_LAYER[module.split('.')[0]]


def source_modules():
    for package in PACKAGES:
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith('.py'):
                yield package + '.' + name[:-3], os.path.join(ROOT, package, name)


def imports_of(path):
    """[(line, imported tfgraft module, names taken from it)] of every import, at any depth."""
    found = []
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name[len('tfgraft.'):], ()) for alias in node.names
                      if alias.name.startswith('tfgraft.')]
        elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('tfgraft.'):
            module = node.module[len('tfgraft.'):]
            if module in PACKAGES:     # from tfgraft.graphs import registry: modules
                found += [(node.lineno, module + '.' + alias.name, ()) for alias in node.names]
            else:
                found.append((node.lineno, module, tuple(alias.name for alias in node.names)))
    return found


def test_the_layer_table_covers_real_modules():
    from tfgraft.tools import cli
    modules = dict(source_modules())
    assert BASE <= set(modules) and SHARED_TOOLS <= set(modules)
    commands = {'tools.' + cli.MODULE_OF.get(name, name) for name in cli.COMMANDS}
    assert commands <= set(modules)
    assert {name for name in modules if name.startswith('tools.')} == commands | SHARED_TOOLS
    assert len(modules) > 40


@pytest.mark.parametrize('module,path', list(source_modules()))
def test_no_import_against_the_layer_order(module, path):
    rank = LAYERS.index(layer_of(module))
    for line, imported, names in imports_of(path):
        where = '%s:%d imports %s' % (os.path.relpath(path, ROOT), line, imported)
        assert LAYERS.index(layer_of(imported)) <= rank, \
            '%s (%s above %s)' % (where, layer_of(imported), layer_of(module))
        private = [name for name in names if name.startswith('_')]
        assert not private, '%s private %s' % (where, ', '.join(private))
        if module.startswith('tools.') and module not in SHARED_TOOLS:
            assert imported in SHARED_TOOLS or not imported.startswith('tools.'), \
                '%s: a command imports another command' % where


def test_nothing_in_tests_imports_benchmarks():
    for folder, _, files in os.walk(os.path.join(ROOT, 'tests')):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith('.py') and path != os.path.abspath(__file__):
                text = open(path, encoding='utf-8').read()
                for node in ast.walk(ast.parse(text, path)):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        modules = ([alias.name for alias in node.names]
                                   if isinstance(node, ast.Import) else [node.module or ''])
                        assert not any(m.split('.')[0] == 'benchmarks' for m in modules), path
                assert "'benchmarks'" not in text, '%s names the benchmarks folder' % path


def test_help_loads_no_tensorflow():
    """Every command's parser is built from the tables without importing TensorFlow."""
    import subprocess
    import sys
    code = ('import contextlib, io, sys\n'
            'from tfgraft.tools import cli\n'
            'with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n'
            '    cli.main(["finetune", "--help"])\n'
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]', out.stdout[:300]


def test_flag_choices_match_their_tables():
    """tools/flags.py reads the head and optimizer tables, and copies the network names."""
    from tfgraft.engine.heads import HEADS
    from tfgraft.engine.optimizers import OPTIMIZERS
    from tfgraft.graphs import networks
    from tfgraft.tools import flags, standin
    assert flags.HEADS == HEADS
    assert flags.OPTIMIZERS == tuple(OPTIMIZERS)
    assert flags.NPY_NETWORKS == networks.npy_networks()
    assert standin.KINDS == networks.standin_networks()
