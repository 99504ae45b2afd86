# The two quickstart commands:  `make paper` (set up + run the whole study) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system paper test test-fast lint clean

setup: $(STAMP)

# torch first, from the machine's local CPU wheel: installed after, a dependency would pull the
# multi-GB CUDA build from the index instead.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# System packages the browser and SLURM tests need (Debian; root). Idempotent.
system:
	bash scripts/install-system.sh

paper: setup
	$(BIN)/snakemake --cores all

# The whole suite, then the numerics tests again under a second CPU capability (see the script).
test: setup system
	$(BIN)/python -m pytest
	PYTHON=$(BIN)/python bash scripts/numerics-second-pass.sh

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/snakemake --lint

clean:
	rm -rf results paper/_build .snakemake runs outputs
