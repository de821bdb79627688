# gisgrid: two commands.
#   make demo   install everything, start the managed PostGIS, load the sample town, print the demo accounts,
#               serve http://127.0.0.1:5000 (GISGRID_DEMO=1: a random secret key is made for the demo)
#   make test   the same set-up, then the test suite
# GISGRID_DATABASE_URL=postgresql://... points at an existing server instead of the managed cluster.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: demo test lint setup sysdeps sysdeps-test db serve bench clean distclean

demo: setup sysdeps db
	$(BIN)/gisgrid demo load
	@echo
	@echo "gisgrid is serving the sample town at http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	@echo
	GISGRID_DEMO=1 $(BIN)/gisgrid serve --host $(HOST) --port $(PORT)

test: setup sysdeps-test db lint
	$(BIN)/pytest -q -p no:cacheprovider

# House rules: ruff lint and format, and the import-linter contracts in setup.cfg.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --contract layers --contract pure --contract no-flask-below-web --contract thin-web --contract cli --contract thin-cli

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Debian packages, installed only when missing (one apt-get update first); the CJK font and Pango print
# the bulletin PDF (WeasyPrint).
sysdeps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing="$$missing postgis"; \
	ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	ldconfig -p | grep -q 'libpangoft2-1.0.so.0' || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	fi

# The test set-up adds Chromium, CJK fonts, poppler-utils (the bulletin and signboard PDFs read back) and zbar-tools (the signboards' QR codes decoded); everything missing is installed after one apt-get update.
sysdeps-test:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing="$$missing postgis"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	ldconfig -p | grep -q 'libpangoft2-1.0.so.0' || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v zbarimg >/dev/null 2>&1 || missing="$$missing zbar-tools"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	fi

db: setup sysdeps
	@if [ -z "$$GISGRID_DATABASE_URL" ]; then $(BIN)/gisgrid db start; else $(BIN)/gisgrid db migrate; fi

serve: setup
	$(BIN)/gisgrid serve --host $(HOST) --port $(PORT)

bench: setup db
	for f in bench/*.py; do $(BIN)/python $$f; done

clean:
	rm -rf tests/artifacts/*.png build *.egg-info

distclean: clean
	-$(BIN)/gisgrid db stop
	rm -rf $(VENV) var
