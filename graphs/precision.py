"""The number format a backbone runs in: float32, or bfloat16 where the CPU has it.

bfloat16 goes through Grappler's oneDNN auto mixed precision pass: convolutions
and matrix products run in bfloat16 (8 bits of mantissa instead of 24), with
casts at the edges, so vectors agree with float32 to about 2-3 significant
digits. Only CPUs with native bfloat16 instructions (AVX-512 BF16 or AMX) run it
faster; elsewhere oneDNN would emulate it, slower than float32, so it is refused.
"""
from tfgraft.graphs.errors import GraftError

PRECISIONS = ('float32', 'bfloat16')
BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16')
CPUINFO = '/proc/cpuinfo'


def cpu_flags(cpuinfo=CPUINFO):
    """The CPU feature flags Linux reports (an empty set elsewhere)."""
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as handle:
            for line in handle:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def check_precision(precision, cpuinfo=CPUINFO):
    """Raise GraftError (one line) when `precision` cannot run well on this CPU."""
    if precision not in PRECISIONS:
        raise GraftError('--precision %s: choose one of %s' % (precision, ', '.join(PRECISIONS)))
    if precision == 'bfloat16' and not cpu_flags(cpuinfo) & set(BFLOAT16_FLAGS):
        raise GraftError('--precision bfloat16 needs a CPU with AVX-512 BF16 or AMX '
                         '(flags %s); this one has neither: use float32' % ' or '.join(BFLOAT16_FLAGS))


def apply_precision(rewrite_options, precision):
    """Set a RewriterConfig so that Grappler converts the graph to `precision`."""
    if precision == 'bfloat16':
        from tensorflow.core.protobuf import rewriter_config_pb2
        rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    return rewrite_options
