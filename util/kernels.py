"""Which kernels MXNet runs, for the same numbers on every machine (README, "Reproducibility"):
oneDNN's instruction-set cap DNNL_MAX_CPU_ISA=AVX2 and OMP_NUM_THREADS=1, set by pin_cpu_kernels()
from util/__init__.py and issegm/__init__.py before the project imports MXNet (the user's values
or CBST_NATIVE_CPU=1 win), recorded as "cpu_isa" and "cpu_threads" in run.json and metrics.json;
and `--deterministic`'s MXNet switches for GPUs. No MXNet here: `--help` must not import it.
"""
import os
import sys

__all__ = ['ISA_CAP_VARIABLE', 'REPRODUCIBLE_ISA', 'THREADS_VARIABLE', 'REPRODUCIBLE_THREADS',
           'NATIVE_VARIABLE', 'ONEDNN_ISAS', 'pin_cpu_kernels', 'isa_record', 'threads_record',
           'isa_log_line', 'threads_log_line', 'effective_isa', 'processor_isa', 'known_cap',
           'DETERMINISM_SWITCHES', 'set_deterministic', 'log_kernels']

ISA_CAP_VARIABLE = 'DNNL_MAX_CPU_ISA'
REPRODUCIBLE_ISA = 'AVX2'
# oneDNN's convolutions sum in another order with another number of OpenMP threads (measured:
# benchmarks/bench_cpu_isa.py --threads); MXNet 1.9.1 runs half the processor's logical CPUs
# without OMP_NUM_THREADS or MXNET_OMP_MAX_THREADS (apache/mxnet src/engine/openmp.cc,
# OpenMP::OpenMP): 1 on the 2-CPU machines the README's numbers come from.
THREADS_VARIABLE = 'OMP_NUM_THREADS'
REPRODUCIBLE_THREADS = '1'
MXNET_THREADS_VARIABLE = 'MXNET_OMP_MAX_THREADS'
NATIVE_VARIABLE = 'CBST_NATIVE_CPU'
# The pinned variables: the project's value, and the variables that are the user's choice.
PINS = ((ISA_CAP_VARIABLE, REPRODUCIBLE_ISA, (ISA_CAP_VARIABLE,)),
        (THREADS_VARIABLE, REPRODUCIBLE_THREADS, (THREADS_VARIABLE, MXNET_THREADS_VARIABLE)))
# CBST_DEFAULT_VARIABLE is set beside the project's value of VARIABLE, so a child process knows
# the value it inherits is the project's default rather than the user's choice.
MARKER_PREFIX = 'CBST_DEFAULT_'
_ON = ('1', 'true', 'yes')

# oneDNN 2.4's DNNL_MAX_CPU_ISA values for x86-64 processors (its dispatcher-control
# documentation; case matters: any other value is ignored, measured with DNNL_VERBOSE=1), oldest
# first, with the /proc/cpuinfo flags each needs.
_AVX512_CORE = ('avx512f', 'avx512bw', 'avx512vl', 'avx512dq')
ONEDNN_ISAS = (
    ('SSE41', ('sse4_1',)),
    ('AVX', ('avx',)),
    ('AVX2', ('avx2',)),
    ('AVX512_CORE', _AVX512_CORE),
    ('AVX512_CORE_VNNI', _AVX512_CORE + ('avx512_vnni',)),
    ('AVX512_CORE_BF16', _AVX512_CORE + ('avx512_vnni', 'avx512_bf16')),
    ('AVX512_CORE_AMX', _AVX512_CORE + ('avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_int8',
                                        'amx_bf16')),
)
# Its Xeon Phi values: on any other processor they cap at AVX2 (a Phi counts as AVX2 here).
_PHI_CAPS = ('AVX512_MIC', 'AVX512_MIC_4OPS')
_NO_CAP = 'ALL'  # oneDNN's own "no cap" value
# --deterministic: the variables and the values it sets.
DETERMINISM_SWITCHES = (('MXNET_ENFORCE_DETERMINISM', '1'), ('MXNET_CUDNN_AUTOTUNE_DEFAULT', '0'))

