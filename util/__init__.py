"""Library half of the CBST port: symbols, weight files, image ops, prefetching, schedulers."""
# oneDNN's instruction-set cap and the OpenMP threads, before any module of the project imports
# MXNet (util/kernels.py).
from util.kernels import pin_cpu_kernels

pin_cpu_kernels()
