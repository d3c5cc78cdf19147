# leukolib: `make book` builds the book, `make test` runs the tests.
# Both create .venv and install everything on first use; `make test-min` uses .venv-min.
#   make book PROFILE=smoke DATASET=jtsc DATA_ROOT=../shared/data/segmentation_WBC
# `make book` re-executes only the notebooks whose code, parameters, library, dependencies,
# data or upstream notebooks changed (execution cache and trained runs in _build/cache);
# FRESH=1 executes and trains everything afresh.

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
PROFILE   ?= cpu
DATASET   ?= synthetic
DATA_ROOT ?=
SEED      ?= 0
FRESH     ?=
PYTEST_ARGS ?=
LAB_ARGS  ?=

STAMP     := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab

# `make test-min`: the lowest versions pyproject.toml allows for the direct dependencies
# (uv's --resolution lowest-direct; their own dependencies at the newest that fit) in
# VENV_MIN, and the unit tests there: no shared data, notebook runs, wheel builds or GPU.
VENV_MIN  ?= .venv-min
MIN_BIN   := $(VENV_MIN)/bin
MIN_STAMP := $(VENV_MIN)/.installed
MIN_REQS  := $(VENV_MIN)/requirements-min.txt
UV        ?= $(or $(shell command -v uv 2>/dev/null),$(VENV_MIN)/.uv/bin/uv)
MIN_TESTS ?= -m "not shared and not notebooks and not package and not gpu"

.PHONY: help venv book notebooks test test-min lint lab sync clean

help:
	@echo "make book   execute the notebooks (PROFILE=$(PROFILE) DATASET=$(DATASET)) and build _build/html"
	@echo "            (unchanged notebooks come from the cache in _build/cache; FRESH=1: none do)"
	@echo "make test   unit tests, notebooks under the smoke profile, a smoke book build"
	@echo "make test-min  unit tests with the lowest allowed direct dependencies, in $(VENV_MIN)"
	@echo "make lint   ruff"
	@echo "make lab    install JupyterLab (the dev extra) into $(VENV) and start it in notebooks/"
	@echo "make sync   stamp the notebooks' install cell from _config.yml"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP)

NO_CACHE  := $(if $(FRESH),--no-cache)

book: $(STAMP)
	$(BIN)/python -m leukolib.book build --profile $(PROFILE) --dataset $(DATASET) \
		--data-root "$(DATA_ROOT)" --seed $(SEED) $(NO_CACHE)

notebooks: $(STAMP)
	$(BIN)/python -m leukolib.book execute --profile $(PROFILE) --dataset $(DATASET) \
		--data-root "$(DATA_ROOT)" --seed $(SEED) $(NO_CACHE)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Compile, then sync: a raised floor replaces what an earlier run installed (--reinstall: the
# two OpenCV wheels share cv2/, and removing one breaks the other). uv, when not on PATH,
# goes to $(VENV_MIN)/.uv, outside the venv that the sync prunes.
$(MIN_STAMP): pyproject.toml
	@test -x $(MIN_BIN)/python || $(PYTHON) -m venv $(VENV_MIN)
	@test -x $(UV) || $(PYTHON) -m pip install --quiet --target $(VENV_MIN)/.uv uv
	$(UV) pip compile --quiet --python $(MIN_BIN)/python --resolution lowest-direct \
		--extra book --extra test pyproject.toml -o $(MIN_REQS)
	$(UV) pip sync --quiet --reinstall --python $(MIN_BIN)/python $(MIN_REQS)
	$(UV) pip install --python $(MIN_BIN)/python --no-deps -e .
	@touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(MIN_BIN)/python -m pytest $(MIN_TESTS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# JupyterLab for people who open the notebooks; the kernel is .venv's python (python3).
$(LAB_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[book,test,dev]"
	@touch $(LAB_STAMP)

lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

sync: $(STAMP)
	$(BIN)/python -m leukolib.book sync

clean:
	rm -rf _build .pytest_cache
