"""For `make install HOROVOD=1` only (on PYTHONPATH for the build, installed nowhere): Horovod's
build runs `python -c "import mxnet ..."` (horovod 0.28.1 cmake/Modules/FindMxnet.cmake), which
needs util/numpy_compat.py's names first on NumPy 1.24+ (Python 3.12 and 3.13)."""
import util  # noqa: F401  util/__init__ restores the NumPy names MXNet reads
