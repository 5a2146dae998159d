# Two commands matter: `make run` and `make test`. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
STAGE ?= prod
OUT ?= out
DEPLOYED_STAGES := dev staging prod
# npm's test tools (newman), pinned in package.json and package-lock.json.
NODE_STAMP := node_modules/.installed
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed
AWSCLI_VENV := .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed
# chalice package needs a region to render ARNs; no AWS call is made.
export AWS_DEFAULT_REGION ?= us-east-1

# What `make run` and `make test` need from the system, checked (and installed from Debian's
# packages where this user may) while make reads this file: before any venv or npm work, even with
# -j. What is still missing stops make with one line naming it and the command that installs it.
CHECKED_GOAL := $(firstword $(filter test run,$(MAKECMDGOALS)))
ifneq ($(CHECKED_GOAL),)
PREREQUISITES_MISSING := $(shell PYTHON='$(PYTHON)' $(SHELL) .ci/prerequisites $(CHECKED_GOAL))
ifneq ($(PREREQUISITES_MISSING),)
$(error $(PREREQUISITES_MISSING))
endif
endif

# `USER` is also the login name in every shell: only a value given on the command line counts.
ifeq ($(origin USER),command line)
TOKEN_USER := --username "$(USER)"
endif
ifdef PASSWORD
TOKEN_PASSWORD := --password "$(PASSWORD)"
endif
ifdef NEW_PASSWORD
TOKEN_PASSWORD += --new-password "$(NEW_PASSWORD)"
endif

.PHONY: help fuzz rehearse run token user outbox drift replay-dlq reindex events import export loadtest bench localstack-bench bulk-bench test lint typecheck clean package package-tf base-template cleanup policies lint-infra release-tf

# A bare `make` lists the targets.
.DEFAULT_GOAL := help

help: ## List the targets with what each does (also what a bare `make` prints)
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-z][a-z-]*:.*## / { printf "  %-17s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

$(INFRA_STAMP): requirements-infra.txt requirements-actionlint.txt
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	@$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-actionlint.txt \
		>/dev/null 2>&1 || echo "actionlint could not be installed (it downloads from GitHub releases); lint-infra will say it skipped it"
	@touch $(INFRA_STAMP)

