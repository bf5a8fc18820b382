"""The Makefile in a scratch project and venv, offline: it keeps the MXNet variant the venv
holds (two fake wheels of two names sharing the mxnet/ folder, as mxnet and mxnet-cu112 do),
replaces it only when asked, and refuses an unsupported Python in one line."""
import base64
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
from packaging.requirements import Requirement

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the venv needs for the Makefile's steps besides the fakes: pip itself, setuptools and
# wheel (its bootstrap and `pip install -e .`), pytest (`make test-quick`).
TOOLS = ('pip', 'setuptools', 'wheel', 'pytest')
VARIANT_TEST = '''
import mxnet


def test_variant():
    print('VARIANT', mxnet.VARIANT)
'''


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return '%s,sha256=%s,%d' % (path, digest, len(data))


def fake_wheel(folder, project, files):
    """A py3-none-any wheel of `project` 1.9.1 holding `files` {path: text}."""
    dist = project.replace('-', '_')
    info = '%s-1.9.1.dist-info' % dist
    contents = dict(files)
    contents[info + '/METADATA'] = 'Metadata-Version: 2.1\nName: %s\nVersion: 1.9.1\n' % project
    contents[info + '/WHEEL'] = ('Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n'
                                 'Tag: py3-none-any\n')
    record = [_record_line(p, t.encode()) for p, t in contents.items()] + [info + '/RECORD,,']
    path = os.path.join(folder, '%s-1.9.1-py3-none-any.whl' % dist)
    with zipfile.ZipFile(path, 'w') as z:
        for p, t in contents.items():
            z.writestr(p, t)
        z.writestr(info + '/RECORD', '\n'.join(record) + '\n')
    return path


def copy_distribution(name, site, done):
    """Copy an installed distribution (and what it requires here) into another site-packages."""
    dist = importlib.metadata.distribution(name)
    key = dist.metadata['Name'].lower()
    if key in done:
        return
    done.add(key)
    for f in dist.files or ():
        if str(f).startswith('..') or '__pycache__' in str(f):
            continue  # console scripts; the Makefile runs `python -m pip` and `python -m pytest`
        target = os.path.join(site, str(f))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(str(dist.locate_file(f)), target)
    for req in dist.requires or ():
        r = Requirement(req)
        if r.marker is None or r.marker.evaluate({'extra': ''}):
            copy_distribution(r.name, site, done)


