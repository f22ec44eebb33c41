# ccg-privacy-pipeline: `make demo` runs the pipeline end to end; `make test` runs the tests.
# Both bootstrap .venv from requirements.lock on a fresh machine (Python 3.11, pip, apt).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

# Local, committed dev settings (see README "Configuration"). Override any of them per call.
export CCG_HOME ?= $(CURDIR)/var
export CCG_SOURCE_DIR ?= $(CCG_HOME)/sources
export AIRFLOW_HOME ?= $(CCG_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export NO_PROXY := *

export DEMO_AS_OF ?= 2026-11-23
export DEMO_RUN_DATE ?= 2026-11-24
export DEMO_SEED ?= 42
# Enough customers that most revenue and traffic cells clear the minimum cell size of 10.
export DEMO_COMPANIES ?= 1500
export DEMO_PROSPECTS ?= 800
PYTEST_ARGS ?=

.PHONY: help venv lock demo test test-unit lint fmt airflow env browser-deps postgres-deps bench-ingest bench-retention bench-peers bench-presidio bench-scan bench-evidence bench-disclosure soak soak-daily soak-years soak-quick soak-scheduler clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI images often set
# it), each new Python process would otherwise compile Airflow, GX and pandas from source, and
# the tests start many (workers, CLI runs, schedulers, task children).
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

venv: $(STAMP)  ## create .venv from the lock

lock:  ## re-resolve requirements.lock (with dev tools) and the image's runtime lock, same pins
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -c requirements.lock -o deploy/requirements-runtime.lock

demo: $(STAMP)  ## generate demo data and run the DAGs through Airflow, then print a summary
	@bash scripts/demo.sh

# Test processes side by side (pytest-xdist), one test module each at a time: each has its own
# Airflow home and PostgreSQL server. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: $(STAMP) postgres-deps browser-deps  ## run the whole test suite (unit, DAG integrity, integration on SQLite and PostgreSQL)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: $(STAMP)  ## fast tests only
	$(BIN)/pytest -m "unit or dags" $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff check and format check, mypy, import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

fmt: $(STAMP)  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

airflow: $(STAMP)  ## start the local Airflow UI (standalone) with the DAGs loaded
	@echo "Airflow UI: http://localhost:8080 (user 'admin'; the password is printed below and kept in $(AIRFLOW_HOME))"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/airflow standalone

env: $(STAMP)  ## write a fresh .env with every deployment secret (refuses to replace one; FORCE=1 does)
	$(BIN)/python -m ccg_pipeline.deploy.secrets_env --output .env $(if $(FORCE),--force)

browser-deps:  ## install Debian's chromium through apt when missing (the Privacy view's browser test)
	@if command -v chromium >/dev/null 2>&1; then echo "chromium present"; else \
		echo "Installing chromium through apt"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

postgres-deps:  ## install PostgreSQL server binaries through apt when none are present
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "PostgreSQL binaries present"; \
	else \
		echo "Installing PostgreSQL through apt"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

bench-ingest: $(STAMP)  ## ingest throughput on generated logs (BENCH_LINES, default 1M)
	$(BIN)/python benchmarks/ingest_throughput.py

bench-retention: $(STAMP)  ## retention sweep vs bare DELETE on a 10M-row log table (BENCH_ROWS)
	$(BIN)/python benchmarks/retention_sweep.py --rows $${BENCH_ROWS:-10000000}

bench-scan: $(STAMP)  ## identifier scan throughput on one core, and recall on planted identifiers
	$(BIN)/python benchmarks/scan_throughput.py

bench-disclosure: $(STAMP)  ## disclosure control at demo size: cells withheld, relative error by cell size, the release audit
	$(BIN)/python benchmarks/disclosure_utility.py

SOAK_OUT ?= benchmarks/results
SOAK_YEARS ?= 2
SOAK_SCHEDULER_DAYS ?= 8
# Each long soak keeps its files and checkpoints here; the same make target again resumes a
# stopped soak (SOAK_FRESH=1 starts over). Removed after a clean soak.
SOAK_WORK ?= .soak-work

# One soak profile on SQLite and PostgreSQL side by side, then its report: $(call both_backends,PROFILE,ARGS).
# Logs are appended to, so a resumed soak's log keeps the part before the stop.
soak_args = --profile $(1) $(2) --out $(SOAK_OUT) --work $(SOAK_WORK)/$(1)-$(3) $(if $(SOAK_FRESH),--fresh)
define both_backends
	@mkdir -p $(SOAK_OUT)
	@echo "Soak $(1) on SQLite and PostgreSQL in parallel; progress in $(SOAK_OUT)/soak-$(1)-{sqlite,postgresql}.log"
	@$(BIN)/python -m ccg_pipeline.devtools.soak $(call soak_args,$(1),$(2),sqlite) --backend sqlite >>$(SOAK_OUT)/soak-$(1)-sqlite.log 2>&1 & lite=$$!; \
	$(BIN)/python -m ccg_pipeline.devtools.soak $(call soak_args,$(1),$(2),postgresql) --backend postgresql >>$(SOAK_OUT)/soak-$(1)-postgresql.log 2>&1 & pg=$$!; \
	status=0; wait $$lite || status=1; wait $$pg || status=1; \
	tail -n 3 $(SOAK_OUT)/soak-$(1)-sqlite.log $(SOAK_OUT)/soak-$(1)-postgresql.log; \
	test $$status -eq 0
endef

soak: soak-daily soak-years soak-scheduler  ## all three long soaks (about 5 h on 2 cores); summary in $(SOAK_OUT)/soak.md
	$(BIN)/python -m ccg_pipeline.devtools.soak report $(SOAK_OUT)/soak-long-*.json $(SOAK_OUT)/soak-years*.json --out $(SOAK_OUT)

soak-daily: $(STAMP) postgres-deps  ## SOAK_YEARS (2) simulated years, daily, through the real DAGs on SQLite and PostgreSQL
	$(call both_backends,long,--years $(SOAK_YEARS))

soak-years: $(STAMP) postgres-deps  ## seven simulated years, the DAGs monthly between dense days, on SQLite and PostgreSQL
	$(call both_backends,years,)

soak-scheduler: $(STAMP) postgres-deps  ## a real scheduler catches up on SOAK_SCHEDULER_DAYS (8) missed days, unattended; the soak's invariants after it
	$(BIN)/python -m ccg_pipeline.devtools.scheduled_soak --days $(SOAK_SCHEDULER_DAYS) --out $(SOAK_OUT)

soak-quick: $(STAMP)  ## the quick soak profile (60 simulated days, SQLite), as make test runs it, with its report
	$(BIN)/python -m ccg_pipeline.devtools.soak --profile quick --out $(SOAK_OUT)
	$(BIN)/python -m ccg_pipeline.devtools.soak report $(SOAK_OUT)/soak-quick-sqlite.json --out $(SOAK_OUT)/quick

bench-evidence: $(STAMP)  ## compliance evidence and breach impact on a 2k- and a 20k-company warehouse
	$(BIN)/python benchmarks/evidence_breach.py

bench-peers: $(STAMP)  ## k-anonymity vs ANJANA and pyCANON, in their own venv (.venv-peers)
	@test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	$(BIN)/uv pip sync --quiet --python .venv-peers/bin/python benchmarks/requirements-peers.lock
	PYTHONPATH=$(CURDIR) .venv-peers/bin/python benchmarks/kanonymity_peers.py

bench-presidio: $(STAMP)  ## identifier scan vs Presidio's analyzer on one sample, in its own venv (.venv-presidio)
	@test -x .venv-presidio/bin/python || $(PYTHON) -m venv .venv-presidio
	$(BIN)/uv pip sync --quiet --python .venv-presidio/bin/python benchmarks/requirements-presidio.lock
	PYTHONPATH=$(CURDIR) .venv-presidio/bin/python benchmarks/scan_vs_presidio.py

# The daily cycle at scale (benchmarks/daily_cycle.py) with every peer comparison in one run.
.PHONY: bench bench-quick bench-report bench-gx
BENCH_CYCLE ?= daily_cycle
BENCH_GX ?= gx_backends

bench-gx: $(STAMP) postgres-deps  ## GX validation, one suite on pandas vs on the SQL backend (BENCH_GX_ROWS, default 1M)
	$(BIN)/python benchmarks/gx_backends.py --rows $${BENCH_GX_ROWS:-1000000}

bench: $(STAMP) postgres-deps  ## all in one run: daily cycle at S and M on SQLite and PostgreSQL, every peer, summary, plot (~1 h)
	$(MAKE) --no-print-directory bench-presidio bench-peers bench-retention bench-gx
	$(BIN)/python benchmarks/daily_cycle.py --scales S M
	$(MAKE) --no-print-directory bench-report

bench-quick: $(STAMP) postgres-deps  ## daily cycle at XS and S, GX on 100k rows, summary with the last peer results, plot (~5 min)
	$(BIN)/python benchmarks/gx_backends.py --rows 100000 --repeats 1 --name gx_backends_quick
	$(BIN)/python benchmarks/daily_cycle.py --scales XS S --name daily_cycle_quick
	$(MAKE) --no-print-directory bench-report BENCH_CYCLE=daily_cycle_quick BENCH_GX=gx_backends_quick

bench-report: $(STAMP)  ## benchmarks/results/bench_summary*.md (peers as ratios) and the daily cycle's PNG (own venv, .venv-plot)
	$(BIN)/python benchmarks/bench_summary.py --cycle $(BENCH_CYCLE) --gx $(BENCH_GX)
	@test -x .venv-plot/bin/python || $(PYTHON) -m venv .venv-plot
	$(BIN)/uv pip sync --quiet --python .venv-plot/bin/python benchmarks/requirements-plot.lock
	.venv-plot/bin/python benchmarks/plot_daily_cycle.py --cycle $(BENCH_CYCLE)

clean:  ## remove generated data, the local Airflow home and caches
	rm -rf var .venv-peers .venv-presidio .venv-plot .pytest_cache .ruff_cache .hypothesis
