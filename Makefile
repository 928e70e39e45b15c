# LiveDrop: the two commands are `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test unit lint bench bench-publish fuzz clean synth scale screenshots
comma := ,

# pip's own progress is shown: the first install takes minutes. An interrupted install leaves no stamp,
# so the next run picks it up again (and a venv cut short before it had pip is completed).
$(STAMP): requirements.txt requirements-dev.txt requirements-infra.txt
	@test -x $(VENV)/bin/pip || { echo "== creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "== installing the Python packages into $(VENV) (the first time takes a few minutes)"
	$(PY) -m pip install --disable-pip-version-check --upgrade 'pip<26.3'
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt -r requirements-infra.txt
	touch $(STAMP)

# `make dev HTTP_PORT=9000 WS_PORT=9001`; other flags of `python -m devstack` go in ARGS (ARGS=--no-demo).
# `make dev DATA=.devdata` keeps users, drops and orders across restarts (saved on Ctrl-C).
HTTP_PORT ?= 8000
WS_PORT ?= 8001
DATA ?=
ARGS ?=
dev: $(STAMP)
	$(PY) -m devstack --http-port $(HTTP_PORT) --ws-port $(WS_PORT)$(if $(DATA), --data $(DATA))$(if $(ARGS), $(ARGS))

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy app.py chalicelib devstack infra

# Two pytest workers (pytest-xdist), each with a dev stack of its own, the tests of a file kept together:
# most stack tests wait on the pipeline rather than use a core. The unit tier runs first, on its own,
# so that no dev stack runs in the processes that check nothing listens.
# The unit tier leaves out the plugins only the stack tiers use (schemathesis, locust): importing them
# took each of its three processes 1.5 s.
WORKERS ?= 2
UNIT := -n $(WORKERS) -p no:schemathesis -p no:locust tests/unit
test: lint
	$(PY) -m pytest $(UNIT)
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --ignore=tests/unit

# The unit tier alone: no dev stack, no server (AWS is moto in the test processes); under 30 s.
unit: $(STAMP)
	$(PY) -m pytest $(UNIT)

# The AWS deployment as CloudFormation, into infra/cdk.out (ignored).
# `make synth STAGE=prod ALARM_EMAIL=oncall@example.com` (prod refuses to build without someone to page).
STAGE ?= dev
ALARM_EMAIL ?=
synth: $(STAMP)
	cd infra && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_OUTDIR=cdk.out \
		CDK_CONTEXT_JSON='{"stage": "$(STAGE)"$(if $(ALARM_EMAIL),$(comma) "alarm_email": "$(ALARM_EMAIL)")}' ../$(PY) app.py
	@echo "synthesized infra/cdk.out/$(STAGE).template.json"

# Figures go to bench/results/ (not tracked); `make bench-publish` puts the last run's in docs/benchmarks.md.
# `make bench PROFILE=1` also records a py-spy profile of each measured phase (its figures then read low).
bench: $(STAMP)
	$(if $(PROFILE),LIVEDROP_BENCH_PROFILE=$(PROFILE) )$(PY) -m bench

bench-publish: $(STAMP)
	$(PY) -m bench.publish

# The big-work stages at full size (not in `make test`, which runs them at a few hundred): a 20,000-person
# waiting room, a 20,000-entry draw and a 5,000-unit sharded sell-out, each with its figures.
scale: $(STAMP)
	$(PY) -m bench.scale$(if $(ARGS), $(ARGS))

# The browser tests, saving a screenshot of each main view into docs/screenshots/ (docs/web.md shows them).
screenshots: $(STAMP)
	LIVEDROP_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser -q

# A longer schemathesis run than the bounded one in `make test`.
fuzz: $(STAMP)
	LIVEDROP_FUZZ_EXAMPLES=200 $(PY) -m pytest tests/fuzz/test_schemathesis.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
