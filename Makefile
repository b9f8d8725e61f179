# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint bench clean chromium

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
test: $(STAMP_DEV) chromium
	$(VENV)/bin/ruff check clvmodels tests bench
	MPLBACKEND=Agg $(PY) -m pytest -n 2 --dist loadfile tests

## make chromium: headless Chromium for the report's browser check (tests/test_backtest.py),
## from Debian's packages when it is missing and we are root with apt-get; never fails (without
## it that one check is skipped, saying why)
CHROMIUM_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian) for the headless report check ..."; \
	    $(CHROMIUM_INSTALL) >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && $(CHROMIUM_INSTALL) >/dev/null 2>&1; } || \
	    echo "chromium could not be installed: the headless-Chromium check will be skipped"; \
	  else echo "no chromium (not root, or no apt-get): the headless-Chromium check will be skipped"; fi; }

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check clvmodels tests bench
	$(VENV)/bin/ruff format --check clvmodels tests bench || true

bench: $(STAMP_DEV)
	$(PY) bench/bench_rfm.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
