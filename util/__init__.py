"""Library half of the CBST port: symbols, weight files, image ops, prefetching, schedulers."""
from util.numpy_compat import restore_removed_names

restore_removed_names()  # before any `import mxnet`: the NumPy names MXNet 1.9.1 reads
