"""TEST-ONLY GPU simulation (tests/test_gpu_sim.py puts this folder on PYTHONPATH, so Python
runs it at start-up in every process of a test, the children of issegm.launch included):
once `mxnet` is imported, it reports CBST_SIM_GPUS GPUs (default 4) and `mx.gpu(i)` is the
CPU context `mx.cpu(i)`, so the scripts' GPU branches run on the CPU. Nothing of it is in the
product code."""
import importlib.abc
import importlib.machinery
import os
import sys

SIM_GPUS = int(os.environ.get('CBST_SIM_GPUS', '4'))


def _simulate(mx):
    def gpu(device_id=0):
        return mx.context.cpu(device_id)
    mx.gpu = mx.context.gpu = gpu
    mx.context.num_gpus = lambda: SIM_GPUS


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds `mxnet` as usual and patches the module once its __init__ has run."""

    def find_spec(self, name, path=None, target=None):
        if name != 'mxnet':
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run_init = spec.loader.exec_module

        def exec_module(module):
            run_init(module)
            _simulate(module)
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchAfterImport())
