"""Install CBST-MXNet: `pip install -e .[cpu]` (or `.[cu112]` for the CUDA 11.2 MXNet wheel);
on Python 3.13 (NumPy 2) `pip install -e .` then `pip install --no-deps mxnet==1.9.1`."""
import os

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))


def pinned_requirements():
    """Runtime pins from requirements.txt (test-only tools left out)."""
    with open(os.path.join(HERE, 'requirements.txt')) as f:
        lines = [l.split('#')[0].strip() for l in f]
    return [l for l in lines if l and not l.startswith('pytest')]


setup(
    name='cbst-mxnet',
    version='0.1.0',
    description='Class-balanced self-training (CBST, ECCV 2018) for segmentation domain adaptation, '
                'a Python 3 port on MXNet 1.9',
    packages=['issegm', 'issegm.crst', 'issegm.datacheck', 'issegm.demo', 'issegm.prediction',
              'issegm.preparation', 'issegm.rounds', 'issegm.testtime', 'util', 'util.symbol'],
    package_data={'issegm': ['data_list/*/*.lst']},
    python_requires='>=3.9,<3.14',
    install_requires=pinned_requirements(),
    extras_require={
        'cpu': ['mxnet==1.9.1'],
        'cu112': ['mxnet-cu112==1.9.1'],
        'test': ['pytest==8.3.3'],
        # Build it against the installed MXNet (see the README, "Scaling out"):
        # HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 ... pip install --no-build-isolation .[horovod]
        'horovod': ['horovod==0.28.1'],
    },
)
