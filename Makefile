# One-command set-up: `make install` (CPU), `make install MXNET=mxnet-cu112` (CUDA 11.2),
# `make install HOROVOD=1` (also builds Horovod for --kvstore horovod, CPU/Gloo, ~3 minutes once),
# `make install PYTHON=python3.12` (Python 3.9 to 3.13; the pins per Python are in requirements.txt).
PYTHON ?= python3
HOROVOD ?=
VENV ?= .venv
PY := $(VENV)/bin/python
SUPPORTED_PYTHONS := 3.9 3.10 3.11 3.12 3.13
# The MXNet variant the venv holds is remembered there: every later target (test, test-quick,
# demo, bench) keeps it; MXNET=... asks for another, which replaces it (see the install recipe).
VARIANT_FILE := $(VENV)/.mxnet-variant
# (A venv of an older Makefile has no such file: its stamp, .installed-VARIANT[-horovod], names it.)
ifeq ($(origin MXNET),undefined)
MXNET := $(or $(shell cat $(VARIANT_FILE) 2>/dev/null),$(patsubst %-horovod,%,$(patsubst \
	$(VENV)/.installed-%,%,$(firstword $(wildcard $(VENV)/.installed-*)))),mxnet)
endif
# An install with Horovod also serves a plain `make install` (e.g. `make test-quick` after
# `make test`), so the two targets do not undo each other's install.
HOROVOD_STAMP := $(VENV)/.installed-$(MXNET)-horovod
STAMP := $(if $(HOROVOD)$(wildcard $(HOROVOD_STAMP)),$(HOROVOD_STAMP),$(VENV)/.installed-$(MXNET))
PYTEST_ARGS ?=

# Horovod must be built against the MXNet already in the venv: no build isolation (an isolated
# build cannot see MXNet) and the venv's bin first on PATH, so the pinned cmake 3.31 is the one
# used (cmake 4 cannot configure Horovod 0.28.1's bundled Gloo); its cmake imports MXNet, so
# util/horovod_build/sitecustomize.py is on PYTHONPATH for the build. GPU/NCCL: see the README.
HOROVOD_BUILD := HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 $(HOROVOD_GPU_FLAGS)

.PHONY: install test test-quick demo compare bench clean

install: $(STAMP)

# "3.11" for the Python the venv has (or, before it exists, PYTHON); empty if it does not run.
python_version = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
INSTALL_PYTHON = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
INSTALL_VERSION = $(call python_version,$(INSTALL_PYTHON))
UNSUPPORTED = $(if $(INSTALL_VERSION),Python $(INSTALL_VERSION) ($(INSTALL_PYTHON)) is not supported,$(INSTALL_PYTHON) does not run): use Python 3.9 to 3.13, e.g. `make install PYTHON=python3.11`
OTHER_VENV = $(VENV) has Python $(INSTALL_VERSION), not $(call python_version,$(PYTHON)) ($(PYTHON)): `make clean` first
# A venv made with another Python than a PYTHON given on the command line is not silently kept.
CHECK_PYTHON = $(if $(filter $(SUPPORTED_PYTHONS),$(INSTALL_VERSION)),,$(error $(UNSUPPORTED)))$(if \
	$(and $(wildcard $(PY)),$(filter command line,$(origin PYTHON))),$(if $(filter \
	$(INSTALL_VERSION),$(call python_version,$(PYTHON))),,$(error $(OTHER_VENV))))

# Re-run only when the pins or the package metadata change. MXNet goes in without its
# dependencies: its metadata says numpy<2, which the NumPy 2 of Python 3.13 breaks (its other
# two, requests and graphviz, are in requirements.txt). The MXNet variants (mxnet, mxnet-cu112,
# ...) are projects of different names sharing the mxnet/ folder: pip would let the second
# overwrite the first's files, so any other variant (and the Horovod built against it) is
# uninstalled first. No stamp is left while an install is unfinished.
$(STAMP): requirements.txt setup.py
	$(CHECK_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	@other=$$($(PY) -m pip list --format=freeze | sed -n 's/^\(mxnet[-_.a-zA-Z0-9]*\)==.*/\1/p' \
		| grep -ivx '$(MXNET)' | paste -sd ' '); if [ -n "$$other" ]; then \
		echo "replacing $$other by $(MXNET): pip uninstall $$other horovod"; \
		$(PY) -m pip uninstall -q -y $$other horovod || exit 1; fi
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps "$(MXNET)==1.9.1"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(if $(findstring -horovod,$@),$(PY) -m pip install -q "cmake==3.31.10" && PATH="$(abspath $(VENV))/bin:$$PATH" \
		PYTHONPATH="$(abspath util/horovod_build)$${PYTHONPATH:+:$$PYTHONPATH}" \
		$(HOROVOD_BUILD) $(PY) -m pip install -q --no-build-isolation "horovod==0.28.1")
	echo "$(MXNET)" > $(VARIANT_FILE)
	touch $@

# The suite and the benchmarks exercise --kvstore horovod: they install with Horovod.
test:
	$(MAKE) install HOROVOD=1
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

# The quick loop while editing: every test without a subprocess, Horovod or a long run (the
# `slow` marker, pytest.ini), in under 30 seconds; no Horovod needed.
test-quick: install
	$(PY) -m pytest -q -m "not slow" tests $(PYTEST_ARGS)

demo: install
	$(PY) -m issegm.demo --output runs/demo

# The demo with three training seeds: mean, spread and paired differences of the methods.
compare: install
	$(PY) -m issegm.demo --seeds 3 --output runs/compare

bench:
	$(MAKE) install HOROVOD=1
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
