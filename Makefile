# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

## make demo: run the main job on the bundled CDNOW data and print where the outputs went
## (--force: re-running it replaces the previous run's outputs)
demo: $(STAMP_RUN)
	$(VENV)/bin/clvmodels demo --out reports/cdnow --force

## make test: lint and the whole test suite (tests/test_notebooks.py executes every notebook
## and counts its figures; MPLBACKEND keeps everything else headless, never the notebooks' code)
test: $(STAMP_DEV)
	$(VENV)/bin/ruff check clvmodels tests bench
	MPLBACKEND=Agg $(PY) -m pytest -n 2 --dist loadfile tests

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check clvmodels tests bench
	$(VENV)/bin/ruff format --check clvmodels tests bench || true

bench: $(STAMP_DEV)
	$(PY) bench/bench_rfm.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
