# Two commands on a fresh machine: `make demo` and `make test`.
# TensorFlow 2.15.1 and tensorflow-privacy 0.9.0 need Python 3.9-3.11: take the newest such
# interpreter on PATH (python3.11, python3.10, python3.9, then python3 if it qualifies).
FIND_PYTHON = for p in python3.11 python3.10 python3.9 python3; do \
    v=$$($$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue; \
    case "$$v" in 3.9|3.10|3.11) echo $$p; exit 0;; esac; done
PYTHON ?= $(shell $(FIND_PYTHON))
NO_PYTHON = echo "error: no Python 3.9-3.11 on PATH (TensorFlow 2.15.1 and tensorflow-privacy 0.9.0 need one); install one, e.g. 'apt-get install python3.11' or 'uv python install 3.11', or run make PYTHON=/path/to/python3.11" >&2; exit 2
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint browser-test docs bench clean print-python

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then { [ -n "$(PYTHON)" ] || { $(NO_PYTHON); }; } && $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mi-defense run

# The shared dataset copies beside the checkout (../shared/data), unless MI_DEFENSE_DATA says otherwise.
SHARED_DATA := $(abspath $(wildcard ../shared/data))

# ruff (configured in pyproject.toml) first: a lint error fails the suite before the long tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check mi_defense attacks tests docs reports

test: lint
	$(if $(MI_DEFENSE_DATA),,$(if $(SHARED_DATA),MI_DEFENSE_DATA=$(SHARED_DATA))) $(PY) -m pytest -q -m "not browser"

# The quick subset for a first look: everything but the tests marked slow.
test-fast: lint
	$(if $(MI_DEFENSE_DATA),,$(if $(SHARED_DATA),MI_DEFENSE_DATA=$(SHARED_DATA))) $(PY) -m pytest -q -m "not browser and not slow"

# Loads a rendered report.html in headless Chromium and checks every image loaded.
# Installs Debian's chromium and chromium-driver (needs root or sudo) and selenium.
browser-test: $(STAMP)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,ray,browser]'
	$(PY) -m pytest -q -m browser

# The documentation site (mkdocs.yml) into site/ (gitignored); --strict fails on any warning.
# mkdocstrings reads the API's docstrings from the source, without importing TensorFlow; the
# generated pages are checked against the committed results by make test (tests/test_docs.py).
docs: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,ray,docs]'
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(VENV)/bin/mi-defense bench distill --width 64 --out bench-distill-w64.json
	$(VENV)/bin/mi-defense bench distill --width 128 --out bench-distill-w128.json
	$(VENV)/bin/mi-defense bench train --width 32 --out bench-train-w32.json
	$(VENV)/bin/mi-defense bench train --width 64 --out bench-train-w64.json
	$(VENV)/bin/mi-defense bench attacks --out bench-attacks.json

clean:
	rm -rf $(VENV) build site *.egg-info

# The interpreter the virtual environment is made with.
print-python:
	@[ -n "$(PYTHON)" ] || { $(NO_PYTHON); }; echo $(PYTHON)
