# LiveDrop: the two commands are `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench bench-publish fuzz clean synth

$(STAMP): requirements.txt requirements-dev.txt requirements-infra.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -r requirements-infra.txt
	touch $(STAMP)

dev: $(STAMP)
	$(PY) -m devstack

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy chalicelib

test: lint
	$(PY) -m pytest

# The AWS deployment as CloudFormation, into infra/cdk.out (ignored). `make synth STAGE=prod`.
STAGE ?= dev
synth: $(STAMP)
	cd infra && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_OUTDIR=cdk.out \
		CDK_CONTEXT_JSON='{"stage": "$(STAGE)"}' ../$(PY) app.py
	@echo "synthesized infra/cdk.out/$(STAGE).template.json"

# Figures go to bench/results/ (not tracked); `make bench-publish` puts the last run's in the README.
bench: $(STAMP)
	$(PY) -m bench

bench-publish: $(STAMP)
	$(PY) -m bench.publish

# A longer schemathesis run than the bounded one in `make test`.
fuzz: $(STAMP)
	LIVEDROP_FUZZ_EXAMPLES=200 $(PY) -m pytest tests/fuzz/test_schemathesis.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
