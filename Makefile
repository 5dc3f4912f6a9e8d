# `make run` and `make test` set everything up on a fresh machine: .venv, torch first (the local CPU
# build), then csibench and its dependencies under constraints.txt so nothing can replace that torch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.csibench-installed

.PHONY: run test lint install services clean-venv

install: $(STAMP)

# Device tests run a real OpenSSH server on 127.0.0.1; Debian's package brings sshd (not started by it).
# Report tests (and readers of `make run`'s report) compile the LaTeX with pdflatex (read back with pdftotext) and open the HTML page in headless Chromium.
REPORT_TOOLS := /usr/bin/pdflatex:texlive-latex-base /usr/share/texlive/texmf-dist/tex/latex/booktabs/booktabs.sty:texlive-latex-recommended \
	/usr/share/texlive/texmf-dist/tex/latex/adjustbox/adjustbox.sty:texlive-latex-extra /usr/bin/pdftotext:poppler-utils /usr/bin/chromium:chromium \
	/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core
services:
	@test -x /usr/sbin/sshd || { command -v apt-get >/dev/null && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null) || echo "install openssh-server for the device tests"; }
	@missing="$$(for pair in $(REPORT_TOOLS); do test -e "$${pair%%:*}" || echo "$${pair#*:}"; done)"; \
	test -z "$$missing" || { command -v apt-get >/dev/null && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) || echo "install $$missing for the report tests"; }

# Ray's extra goes second, resolved against what is installed: resolved together with the rest, pip backtracked
# for over 12 minutes on a fresh machine.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[test,ray]'
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

run: $(STAMP) services
	$(VENV)/bin/csibench run

test: $(STAMP) services
	$(PY) -m pytest

# ruff (pyflakes, pycodestyle errors, isort, pyupgrade, bugbear) and mypy over csibench/, configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check csibench tests
	$(VENV)/bin/mypy

clean-venv:
	rm -rf $(VENV)
