# variant-proxy — two commands on a fresh machine:
#   make run    start the proxy in front of a real llama-server + gemma model
#   make test   create .venv, install everything (llama-server, model, Prometheus) and run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/variant-proxy
export VARIANT_PROXY_CACHE := $(CACHE)

.PHONY: run test check lint types fmt venv provision system-deps bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

# A real llama-server (built from source once, cached under $(CACHE)) and the gemma GGUF.
provision: venv
	@$(PY) scripts/provision.py llama-server | tail -n 1 > $(VENV)/.llama-server
	@$(PY) scripts/provision.py model | tail -n 1 > $(VENV)/.model
	@echo "llama-server: $$(cat $(VENV)/.llama-server)"
	@echo "model:        $$(cat $(VENV)/.model)"

# Debian packages the tests use (a real Prometheus and promtool).
system-deps:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; fi; \
	fi

run: provision
	VARIANT_PROXY_LLAMA_SERVER="$$(cat $(VENV)/.llama-server)" \
	VARIANT_PROXY_MODEL="$$(cat $(VENV)/.model)" \
	$(VENV)/bin/variant-proxy serve --config config/demo.yaml

test: provision
	VARIANT_PROXY_LLAMA_SERVER="$$(cat $(VENV)/.llama-server)" \
	VARIANT_PROXY_MODEL="$$(cat $(VENV)/.model)" \
	VARIANT_PROXY_REQUIRE_REAL=1 \
	$(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check proxy tests benchmarks scripts
	$(VENV)/bin/ruff format --check proxy tests benchmarks scripts

types: venv
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff format proxy tests benchmarks scripts
	$(VENV)/bin/ruff check --fix proxy tests benchmarks scripts

check: lint types test

bench: venv
	$(PY) benchmarks/classify.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
