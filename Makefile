# Everything runs inside .venv in the repository root. `make test` on a fresh machine (Python and pip only)
# creates it, installs the CPU build of PyTorch and the project, and runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The CPU build of torch must come first: a bare `torch` requirement would pull the CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) benchmarks/ops.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
