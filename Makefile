# leukolib: `make book` builds the book, `make test` runs the tests.
# Both create .venv and install everything on first use.
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

.PHONY: help venv book notebooks test lint lab sync clean

help:
	@echo "make book   execute the notebooks (PROFILE=$(PROFILE) DATASET=$(DATASET)) and build _build/html"
	@echo "            (unchanged notebooks come from the cache in _build/cache; FRESH=1: none do)"
	@echo "make test   unit tests, notebooks under the smoke profile, a smoke book build"
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
