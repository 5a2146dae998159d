# Two commands matter: `make run` and `make test`. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

# `USER` is also the login name in every shell: only a value given on the command line counts.
ifeq ($(origin USER),command line)
TOKEN_USER := --username "$(USER)"
endif
ifdef PASSWORD
TOKEN_PASSWORD := --password "$(PASSWORD)"
endif

.PHONY: run token user test test-fast lint typecheck clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP) ## Start the embedded AWS stack and the API on 127.0.0.1:$(PORT)
	PORT=$(PORT) $(BIN)/python -m devstack run

token: $(STAMP) ## Print an ID token (admin by default; USER=... PASSWORD=... for another user)
	@$(BIN)/python -m devstack token $(TOKEN_USER) $(TOKEN_PASSWORD)

user: $(STAMP) ## Add a user to the running stack: make user EMAIL=... PASSWORD=... [ADMIN=1]
	@$(BIN)/python -m devstack add-user --email "$(EMAIL)" --password "$(PASSWORD)" $(if $(ADMIN),--admin)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck ## The whole suite: lint, types, unit, integration, functional, e2e
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
