# The README's two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
JOBS   ?= 2
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo demo-all test lab env data hub clean-results help
.DEFAULT_GOAL := help

help:
	@echo "make demo   set up, pre-train the mini hub, run the complete mini tables, build reports/ (CPU, minutes)"
	@echo "make demo-all  the same plus every runnable baseline cell of the other papers' mini tables"
	@echo "make test   lint (ruff) and the test suite"
	@echo "make lab    JupyterLab on notebooks/"

# The environment: re-installed when pyproject.toml changes. pip reads /etc/xdg/pip constraints where present.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

env: $(VENV)/.installed

# Fashion-MNIST (the mini protocol's images): Debian's package when we can install it (root on Debian/Ubuntu);
# otherwise torchvision downloads it on first use when online, or a clear error says what to install.
data:
	@if [ -d $(FMNIST) ]; then echo "Fashion-MNIST: $(FMNIST)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	  || echo "apt-get could not install dataset-fashion-mnist; torchvision's download will be tried"; \
	else echo "note: no $(FMNIST) and no root apt-get; torchvision's download into data/ will be tried"; fi

hub: env data
	$(BIN)/transferlab hub build mini

# The mini tables whose methods all exist, the model-hub papers' measured cost tables, then every report.
demo: env data hub
	$(BIN)/transferlab run all --protocol mini --jobs $(JOBS) --complete-only
	$(BIN)/transferlab cost zoo_tuning --protocol mini
	$(BIN)/transferlab cost hub_pathway --protocol mini
	$(BIN)/transferlab report --all
	@echo "Open reports/index.html (or reports/finetune.html)."

# Also every runnable cell of tables that are not complete yet (their baselines): ~12 minutes on 2 cores.
demo-all: env data hub
	$(BIN)/transferlab run all --protocol mini --jobs $(JOBS)
	$(BIN)/transferlab report --all

test: env data
	$(BIN)/ruff check lib tests notebooks
	$(BIN)/ruff format --check lib tests notebooks
	$(BIN)/pytest -q

# JupyterLab opens notebooks/*.py (jupytext py:percent) as notebooks: a default viewer set for this venv only.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): $(VENV)/.installed
	@mkdir -p $(dir $@)
	@echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' > $@

lab: env $(LAB_SETTINGS)
	$(BIN)/jupyter lab notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean-results:
	rm -rf results/*/ reports/*.html reports/*.ipynb reports/figures
