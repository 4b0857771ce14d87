# The two commands of the README: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Read lazily, after `tools` has written the file.
tool = $(shell sed -n 's/^$(1)=//p' .akros/tools/paths 2>/dev/null)
UV = $(call tool,UV)

.PHONY: help tools browser sync lint typecheck test test-cluster run demo asyncapi openapi bench \
	peer-suite

help:
	@echo "make run    start the platform on embedded defaults (Ctrl-C stops it)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make test-cluster  the end-to-end tier against the cluster AKROS_TEST_KUBECONFIG names"
	@echo "make demo   tell the platform's story against a running \`make run\`"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make peer-suite  the official Python client's own e2e tests against kubesim"

tools:
	@scripts/ensure-tools.sh

# Debian's chromium, for the dashboard's browser test only (`make run` does not need it).
browser:
	@AKROS_WITH_BROWSER=1 scripts/ensure-tools.sh

sync: tools
	@$(UV) sync --all-packages --frozen --quiet

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports --no-logo --no-cache

typecheck: sync
	$(UV) run --frozen mypy

TEST_ENV = AKROS_KUBECTL=$(call tool,KUBECTL) AKROS_KUBECTL_NEWEST=$(CURDIR)/.venv/bin/kubectl \
	AKROS_REDIS_SERVER=$(call tool,REDIS_SERVER) AKROS_CHROMIUM=$(call tool,CHROMIUM) \
	AKROS_NGINX=$(call tool,NGINX)

# The suite, then the real-cluster tier once more against a kubesim started as a separate
# process and reached only through its kubeconfig, so that tier cannot rot. The suite runs on
# PYTEST_WORKERS workers (pytest-xdist), a file's tests on one worker in order, sharing its
# fixtures; each worker has its own Redis. The tier stays on one: it shares one cluster.
PYTEST_WORKERS ?= 2
test: browser lint typecheck
	$(TEST_ENV) $(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadfile
	$(TEST_ENV) $(UV) run --frozen python -m tests.cluster_tier_on_kubesim

# The end-to-end and resilience tests marked `cluster`, against a real cluster (RKE2, k3s,
# kind): the tier creates what the platform needs there and removes only what it created.
# CLUSTER_TIER narrows it: 'cluster and not gpus' on a cluster without GPU nodes.
CLUSTER_TIER ?= cluster
test-cluster: sync
	@test -n "$$AKROS_TEST_KUBECONFIG" || { \
		echo "make test-cluster: set AKROS_TEST_KUBECONFIG to the cluster's kubeconfig" >&2; exit 2; }
	$(TEST_ENV) $(UV) run --frozen pytest -m "$(CLUSTER_TIER)"

run: sync
	AKROS_REDIS_SERVER=$(call tool,REDIS_SERVER) $(UV) run --frozen python -m akros_devtools.devstack

# The platform's story against what `make run` started (run that first, in another terminal).
demo: sync
	$(UV) run --frozen python -m akros_devtools.demo

asyncapi: sync
	$(UV) run --frozen python -m akros_bus.asyncapi > docs/asyncapi.json

openapi: sync
	$(UV) run --frozen python -m akros_gateway.openapi > docs/openapi.json

bench: sync
	@for b in backbone kubesim_scale env_pipeline capacity_reaction usage_cycle slack_ack \
		load_environments resilience_faults; do \
		echo "== bench/$$b.py"; $(UV) run --frozen python -m "bench.$$b" || exit 1; done

# kubernetes-client/python's kubernetes/e2e_test at a pinned commit, against a fresh kubesim
# (libs/kubesim/README.md, "A peer's test suite"). UPSTREAM=<git dir> names a clone of it.
peer-suite: sync
	$(UV) run --frozen python libs/kubesim/scripts/peer_suite.py $(if $(UPSTREAM),--upstream $(UPSTREAM))
