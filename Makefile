# `make run` and `make test` set everything up on a fresh machine: .venv, torch first (the local CPU
# build), then csibench and its dependencies under constraints.txt so nothing can replace that torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.csibench-installed

.PHONY: run test install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/csibench run

test: $(STAMP)
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
