"""Scripts and dataset/iterator modules of the CBST port (ademxapp layout)."""
# oneDNN's instruction-set cap before any module of the project imports MXNet (util/kernels.py;
# util/__init__.py does the same for scripts that import util first).
from util.kernels import pin_isa_cap

pin_isa_cap()