_state = {}  # what pin_cpu_kernels found and did, once per process


def pin_cpu_kernels():
    """Set DNNL_MAX_CPU_ISA=AVX2 and OMP_NUM_THREADS=1 (PINS) unless the user chose them or
    CBST_NATIVE_CPU=1 asks for the machine's own; the first call decides. Returns, per
    variable, requested (the value, None for unset), set_by ('default', 'environment' or
    NATIVE_VARIABLE) and before_mxnet (False when set here after MXNet was imported: oneDNN
    reads its cap at its first kernel, OpenMP its threads when MXNet is loaded)."""
    if not _state:
        native = os.environ.get(NATIVE_VARIABLE, '').strip().lower() in _ON
        for variable, value, users in PINS:
            _state[variable] = _pin(variable, value, users, native)
    return {variable: dict(decision) for variable, decision in _state.items()}


def _pin(variable, value, users, native):
    env, marker = os.environ, MARKER_PREFIX + variable
    inherited_default = env.get(marker) is not None and env.get(variable) == env.get(marker)
    if inherited_default and native:  # our parent's default, then the user asked for native
        env.pop(variable, None)
    set_here = False
    if any(name in env for name in users):
        set_by = 'default' if inherited_default else 'environment'
    elif native:
        set_by = NATIVE_VARIABLE
    else:
        env[variable] = env[marker] = value
        set_by, set_here = 'default', True
    return {'requested': env.get(variable), 'set_by': set_by,
            'before_mxnet': not (set_here and 'mxnet' in sys.modules)}


def _cpu_flags(cpuinfo='/proc/cpuinfo'):
    """The first processor's flags in /proc/cpuinfo (None where there is none: not Linux)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return None


def processor_isa(flags):
    """The newest oneDNN ISA value whose flags the processor has (None: no x86 flags known)."""
    if not flags:
        return None
    have = [name for name, needs in ONEDNN_ISAS if set(needs) <= flags]
    return have[-1] if have else None


def effective_isa(requested, flags):
    """The instruction set oneDNN runs: the processor's (processor_isa) lowered to the cap
    `requested` when that is one of oneDNN's values (oneDNN ignores any other value, and ALL
    means no cap). libmxnet.so does not export oneDNN's own dnnl_get_effective_cpu_isa, so
    this restates its rule from the same inputs; tests/test_cpu_kernels.py checks it against
    DNNL_VERBOSE's `isa:` line."""
    best = processor_isa(flags)
    cap = 'AVX2' if requested in _PHI_CAPS else requested
    names = [name for name, _ in ONEDNN_ISAS]
    if best is None or cap not in names:
        return best
    return names[min(names.index(best), names.index(cap))]


def known_cap(value):
    """Whether oneDNN 2.4 knows `value` as a DNNL_MAX_CPU_ISA (None, unset, counts as known)."""
    return value is None or value in [name for name, _ in ONEDNN_ISAS] + list(_PHI_CAPS) + [
        _NO_CAP]


def isa_record(cpuinfo='/proc/cpuinfo'):
    """run.json's and metrics.json's "cpu_isa": the cap oneDNN reads (requested, None for
    none), who chose it (set_by), the instruction set it runs (effective) and the processor's
    best (processor), how effective was found (source), and whether the cap was set before
    MXNet was imported (before_mxnet)."""
    decision = pin_cpu_kernels()[ISA_CAP_VARIABLE]
    flags = _cpu_flags(cpuinfo)
    requested = decision['requested']
    return {'requested': requested, 'set_by': decision['set_by'],
            'effective': effective_isa(requested, flags), 'processor': processor_isa(flags),
            'source': '%s and the /proc/cpuinfo flags (oneDNN 2.4\'s rule; libmxnet.so does not '
                      'export its query)' % ISA_CAP_VARIABLE,
            'before_mxnet': decision['before_mxnet']}


