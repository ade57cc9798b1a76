# Two commands do all the set-up on a fresh Debian machine:
#   make run    install (Debian packages + pip) and start the app, offline, on its defaults
#   make test   install what the tests need and run them all (what CI runs)
#   make check  the fast tier: ruff and the tests that load no model, start no app and drive no browser
# All are idempotent: a second run installs nothing new.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
APT_RUNTIME := $(shell grep -v '^\#' packages.txt)
APT_DEV     := $(shell grep -v '^\#' packages-dev.txt)
comma := ,

.PHONY: run test check install install-dev system system-dev image

run: install
	$(BIN)/python app.py $(ARGS)

# The tiers are markers that tests/conftest.py applies from the fixtures a test uses.
FAST := not model and not server and not browser and not bench

test: install-dev
	$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

check: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "$(FAST)" --timeout=90 --durations=15 $(PYTEST_ARGS)

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

# The project itself is installed editable with the project root on sys.path (compat mode), so
# `python benchmarks/X.py` imports voiceqna and benchmarks from this checkout.
$(VENV)/.installed: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e . --config-settings editable_mode=compat
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt requirements-eval.txt requirements-convert.txt requirements-finetune.txt requirements-dev-nodeps.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -r requirements-dev-nodeps.txt
	$(BIN)/pip install -q --no-deps -e . --config-settings editable_mode=compat
	touch $@ $(VENV)/.installed

# The container image (Dockerfile), built with docker or podman, whichever runs here (podman in the
# docker format, which keeps the HEALTHCHECK; CONTAINER_ENGINE=podman picks one).
#   make image                                   IMAGE=voiceqna:latest
#   make image EXTRA_CA=/etc/ssl/certs/ca-certificates.crt   trust a proxy's CA bundle during the build only
#   make image BUILD_FLAGS=--pull=never          extra flags for `build`
IMAGE       ?= voiceqna:latest
EXTRA_CA    ?=
BUILD_FLAGS ?=

image:
	@engine=$${CONTAINER_ENGINE:-$$(for e in docker podman; do $$e info >/dev/null 2>&1 && { echo $$e; break; }; done)}; \
	if [ -z "$$engine" ]; then echo "make image: neither docker nor podman runs here (see docs/deployment.md)" >&2; exit 1; fi; \
	format=; [ $$engine = podman ] && format="--format docker"; \
	set -x; DOCKER_BUILDKIT=1 $$engine build $$format $(if $(EXTRA_CA),--secret id=extra-ca$(comma)src=$(EXTRA_CA)) $(BUILD_FLAGS) -t $(IMAGE) .
