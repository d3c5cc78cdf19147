# leukolib: `make book` builds the book, `make test` runs the tests.
# Both create .venv and install everything on first use.
#   make book PROFILE=smoke DATASET=jtsc DATA_ROOT=../shared/data/segmentation_WBC

PYTHON    ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
PROFILE   ?= cpu
DATASET   ?= synthetic
DATA_ROOT ?=
SEED      ?= 0
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed

.PHONY: help venv book notebooks test lint sync clean

help:
	@echo "make book   execute the notebooks (PROFILE=$(PROFILE) DATASET=$(DATASET)) and build _build/html"
	@echo "make test   unit tests, notebooks under the smoke profile, a smoke book build"
	@echo "make lint   ruff"
	@echo "make sync   stamp the notebooks' install cell from _config.yml"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	$(BIN)/python -m leukolib.book build --profile $(PROFILE) --dataset $(DATASET) \
		--data-root "$(DATA_ROOT)" --seed $(SEED)

notebooks: $(STAMP)
	$(BIN)/python -m leukolib.book execute --profile $(PROFILE) --dataset $(DATASET) \
		--data-root "$(DATA_ROOT)" --seed $(SEED)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

sync: $(STAMP)
	$(BIN)/python -m leukolib.book sync

clean:
	rm -rf _build .pytest_cache