def isa_log_line(record=None):
    """The line each script logs once: the cap, the instruction set run, and what is wrong
    with it (a value oneDNN ignores, a cap set after MXNet was imported)."""
    record = record or isa_record()
    requested, set_by = record['requested'], record['set_by']
    how = {'default': 'the default; %s=1 for the processor\'s own' % NATIVE_VARIABLE,
           'environment': 'from the environment',
           NATIVE_VARIABLE: '%s=1' % NATIVE_VARIABLE}[set_by]
    line = 'CPU kernels: oneDNN instruction set %s (%s=%s, %s; the processor has %s)' % (
        record['effective'] or 'unknown', ISA_CAP_VARIABLE,
        requested if requested is not None else '(unset)', how, record['processor'] or 'unknown')
    if not known_cap(requested):
        line += '; warning: oneDNN ignores %s=%r (its values: %s; case matters)' % (
            ISA_CAP_VARIABLE, requested, ', '.join([name for name, _ in ONEDNN_ISAS]
                                                   + list(_PHI_CAPS) + [_NO_CAP]))
    if not record['before_mxnet']:
        line += ('; warning: MXNet was imported before the cap was set, which counts only if '
                 'no oneDNN kernel ran before')
    return line


def mxnet_threads():
    """The OpenMP threads MXNet 1.9.1 runs its CPU operators with: MXNET_OMP_MAX_THREADS, else
    OMP_NUM_THREADS, else half the logical CPUs this process may use (apache/mxnet
    src/engine/openmp.cc, OpenMP::OpenMP, on x86-64)."""
    for variable in (MXNET_THREADS_VARIABLE, THREADS_VARIABLE):
        try:
            return int(os.environ[variable].split(',')[0])
        except (KeyError, ValueError):
            pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return max((cpus or 1) // 2, 1)


def threads_record():
    """run.json's and metrics.json's "cpu_threads": OMP_NUM_THREADS as set (requested, None for
    unset), who chose it (set_by), the OpenMP threads MXNet runs (effective, mxnet_threads) and
    whether it was set before MXNet was imported (before_mxnet)."""
    decision = pin_cpu_kernels()[THREADS_VARIABLE]
    return {'requested': decision['requested'], 'set_by': decision['set_by'],
            'effective': mxnet_threads(), 'before_mxnet': decision['before_mxnet']}


def threads_log_line(record=None):
    """The line each script logs once of the OpenMP threads (a warning when set too late)."""
    record = record or threads_record()
    how = {'default': 'the default; %s=1 for MXNet\'s own choice, half the logical CPUs'
                      % NATIVE_VARIABLE,
           'environment': 'from the environment',
           NATIVE_VARIABLE: '%s=1' % NATIVE_VARIABLE}[record['set_by']]
    line = 'CPU threads: MXNet runs %d OpenMP thread(s) (%s=%s, %s)' % (
        record['effective'], THREADS_VARIABLE,
        record['requested'] if record['requested'] is not None else '(unset)', how)
    if not record['before_mxnet']:
        line += ('; warning: MXNet was imported before %s was set, so it runs its own number '
                 'of threads' % THREADS_VARIABLE)
    return line


def set_deterministic():
    """`--deterministic`: MXNet's DETERMINISM_SWITCHES in the environment (call it before MXNet
    is imported; child processes inherit them)."""
    for variable, value in DETERMINISM_SWITCHES:
        os.environ[variable] = value


def log_kernels(log):
    """Log, once per run, isa_log_line() and threads_log_line() (as warnings when they hold
    one) and the determinism switches as the process has them."""
    for line in (isa_log_line(), threads_log_line()):
        (log.warning if 'warning:' in line else log.info)('%s', line)
    log.info('determinism switches: %s', ', '.join(
        '%s=%s' % (variable, os.environ.get(variable, '(unset)'))
        for variable, _ in DETERMINISM_SWITCHES))
