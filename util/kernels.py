"""Which kernels MXNet runs, for the same numbers on every machine (README, "Reproducibility"):
oneDNN's instruction-set cap DNNL_MAX_CPU_ISA=AVX2, set by pin_isa_cap() from util/__init__.py and
issegm/__init__.py before the project imports MXNet (the user's value or CBST_NATIVE_CPU=1 wins),
recorded as "cpu_isa" (isa_record) in run.json and metrics.json; and `--deterministic`'s MXNet
switches for GPUs (set_deterministic). No MXNet here: `--help` must not import it.
"""
import os
import sys

__all__ = ['ISA_CAP_VARIABLE', 'REPRODUCIBLE_ISA', 'NATIVE_VARIABLE', 'ONEDNN_ISAS',
           'pin_isa_cap', 'isa_record', 'isa_log_line', 'effective_isa', 'processor_isa',
           'known_cap', 'DETERMINISM_SWITCHES', 'set_deterministic', 'log_kernels']

ISA_CAP_VARIABLE = 'DNNL_MAX_CPU_ISA'
REPRODUCIBLE_ISA = 'AVX2'
NATIVE_VARIABLE = 'CBST_NATIVE_CPU'
# Set beside our default cap, so a child process knows the DNNL_MAX_CPU_ISA it inherits is the
# project's default rather than the user's choice.
DEFAULT_MARKER_VARIABLE = 'CBST_DEFAULT_CPU_ISA'
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

_state = {}  # what pin_isa_cap found and did, once per process


def pin_isa_cap():
    """Set DNNL_MAX_CPU_ISA=AVX2 unless the user set it or CBST_NATIVE_CPU=1 asks for the
    processor's own instruction set; the first call decides (later calls return the same).
    Returns the decision: requested (the cap oneDNN will read, None for none), set_by
    ('default', 'environment' or NATIVE_VARIABLE) and before_mxnet (False when this call set
    the cap after MXNet was imported: then it counts only if no oneDNN kernel has run yet;
    measured: oneDNN reads it at its first kernel, not when MXNet is imported)."""
    if _state:
        return dict(_state)
    env = os.environ
    native = env.get(NATIVE_VARIABLE, '').strip().lower() in _ON
    inherited_default = (env.get(DEFAULT_MARKER_VARIABLE) is not None
                         and env.get(ISA_CAP_VARIABLE) == env.get(DEFAULT_MARKER_VARIABLE))
    if inherited_default and native:  # our parent's default, then the user asked for native
        env.pop(ISA_CAP_VARIABLE, None)
    set_here = False
    if ISA_CAP_VARIABLE in env:
        set_by = 'default' if inherited_default else 'environment'
    elif native:
        set_by = NATIVE_VARIABLE
    else:
        env[ISA_CAP_VARIABLE] = env[DEFAULT_MARKER_VARIABLE] = REPRODUCIBLE_ISA
        set_by, set_here = 'default', True
    _state.update(requested=env.get(ISA_CAP_VARIABLE), set_by=set_by,
                  before_mxnet=not (set_here and 'mxnet' in sys.modules))
    return dict(_state)


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
    decision = pin_isa_cap()
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


def set_deterministic():
    """`--deterministic`: MXNet's DETERMINISM_SWITCHES in the environment (call it before MXNet
    is imported; child processes inherit them)."""
    for variable, value in DETERMINISM_SWITCHES:
        os.environ[variable] = value


def log_kernels(log):
    """Log, once per run, isa_log_line() (a warning for a cap oneDNN ignores or one set too
    late) and the determinism switches as the process has them."""
    line = isa_log_line()
    (log.warning if 'warning:' in line else log.info)('%s', line)
    log.info('determinism switches: %s', ', '.join(
        '%s=%s' % (variable, os.environ.get(variable, '(unset)'))
        for variable, _ in DETERMINISM_SWITCHES))
