# Two entry points, both from a fresh clone: `make quickstart` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MLFLOW := build/mlflow-venv/bin/mlflow

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[local,aws,gcp,azure,ray,dev]'
	touch $(STAMP)

# The MLflow tracking server the experiment-tracking tests start: the full `mlflow` pins
# other versions of libraries the project's venv holds (pyarrow), so it has a venv of its
# own; the project's venv has only the client (mlflow-skinny).
mlflow-venv: $(MLFLOW)
$(MLFLOW):
	python3 -m venv build/mlflow-venv
	build/mlflow-venv/bin/pip install -q mlflow==3.17.2

# Pulumi and its SDKs for tests/export/, in a venv of their own: Pulumi pins a protobuf
# that Ray Serve's conflicts with.
PULUMI_VENV := build/pulumi-venv
PULUMI_STAMP := $(PULUMI_VENV)/.installed

$(PULUMI_STAMP):
	python3 -m venv $(PULUMI_VENV)
	$(PULUMI_VENV)/bin/pip install -q --upgrade pip
	$(PULUMI_VENV)/bin/pip install -q 'pulumi==3.272.0' 'pulumi-aws==7.51.1' 'pulumi-gcp==10.2.0'
	touch $(PULUMI_STAMP)

pulumi-venv: $(PULUMI_STAMP)

.PHONY: setup quickstart test test-fast lint typecheck bench schema mlflow-venv pulumi-venv
setup: $(STAMP)

quickstart: $(STAMP)
	$(PY) examples/quickstart/run.py

test: $(STAMP) $(MLFLOW) $(PULUMI_STAMP)
	$(VENV)/bin/ruff check .
	$(MAKE) typecheck
	$(VENV)/bin/pytest -q -n 2

# For iteration: lint, types and the tests that start no server, training run or emulator
# (a few minutes); `make test` runs everything, as CI does.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(MAKE) typecheck
	$(VENV)/bin/pytest -q -m "not e2e and not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# mypy on engine/ and ml/ (config in pyproject.toml), through links that give the folders
# their installed names: the editable install maps them with an import hook mypy cannot run.
typecheck: $(STAMP)
	mkdir -p build/typecheck/mlform
	for d in engine ml providers; do ln -sfn ../../../$$d build/typecheck/mlform/$$d; done
	$(VENV)/bin/mypy

# The generated files a test keeps current: the JSON Schema and the two references.
schema: $(STAMP)
	$(VENV)/bin/mlform schema > specs/mlform.schema.json
	$(PY) -m mlform.engine.spec.reference > docs/reference/stack.md
	$(PY) -m mlform.engine.cli.reference > docs/cli.md
