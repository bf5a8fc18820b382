"""Scripts and dataset/iterator modules of the CBST port (ademxapp layout)."""
# oneDNN's instruction-set cap and the OpenMP threads, before any module of the project imports
# MXNet (util/kernels.py; util/__init__.py does the same for scripts that import util first).
from util.kernels import pin_cpu_kernels

pin_cpu_kernels()
