"""Library half of the CBST port: symbols, weight files, image ops, prefetching, schedulers."""
# Before any module of the project imports MXNet: oneDNN's instruction-set cap and the OpenMP
# threads (util/kernels.py), and the NumPy names MXNet 1.9.1 reads that newer NumPy removed
# (util/numpy_compat.py).
from util.kernels import pin_cpu_kernels
from util.numpy_compat import restore_removed_names

pin_cpu_kernels()
restore_removed_names()
