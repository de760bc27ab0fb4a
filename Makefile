# Two commands on a fresh machine: `make serve` and `make test`. Both install first if needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test clean

# The stamp is newer than pyproject.toml once the install has succeeded, so a second run is instant.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || $(BIN)/pip install --quiet "torch>=2.2,<2.15" "torchvision>=0.17,<0.30"
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	$(BIN)/python -m ml.numba_cache
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/latentmap serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
