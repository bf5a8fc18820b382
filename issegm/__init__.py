"""Scripts and dataset/iterator modules of the CBST port (ademxapp layout)."""
# Importing util first sets up what must precede MXNet (the CPU kernels' pins, the NumPy names
# MXNet reads; util/__init__.py), also for scripts that import issegm before util.
import util  # noqa: F401
