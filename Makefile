# Two commands do all the set-up on a fresh Debian machine:
#   make run    install (Debian packages + pip) and start the app, offline, on its defaults
#   make test   install what the tests need and run them
# Both are idempotent: a second run installs nothing new.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_RUNTIME := $(shell grep -v '^\#' packages.txt)
APT_DEV     := $(shell grep -v '^\#' packages-dev.txt)

.PHONY: run test install install-dev system system-dev

run: install
	$(BIN)/python app.py $(ARGS)

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: system $(VENV)/.installed
install-dev: system-dev $(VENV)/.installed-dev

system:
	@dpkg -s $(APT_RUNTIME) >/dev/null 2>&1 || { $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(APT_RUNTIME); }

system-dev: system
	@dpkg -s $(APT_DEV) >/dev/null 2>&1 || { $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(APT_DEV); }

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-eval.txt requirements-convert.txt requirements-finetune.txt requirements-dev-nodeps.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-dev-nodeps.txt
	touch $@ $(VENV)/.installed
