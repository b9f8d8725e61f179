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
demo: $(STAMP_RUN)
	$(VENV)/bin/clvmodels demo --out reports/cdnow

## make test: lint and the whole test suite
test: $(STAMP_DEV)
	$(VENV)/bin/ruff check clvmodels tests bench
	$(PY) -m pytest -n 2 --dist loadfile --nbmake tests notebooks

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check clvmodels tests bench
	$(VENV)/bin/ruff format --check clvmodels tests bench || true

bench: $(STAMP_DEV)
	$(PY) bench/bench_rfm.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
