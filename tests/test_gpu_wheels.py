"""The README's table of MXNet CUDA wheels ("Installing for GPUs"): each row backed by the
readings of docs/gpu-wheels.md, and each named package version present in the package index
pip sees (skipped, with pip's reason, where the index cannot be reached)."""
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What pip prints when it cannot reach the index (then the test is skipped, not failed).
OFFLINE = ('Retrying', 'Could not fetch', 'NewConnectionError', 'Network is unreachable',
           'Temporary failure in name resolution', 'connection')


def _read(name):
    with open(os.path.join(REPO, name)) as f:
        return f.read()


def readme_wheels():
    """{package: (version, CUDA, [sm_XX])} of the README's wheel table."""
    rows = re.findall(r'^\| `(mxnet-cu\d+)==([\d.]+)` \| ([\d.]+) \| ([^|]+) \|', _read('README.md'),
                      flags=re.M)
    return {package: (version, cuda, ['sm_%s' % a.strip().replace('sm_', '')
                                      for a in archs.split(',')])
            for package, version, cuda, archs in rows}


def readings():
    """{(package, version): ([cubin sm_XX], PTX, NEEDED)} of docs/gpu-wheels.md's table."""
    rows = re.findall(r'^\| `mxnet_(cu\d+)-([\d.]+)-py3-none-manylinux2014_x86_64\.whl` \|'
                      r'(?: [\d]+ \|){3} ([^|]+) \| ([^|]+) \| ([^|]+) \|',
                      _read('docs/gpu-wheels.md'), flags=re.M)
    return {('mxnet-' + cu, version): ([a.strip() for a in cubins.split(',')], ptx.strip(),
                                       needed.strip())
            for cu, version, cubins, ptx, needed in rows}


def test_the_readme_table_is_the_wheels_readings():
    wheels, read = readme_wheels(), readings()
    assert sorted(wheels) == ['mxnet-cu11%d' % i for i in range(8)]
    for package, (version, cuda, archs) in wheels.items():
        cubins, ptx, needed = read[package, version]
        assert archs == cubins and ptx == 'none', package
        assert 'sm_90' not in archs  # README: Hopper has no kernels in any of them
        # the CUDA runtime, cuDNN 8 and NCCL 2 come from the system, as the table says
        assert {'libcudart.so.11.0', 'libcudnn.so.8', 'libnccl.so.2', 'libcuda.so.1'} <= \
            set(needed.split(', ')), package
        assert package == 'mxnet-cu%s' % cuda.replace('.', '')


@pytest.mark.slow
@pytest.mark.parametrize('package', sorted(readme_wheels()))
def test_each_wheel_of_the_table_is_in_the_index(package):
    version = readme_wheels()[package][0]
    res = subprocess.run([sys.executable, '-m', 'pip', 'index', 'versions', package],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        reason = (res.stderr.strip().splitlines() or ['no output'])[-1]
        if any(word in res.stderr for word in OFFLINE):
            pytest.skip('the index cannot be reached: pip index versions %s: %s'
                        % (package, reason))
        pytest.fail('%s is not in the index: %s' % (package, reason))
    available = re.search(r'Available versions: (.*)', res.stdout)
    assert available and version in [v.strip() for v in available.group(1).split(',')], \
        res.stdout