$(AWSCLI_STAMP): requirements-awscli.txt
	@test -x $(AWSCLI_VENV)/bin/python || $(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-awscli.txt
	@touch $(AWSCLI_STAMP)

run: $(STAMP) ## Start the embedded AWS stack and the API on http://127.0.0.1:8000 (PORT=9000 for another port); Ctrl-C stops both
	PORT=$(PORT) $(BIN)/python -m devstack run

token: $(STAMP) ## Print an ID token of the running stack: the seeded admin's; MEMBER=1 the seeded member's; USER=... PASSWORD=... anyone's (NEW_PASSWORD=...: an invited user's first sign-in)
	@$(BIN)/python -m devstack token $(TOKEN_USER) $(TOKEN_PASSWORD) $(if $(MEMBER),--member)

user: $(STAMP) ## Add a user (sign-in and record, as POST /users makes them) to the running stack: make user EMAIL=... PASSWORD=... [ADMIN=1] [NAME=...]
	@$(BIN)/python -m devstack add-user --email "$(EMAIL)" --password "$(PASSWORD)" $(if $(ADMIN),--admin) $(if $(NAME),--name "$(NAME)")

drift: $(STAMP) ## Sign-ins and records that disagree on STAGE (local: the running `make run`); FIX=1 repairs them (operator credentials for deployed stages)
	$(BIN)/python -m ops drift $(if $(filter $(origin STAGE),command line),$(STAGE),local) $(if $(FIX),--fix)

replay-dlq: $(STAMP) ## Hand the change consumer the stream records it gave up on (its dead-letter queue), again, on STAGE (local: the running `make run`); DROP_TRIMMED=1 drops those the stream no longer holds
	$(BIN)/python -m ops replay-dlq $(if $(filter $(origin STAGE),command line),$(STAGE),local) $(if $(DROP_TRIMMED),--drop-trimmed)

reindex: $(STAMP) ## After an upgrade: give every user of STAGE (local: the running `make run`) the keys GET /users searches by (operator credentials for deployed stages)
	$(BIN)/python -m ops reindex $(if $(filter $(origin STAGE),command line),$(STAGE),local)

outbox: $(STAMP) ## The latest mails the running stack would have sent (LAST=n, default 10): invitations (temporary passwords), password resets, email-change codes
	@$(BIN)/python -m devstack outbox $(if $(LAST),--last $(LAST))

events: $(STAMP) ## The latest change events the running stack published to its bus (LAST=n, default 10), from .local/events.jsonl
	@$(BIN)/python -m devstack events $(if $(LAST),--last $(LAST))

import: $(STAMP) ## Import users from FILE (CSV name,email[,phone][,role], or .jsonl) into the running stack, with progress (INVITE=0: no invitations); exit 1 if a row failed
	@$(BIN)/python -m devstack import --file "$(FILE)" $(if $(filter 0,$(INVITE)),--no-invite)

export: $(STAMP) ## Export every user of the running stack to a file (FORMAT=csv, default JSON Lines; OUT=path)
	@$(BIN)/python -m devstack export $(if $(FORMAT),--format "$(FORMAT)") $(if $(filter command line,$(origin OUT)),--out "$(OUT)")

loadtest: $(STAMP) ## 20 clients for 60 s on a fresh local stack, then checks nothing was lost (STACK_FILE=.local/stack.json: a running `make run`; CLIENTS=, DURATION=)
	$(BIN)/python -m loadtest $(if $(STACK_FILE),--stack-file "$(STACK_FILE)") $(if $(CLIENTS),--clients $(CLIENTS)) $(if $(DURATION),--duration $(DURATION))

bench: $(STAMP) ## Cold start, request overhead, DynamoDB requests, package size, local latency and cost, each against its target (QUICK=1: a smoke run)
	$(BIN)/python -m bench $(if $(QUICK),--quick)

localstack-bench: $(STAMP) ## The local stack against its targets: create p50 at 10,000 users within 1.5x of an empty table, RSS < 600 MB after a `make loadtest` run, Ctrl-C within 2 s (QUICK=1: a smoke run)
	$(BIN)/python -m bench.local_stack_scale $(if $(QUICK),--quick)

bulk-bench: $(STAMP) ## Bulk jobs on a fresh local stack: import 10,000 rows, again, with the worker killed and AWS faults; export 100,000 users (QUICK=1: small)
	$(BIN)/python -m bench.bulk_jobs $(if $(QUICK),--quick)

lint: $(STAMP) ## ruff: lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy, strict
	$(BIN)/mypy

package: $(STAMP) ## CloudFormation for STAGE (default prod): out/STAGE/cloudformation/{sam.json,deployment.zip} (INDEX_STEP=n: an upgrade's step, docs/DEPLOY.md)
	$(BIN)/python -m infra package $(STAGE) $(OUT)/$(STAGE)/cloudformation $(if $(INDEX_STEP),--index-step $(INDEX_STEP))

package-tf: $(STAMP) ## Terraform for STAGE: out/STAGE/terraform/
	$(BIN)/python -m infra package-tf $(STAGE) $(OUT)/$(STAGE)/terraform

release-tf: $(STAMP) ## After `terraform apply` in out/STAGE/terraform: CodeDeploy moves each function's live alias to the new version (hook, canary, rollback), each within a timeout (TIMEOUT=s)
	$(BIN)/python -m ops.release_tf $(OUT)/$(STAGE)/terraform $(if $(TIMEOUT),--timeout $(TIMEOUT))

base-template: $(STAMP) ## Table, pool and secret for the `chalice deploy` path: out/STAGE/base.json (INDEX_STEP=n: an upgrade's step)
	$(BIN)/python -m infra base-template $(STAGE) $(OUT)/$(STAGE)/base.json $(if $(INDEX_STEP),--index-step $(INDEX_STEP))

cleanup: $(STAMP) ## What a failed or deleted CloudFormation stack of STAGE left behind (retained tables, bucket, secret, pool), listed; CONFIRM=1 deletes what holds no data, DATA=1 the rest too (operator credentials)
	@$(if $(filter $(origin STAGE),command line),,echo "make cleanup: name the stage: make cleanup STAGE=dev|staging|prod" >&2; exit 2)
	$(BIN)/python -m ops cleanup $(STAGE) $(if $(CONFIRM),--confirm) $(if $(DATA),--data)

policies: $(STAMP) ## Regenerate .chalice/policy-<stage>.json
	$(BIN)/python -m infra policies

lint-infra: $(STAMP) $(INFRA_STAMP) ## cfn-lint, checkov and (if installed) terraform fmt/validate on every deployed stage; zizmor and actionlint on the workflows
	@for stage in $(DEPLOYED_STAGES); do \
		$(BIN)/python -m infra package $$stage $(OUT)/$$stage/cloudformation >/dev/null && \
		$(BIN)/python -m infra package-tf $$stage $(OUT)/$$stage/terraform >/dev/null || exit 1; \
	done
	$(INFRA_VENV)/bin/python infra/lint.py $(addprefix $(OUT)/,$(DEPLOYED_STAGES))

rehearse: $(STAMP) $(AWSCLI_STAMP) ## Every deploy command of docs/DEPLOY.md and deploy.yml, run as written against the emulator with the real AWS CLI and Terraform (logs in out/rehearsal/)
	$(BIN)/python -m infra.rehearsal

test: $(STAMP) $(NODE_STAMP) lint typecheck lint-infra rehearse ## The whole suite: lint, types, infra lint, unit, integration, functional, e2e, browser, Postman (newman)
	@# The in-process layers spread over the cores; then the e2e layer, a file per worker (its
	@# module-scoped stacks stay whole), each worker with its own session stack on ports the OS
	@# picks. Four e2e workers on two cores, the longest files handed out first: the contract test
	@# keeps one busy for about a minute while the other three share the rest, whose tests wait on
	@# their stacks much of the time (three workers left the cores idle a quarter of the layer's
	@# time: 4-5 s longer in two alternating pairs, five no better). Each run prints its slowest tests.
	$(BIN)/python -m pytest -n auto --durations=15 tests/unit tests/integration tests/infra tests/functional
	$(BIN)/python -m pytest -n 4 --dist loadfile --no-loadscope-reorder --durations=15 tests/e2e

fuzz: $(STAMP) ## The model-based test of docs/DESIGN.md's invariant, long: EXAMPLES= random sequences (default 2000) of up to STEPS= steps (default 20) over JOBS= processes (default 2); a failing sequence is shrunk and printed
	@rm -rf $(OUT)/fuzz
	MODEL_FUZZ=1 MODEL_EXAMPLES=$$(( $(or $(EXAMPLES),2000) / $(or $(JOBS),2) )) MODEL_STEPS=$(or $(STEPS),20) \
		MODEL_SHARDS=$(or $(JOBS),2) MODEL_REPORT_DIR=$(OUT)/fuzz \
		$(BIN)/python -m pytest -n $(or $(JOBS),2) -q tests/functional/test_model.py -k random_sequences; \
		status=$$?; cat $(OUT)/fuzz/*.txt 2>/dev/null; exit $$status

clean: ## Remove the virtualenvs, build output, .local and caches
	rm -rf $(VENV) $(INFRA_VENV) $(AWSCLI_VENV) $(OUT) node_modules .local .pytest_cache .mypy_cache .ruff_cache
