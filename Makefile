# One-command set-up: `make install` (CPU), `make install MXNET=mxnet-cu112` (CUDA 11.2).
PYTHON ?= python3
MXNET ?= mxnet
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(MXNET)
PYTEST_ARGS ?=

.PHONY: install test demo bench clean

install: $(STAMP)

# Re-run only when the pins or the package metadata change.
$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements.txt "$(MXNET)==1.9.1"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

test: install
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

demo: install
	$(PY) -m issegm.demo --output runs/demo

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
