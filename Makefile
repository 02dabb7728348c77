# Two commands for a new user: `make run` (trial on SQLite, no services needed) and `make test`
# (the whole suite on PostgreSQL and Redis). Everything installs into .venv from PyPI.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OMS_HOST ?= 127.0.0.1
OMS_PORT ?= 8000
OMS_SHOPIFY_SANDBOX_PORT ?= 8801
OMS_TAOBAO_SANDBOX_PORT ?= 8802
OMS_PDD_SANDBOX_PORT ?= 8803
OMS_DOUYIN_SANDBOX_PORT ?= 8804
OMS_SF_SANDBOX_PORT ?= 8805
OMS_WECHAT_SANDBOX_PORT ?= 8806
OMS_VPRINTER_SH_PORT ?= 9101
OMS_VPRINTER_GZ_PORT ?= 9102
OMS_VPRINTER_US_NJ_PORT ?= 9103
# New orders per minute from each platform sandbox.
OMS_SANDBOX_RATE ?= 4
OMS_VAR_DIR ?= $(CURDIR)/var
SOAK_DURATION ?= 120
export OMS_HOST OMS_PORT OMS_VAR_DIR OMS_SANDBOX_RATE OMS_SHOPIFY_SANDBOX_PORT OMS_TAOBAO_SANDBOX_PORT OMS_PDD_SANDBOX_PORT OMS_DOUYIN_SANDBOX_PORT OMS_SF_SANDBOX_PORT OMS_WECHAT_SANDBOX_PORT OMS_VPRINTER_SH_PORT OMS_VPRINTER_GZ_PORT OMS_VPRINTER_US_NJ_PORT
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=
# `make bench BENCH=ingest BENCH_ARGS="--processes 2"`: which benchmark (reserve, ingest, webhook, stock_push…).
BENCH ?= reserve
BENCH_ARGS ?=
# Parallel pytest processes (pytest-xdist) for `make test`; 0 runs the suite in this one process. Each worker has
# its own test database and cache keys (tests/conftest.py); loadgroup keeps an xdist_group on one worker.
PYTEST_WORKERS ?= 3

.PHONY: help install setup run demo soak test bench lint docs services browser clean vendor

help:
	@echo "make run   - set up and start the order hub with demo data (SQLite, no services needed)"
	@echo "make test  - set up and run the whole test suite on PostgreSQL and Redis"
	@echo "make docs  - regenerate the state diagrams in docs/ (orders, parcels, print jobs) from the code"
	@echo "make soak  - the make run stack on ports of its own under load, its worker killed twice: nothing may be lost"
	@echo "             (SOAK_DURATION=120 seconds of load, about 3 minutes in all; figures as JSON)"
	@echo "make bench - run a benchmark on PostgreSQL (scratch database) and print its figures: BENCH=reserve|ingest|webhook|stock_push|kanban|print"
	@echo "make lint  - ruff"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Database schema, compiled translations and role groups; safe to run again.
setup: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py compile_translations
	$(BIN)/python manage.py roles_sync

demo: setup
	$(BIN)/python manage.py demo_data

# The trial's mini-program logs in through the local WeChat sandbox (docs/customer-api.md, "WeChat login").
run: export OMS_WECHAT_APP_ID ?= wx5a1e0d3c9b7f2e41
run: export OMS_WECHAT_APP_SECRET ?= sandbox-wechat-secret
run: export OMS_WECHAT_API_BASE ?= http://127.0.0.1:$(OMS_WECHAT_SANDBOX_PORT)
run: demo
	@bash scripts/ensure_fonts.sh
	@OMS_URL="http://$(OMS_HOST):$(OMS_PORT)/" $(BIN)/python manage.py demo_logins
	@mkdir -p $(OMS_VAR_DIR)/log
	$(BIN)/supervisord -c supervisord.conf

# Its own ports, var folder and SQLite database, so it runs beside `make run` and the tests.
soak: install
	@bash scripts/ensure_fonts.sh
	$(BIN)/python scripts/soak.py --duration $(SOAK_DURATION)

services:
	@bash scripts/ensure_services.sh

browser:
	@bash scripts/ensure_chromium.sh

test: install services browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python manage.py compile_translations
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

bench: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python manage.py bench $(BENCH) --json $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/python manage.py state_diagrams

clean:
	rm -rf $(VENV) var

# Front-end libraries from npm (package-lock.json), copied into static/ so the kanban works offline (no CDN).
vendor:
	npm ci
	mkdir -p static/vendor/sortablejs
	cp node_modules/sortablejs/Sortable.min.js node_modules/sortablejs/LICENSE static/vendor/sortablejs/
