"""`tfgraft <command>`: one console script over the tools/ modules.

Each tools/<command>.py module has a docstring (its description), HELP (one
line), add_arguments(parser) and run(args) -> exit code: flags (shared ones
from tools/flags.py) -> one library call -> print. TensorFlow is imported
only inside run() so that --help is instant.
"""
import argparse
import importlib
import os
import sys

COMMANDS = (
    'bottlenecks',
    'standin',
    'verify',
    'train',
    'evaluate',
    'predict',
    'export',
    'retrain',
    'convert',
    'demo',
    'finetune',
    'inspect',
)
# Commands whose module is named otherwise (tools/inspect.py would hide the
# standard library's inspect when the tool runs as a script).
MODULE_OF = {'inspect': 'inspect_path'}


def configure_tensorflow():
    """Settings TensorFlow reads once, when it is first imported (a variable already
    set by the user wins).

    oneDNN's CPU kernels run batched convolutions about twice as fast as TensorFlow's
    own; TensorFlow turns them on by default only on CPUs with AVX-512 VNNI or AMX,
    so tfgraft asks for them everywhere.
    """
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    os.environ.setdefault('ABSL_MIN_LOG_LEVEL', '3')
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')


def _add_command(subparsers, name):
    module = importlib.import_module('tfgraft.tools.' + MODULE_OF.get(name, name))
    parser = subparsers.add_parser(
        name, help=module.HELP, description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    parser.set_defaults(run=module.run,
                        passes_unknown_args=getattr(module, 'PASSES_UNKNOWN_ARGS', False))


def _parse(parser, argv, passes_unknown):
    """parse_args, except that a command with PASSES_UNKNOWN_ARGS gets the options it does
    not know as args.extra_args (bottlenecks hands them to Apache Beam)."""
    args, extra = parser.parse_known_args(argv)
    if extra and not passes_unknown(args):
        parser.error('unrecognized arguments: %s' % ' '.join(extra))
    args.extra_args = extra
    return args


def _one_line(error):
    text = str(error).strip() or type(error).__name__
    return ' '.join(text.split('\n')[0].split())


def guarded(run, args):
    """Run a command; bad input and refused files end in one line, not a traceback."""
    configure_tensorflow()
    from tfgraft.graphs.errors import GraftError
    try:
        from tfgraft.tools.quiet_start import import_tensorflow_quietly
        import_tensorflow_quietly()          # no start-up chatter on stderr; loggers at ERROR
        return run(args) or 0
    except GraftError as error:
        print('tfgraft: error: %s' % _one_line(error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('tfgraft: interrupted; finished work is kept, run again to resume', file=sys.stderr)
        return 130
    except OSError as error:
        where = ' (%s)' % error.filename if getattr(error, 'filename', None) else ''
        print('tfgraft: error: %s%s' % (error.strerror or _one_line(error), where), file=sys.stderr)
        return 1
    except Exception as error:  # a bug or a TensorFlow failure: still one line
        if os.environ.get('TFGRAFT_DEBUG'):
            raise
        print('tfgraft: error: %s: %s (set TFGRAFT_DEBUG=1 for the traceback)'
              % (type(error).__name__, _one_line(error)), file=sys.stderr)
        return 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='tfgraft', description='Transfer learning on images with TensorFlow 1-style graphs.')
    subparsers = parser.add_subparsers(dest='command', metavar='command')
    subparsers.required = True
    for name in COMMANDS:
        _add_command(subparsers, name)
    args = _parse(parser, argv, lambda a: getattr(a, 'passes_unknown_args', False))
    return guarded(args.run, args)


def run_tool(module_name, argv=None):
    """Entry point for `python tools/<command>.py`."""
    module = importlib.import_module('tfgraft.tools.' + module_name)
    parser = argparse.ArgumentParser(
        prog=module_name + '.py', description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    args = _parse(parser, argv, lambda a: getattr(module, 'PASSES_UNKNOWN_ARGS', False))
    return guarded(module.run, args)


if __name__ == '__main__':
    sys.exit(main())
