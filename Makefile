# variant-proxy — two commands on a fresh machine:
#   make run    start the proxy in front of a real llama-server + gemma model
#   make test   create .venv, install everything (llama-server, model, Prometheus) and run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/variant-proxy
export VARIANT_PROXY_CACHE := $(CACHE)

.PHONY: run test check lint types fmt venv provision system-deps bench-deps bench bench-classify clean install-service install-user-service

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

# A real llama-server (built from source once, cached under $(CACHE)), the gemma GGUF and
# its F16 build made with llama-quantize (the demo's second variant, cached beside it).
provision: venv
	@$(PY) scripts/provision.py llama-server | tail -n 1 > $(VENV)/.llama-server
	@$(PY) scripts/provision.py model | tail -n 1 > $(VENV)/.model
	@$(PY) scripts/provision.py model-f16 | tail -n 1 > $(VENV)/.model-f16
	@echo "llama-server: $$(cat $(VENV)/.llama-server)"
	@echo "model:        $$(cat $(VENV)/.model)"
	@echo "model (F16):  $$(cat $(VENV)/.model-f16)"

# What config/demo.yaml reads: the binary and the two GGUFs.
DEMO_ENV = VARIANT_PROXY_LLAMA_SERVER="$$(cat $(VENV)/.llama-server)" \
	VARIANT_PROXY_MODEL="$$(cat $(VENV)/.model)" \
	VARIANT_PROXY_MODEL_F16="$$(cat $(VENV)/.model-f16)"

# Debian packages the tests use: a real Prometheus and promtool, systemd-analyze for the
# unit files, strace for the syscall-filter test, curl for the README recipes, chromium for
# the browser tests; and what the benchmark runs answers with (BENCH_NEEDS): bubblewrap
# for its sandbox, gcc and node for the C and JavaScript tasks.
BENCH_NEEDS := bwrap:bubblewrap gcc:gcc node:nodejs
APT_NEEDS := prometheus:prometheus promtool:prometheus systemd-analyze:systemd strace:strace curl:curl shellcheck:shellcheck chromium:chromium $(BENCH_NEEDS)
define apt_install
	@missing=""; for pair in $(1); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$(echo $$missing | tr ' ' '\n' | sort -u) >/dev/null; \
	fi
endef
system-deps:
	$(call apt_install,$(APT_NEEDS))
bench-deps:
	$(call apt_install,$(BENCH_NEEDS))

run: provision
	$(DEMO_ENV) $(VENV)/bin/variant-proxy serve --config config/demo.yaml

test: provision system-deps
	$(DEMO_ENV) VARIANT_PROXY_REQUIRE_REAL=1 $(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check proxy tests benchmarks scripts
	$(VENV)/bin/ruff format --check proxy tests benchmarks scripts

types: venv
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff format proxy tests benchmarks scripts
	$(VENV)/bin/ruff check --fix proxy tests benchmarks scripts

check: lint types test

# The demo's two variants through the proxy: HumanEval by each variant's protocol, speed, RSS
# (docs/benchmark.md#the-demo-comparison); the report goes to benchmarks/results/demo/.
bench: provision bench-deps
	$(DEMO_ENV) $(VENV)/bin/variant-proxy bench --config config/demo.yaml \
		--suite instruction --max-tokens 128 --out benchmarks/results/demo

# Classification speed (p50/p99 per request size); see also benchmarks/.
bench-classify: venv
	$(PY) benchmarks/classify.py

install-service: venv
	$(if $(filter 0,$(shell id -u)),,sudo) scripts/install-service.sh system

install-user-service: venv
	scripts/install-service.sh user

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
