"""Library half of the CBST port: symbols, weight files, image ops, prefetching, schedulers."""
# oneDNN's instruction-set cap before any module of the project imports MXNet (util/kernels.py).
from util.kernels import pin_isa_cap

pin_isa_cap()
