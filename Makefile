# Everything a developer or CI needs: `make test` sets up the venv, builds the control plane
# (once, into a cache outside git) and runs every test; `make demo` runs the project end to end.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KUBERNETES_VERSION ?= v1.37.2
PYTEST_ARGS ?=

.PHONY: help venv controlplane test test-unit lint helm-lint demo bench profile chaos clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP) ## Create or refresh the virtual environment

controlplane: $(STAMP) ## Build etcd, kube-apiserver, kube-scheduler, kube-controller-manager and helm into the cache (skips what exists)
	$(BIN)/python -m localcluster build --kubernetes-version $(KUBERNETES_VERSION)

test: controlplane ## Run every test (unit and real control plane)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run only the tests that need no server
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

helm-lint: $(STAMP) ## helm lint --strict of the chart (builds only helm if missing)
	$(BIN)/python -m localcluster build --only helm --kubernetes-version $(KUBERNETES_VERSION)
	$(BIN)/python -m localcluster.helm lint helm/vaclab-bandwidth --strict

demo: controlplane ## Local control plane, simulated nodes, our daemons and a sample workload
	$(BIN)/python -m localcluster demo

BENCH_ARGS ?= --preset medium
bench: controlplane ## vaclab vs kube-scheduler (extended resources, DRA) vs a raw binder, plus decision timings (BENCH_ARGS=...)
	$(BIN)/python -m bench $(BENCH_ARGS)

PROFILE_ARGS ?= --preset medium
profile: controlplane ## py-spy profile of vaclab's scheduler in a burst run, into bench-results/profile (PROFILE_ARGS=...)
	$(BIN)/python -m bench $(PROFILE_ARGS) --contenders vaclab --arrivals burst --decisions '' --memory '' --profile --out bench-results/profile

CHAOS_ARGS ?= --minutes 30
chaos: controlplane ## Seeded chaos soak: faults, two schedulers, an auditor of the books (CHAOS_ARGS=...)
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean: ## Remove the venv and caches inside the work tree (the control plane cache stays)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
