# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test browser-test bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mi-defense run

test: $(STAMP)
	$(PY) -m pytest -q -m "not browser"

# Loads a rendered report.html in headless Chromium and checks every image loaded.
# Installs Debian's chromium and chromium-driver (needs root or sudo) and selenium.
browser-test: $(STAMP)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,browser]'
	$(PY) -m pytest -q -m browser

bench: $(STAMP)
	$(VENV)/bin/mi-defense bench distill --width 64 --out bench-distill-w64.json
	$(VENV)/bin/mi-defense bench distill --width 128 --out bench-distill-w128.json
	$(VENV)/bin/mi-defense bench attacks --out bench-attacks.json

clean:
	rm -rf $(VENV) build *.egg-info
