# The two quickstart commands:  `make paper` (set up + run the whole study) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup system paper test test-fast lint format lock notebooks clean

setup: $(STAMP)

# Which torch build: TORCH=cpu (default) = torch's CPU wheel (2.13.0+cpu, from the machine's wheels when
# pip finds it there, e.g. via its find-links, else from the PyTorch CPU index, as the Pages workflow);
# TORCH=cuda = the CUDA build from PyPI (Linux x86-64). Installed first: installed after, a dependency
# would pull the default build. Switching builds: rm -rf .venv, then make setup TORCH=...
TORCH ?= cpu
TORCH_VERSION := 2.13.0
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
ifeq ($(filter $(TORCH),cpu cuda),)
$(error TORCH must be cpu or cuda, got '$(TORCH)')
endif

# The local try needs no network (an unreachable index would cost pip's retries for every package);
# the PyTorch index is asked only if it fails.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(TORCH),cpu)
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)+cpu 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)+cpu --extra-index-url $(TORCH_CPU_INDEX)
else
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
endif
	$(BIN)/python -m pip install --quiet -e ".[dev]" -c constraints.txt  # every version locked
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

# Lint and format checks (CI runs them too); `make format` applies the formatters.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow/rules

# Regenerate constraints.txt (the lock) from the current .venv after a pin in pyproject.toml changed.
lock: setup
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+.*/torch==\1/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# Execute the exploration notebooks (notebooks/*.py, jupytext) on the results into notebooks/*.ipynb.
notebooks: setup
	$(BIN)/jupytext --to ipynb --execute notebooks/*.py

clean:
	rm -rf results paper/_build .snakemake runs outputs