@pytest.fixture
def scratch(tmp_path):
    """A project folder with this Makefile, a venv holding only pip/setuptools/wheel/pytest,
    and a folder of fake MXNet (and Horovod) wheels; `run(*make_args)` runs make offline."""
    project = tmp_path / 'project'
    (project / 'tests').mkdir(parents=True)
    shutil.copy(os.path.join(REPO, 'Makefile'), project / 'Makefile')
    (project / 'requirements.txt').write_text('# no pins: the fakes only\n')
    (project / 'setup.py').write_text("from setuptools import setup\n"
                                      "setup(name='scratch-project', version='0', py_modules=[])\n")
    (project / 'tests' / 'test_variant.py').write_text(VARIANT_TEST)
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    fake_wheel(wheels, 'mxnet', {'mxnet/__init__.py': "VARIANT = 'cpu'\n",
                                 'mxnet/cpu_only.py': ''})
    fake_wheel(wheels, 'mxnet-cu112', {'mxnet/__init__.py': "VARIANT = 'cu112'\n",
                                       'mxnet/cuda_only.py': ''})
    fake_wheel(wheels, 'horovod', {'horovod/__init__.py': ''})
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(project / '.venv')],
                   check=True)
    py = str(project / '.venv' / 'bin' / 'python')
    site = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
                          check=True, capture_output=True, text=True).stdout.strip()
    done = set()
    for name in TOOLS:
        copy_distribution(name, site, done)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PIP_', 'MAKE', 'MXNET', 'VIRTUAL_ENV')) and k != 'PYTHON'}
    env.update(PIP_NO_INDEX='1', PIP_FIND_LINKS=str(wheels), PIP_CONFIG_FILE=os.devnull,
               PIP_DISABLE_PIP_VERSION_CHECK='1', PYTHONPATH='')

    def run(*args):
        res = subprocess.run(['make', '-C', str(project)] + list(args), env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res.stdout

    def pip(*args):
        return subprocess.run([py, '-m', 'pip'] + list(args), env=env, check=True,
                              capture_output=True, text=True).stdout

    def state():
        """(MXNet projects installed, files of the mxnet/ folder, VARIANT, horovod installed)."""
        listed = pip('list', '--format=freeze').split()
        names = sorted(line.split('==')[0] for line in listed if line.startswith('mxnet'))
        folder = sorted(f for f in os.listdir(os.path.join(site, 'mxnet')) if f.endswith('.py'))
        variant = subprocess.run([py, '-c', 'import mxnet; print(mxnet.VARIANT)'], env=env,
                                 check=True, capture_output=True, text=True).stdout.strip()
        return names, folder, variant, any(line.startswith('horovod==') for line in listed)

    return run, pip, state, wheels, project


CU112 = (['mxnet-cu112'], ['__init__.py', 'cuda_only.py'], 'cu112')
CPU = (['mxnet'], ['__init__.py', 'cpu_only.py'], 'cpu')


@pytest.mark.slow
def test_the_variant_installed_stays_until_another_is_asked_for(scratch):
    run, pip, state, wheels, project = scratch
    run('install', 'MXNET=mxnet-cu112')
    assert state()[:3] == CU112
    assert (project / '.venv' / '.mxnet-variant').read_text().strip() == 'mxnet-cu112'
    pip('install', '-q', '--no-deps', str(wheels / 'horovod-1.9.1-py3-none-any.whl'))
    out = run('test-quick', 'PYTEST_ARGS=-s')  # later targets keep the venv's variant
    assert 'VARIANT cu112' in out
    assert state() == CU112 + (True,)
    run('install')
    assert state() == CU112 + (True,)
    # another variant: the first is uninstalled, and the Horovod built against it, before
    out = run('install', 'MXNET=mxnet')
    assert 'replacing mxnet-cu112 by mxnet' in out
    assert state() == CPU + (False,)
    run('test-quick')
    assert state()[:3] == CPU
    run('install', 'MXNET=mxnet-cu112')
    assert state()[:3] == CU112


@pytest.mark.slow
def test_without_the_makefile_pip_silently_overwrites_one_variant_by_the_other(scratch):
    """What the Makefile prevents: pip installs the second variant over the first's files."""
    _, pip, state, wheels, _ = scratch
    pip('install', '-q', '--no-deps', str(wheels / 'mxnet_cu112-1.9.1-py3-none-any.whl'))
    pip('install', '-q', '--no-deps', str(wheels / 'mxnet-1.9.1-py3-none-any.whl'))
    names, folder, variant, _ = state()
    assert names == ['mxnet', 'mxnet-cu112'] and variant == 'cpu'
    assert folder == ['__init__.py', 'cpu_only.py', 'cuda_only.py']


@pytest.mark.slow
@pytest.mark.parametrize('version', ['3.8', '3.14'])
def test_an_unsupported_python_stops_in_one_line(tmp_path, version):
    """A stand-in interpreter that says it is Python 3.8 (or 3.14): one line, no venv."""
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\necho %s\n' % version)
    fake.chmod(0o755)
    shutil.copy(os.path.join(REPO, 'Makefile'), tmp_path / 'Makefile')
    for name in ('requirements.txt', 'setup.py'):
        (tmp_path / name).write_text('')
    t0 = time.time()
    res = subprocess.run(['make', '-C', str(tmp_path), '--no-print-directory', 'install',
                          'PYTHON=%s' % fake], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and time.time() - t0 < 10
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and not res.stdout, res.stdout + res.stderr
    assert 'Python %s (%s) is not supported' % (version, fake) in lines[0]
    assert 'use Python 3.9 to 3.13, e.g. `make install PYTHON=python3.11`' in lines[0]
    assert not (tmp_path / '.venv').exists()


@pytest.mark.slow
@pytest.mark.parametrize('venv_files, args, variant', [
    ({}, [], 'mxnet'),
    ({'.mxnet-variant': 'mxnet-cu117\n'}, [], 'mxnet-cu117'),
    ({'.mxnet-variant': 'mxnet-cu117\n'}, ['MXNET=mxnet'], 'mxnet'),
    # a venv of the Makefile before the variant file: its stamp names the variant
    ({'.installed-mxnet-cu112-horovod': ''}, [], 'mxnet-cu112'),
    ({'.installed-mxnet-cu112': ''}, [], 'mxnet-cu112'),
])
def test_the_variant_a_target_installs(tmp_path, venv_files, args, variant):
    """`make -n install` (what it would run) installs the venv's variant unless told another."""
    shutil.copy(os.path.join(REPO, 'Makefile'), tmp_path / 'Makefile')
    for name in ('requirements.txt', 'setup.py'):
        (tmp_path / name).write_text('')
    (tmp_path / '.venv').mkdir()
    for name, text in venv_files.items():
        (tmp_path / '.venv' / name).write_text(text)
    later = time.time() + 60  # the pins changed since the stamp: install would run again
    os.utime(tmp_path / 'requirements.txt', (later, later))
    res = subprocess.run(['make', '-C', str(tmp_path), '-n', 'install',
                          'PYTHON=%s' % sys.executable] + args,
                         capture_output=True, text=True, timeout=60, check=True)
    assert '--no-deps "%s==1.9.1"' % variant in res.stdout
    assert 'echo "%s" > .venv/.mxnet-variant' % variant in res.stdout
