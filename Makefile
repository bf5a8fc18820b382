# One-command set-up: `make install` (CPU), `make install MXNET=mxnet-cu112` (CUDA 11.2),
# `make install HOROVOD=1` (also builds Horovod for --kvstore horovod, CPU/Gloo, ~3 minutes once).
PYTHON ?= python3
MXNET ?= mxnet
HOROVOD ?=
VENV ?= .venv
PY := $(VENV)/bin/python
# An install with Horovod also serves a plain `make install` (e.g. `make test-quick` after
# `make test`), so the two targets do not undo each other's install.
HOROVOD_STAMP := $(VENV)/.installed-$(MXNET)-horovod
STAMP := $(if $(HOROVOD)$(wildcard $(HOROVOD_STAMP)),$(HOROVOD_STAMP),$(VENV)/.installed-$(MXNET))
PYTEST_ARGS ?=

# Horovod must be built against the MXNet already in the venv: no build isolation (an isolated
# build cannot see MXNet) and the venv's bin first on PATH, so the pinned cmake 3.31 is the one
# used (cmake 4 cannot configure Horovod 0.28.1's bundled Gloo). GPU/NCCL: see the README.
HOROVOD_BUILD := HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 $(HOROVOD_GPU_FLAGS)

.PHONY: install test test-quick demo bench clean

install: $(STAMP)

# Re-run only when the pins or the package metadata change.
$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements.txt "$(MXNET)==1.9.1"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(if $(findstring -horovod,$@),$(PY) -m pip install -q "cmake==3.31.10" && PATH="$(abspath $(VENV))/bin:$$PATH" \
		$(HOROVOD_BUILD) $(PY) -m pip install -q --no-build-isolation "horovod==0.28.1")
	rm -f $(VENV)/.installed-*
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

# The demo over 3 training seeds: compare.md/json/png (mean ± sd, paired differences).
.PHONY: compare
compare: install
	$(PY) -m issegm.demo --seeds 3 --output runs/compare

bench:
	$(MAKE) install HOROVOD=1
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
