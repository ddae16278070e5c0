# The README's two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
JOBS   ?= 2
FMNIST := /usr/share/datasets/fashion-mnist
PORT   ?= 8888
LAB_ARGS ?=

.PHONY: demo reproduce-mini reproduce-rl ner test test-slow lab env data hub cost reports clean-results help
.DEFAULT_GOAL := help

help:
	@echo "make demo            every paper's mini tables at seed 0 on the demo schedule (every step count x 1/4, on"
	@echo "                     the demo hub; n = 1, no intervals, no claims), the cost tables, the paper notebooks"
	@echo "                     (papermill) and every report; ~9 min on 2 cores from a fresh clone (README)"
	@echo "make reproduce-mini  the full statistical mini protocol: every mini table at all 5 seeds (resumable;"
	@echo "                     many hours on 2 cores: docs/mini_protocol.md gives the cost per paper)"
	@echo "make ner             Co-Tuning's mini NER table (constructed set, MiniLM; 10 cells, ~20 min on 2 cores)"
	@echo "make reproduce-rl    the mini RL tables (Atari, 42x42; not part of demo): the source policies, then"
	@echo "                     Zoo-Tuning's and Hub-Pathway's rl tables at 5 seeds (resumable; hours on 2 cores)"
	@echo "make test            lint (ruff, import-linter) and the fast test suite"
	@echo "make test-slow       the slow tests too (full mini runs, concurrency with real processes)"
	@echo "make lab             JupyterLab on notebooks/ (PORT=8888, LAB_ARGS=--no-browser)"
	@echo "make env             create .venv and install the pinned environment (uv ~35 s, pip ~1.5 min)"
	@echo "make data            Fashion-MNIST from Debian's dataset-fashion-mnist (as root) or torchvision"
	@echo "make hub             pre-train the mini hub (~3 min; cached in ~/.cache/transferlab or \$$TRANSFERLAB_CACHE;"
	@echo "                     a released build in \$$TRANSFERLAB_HUB_RELEASE is installed instead)"
	@echo "make cost            the Zoo-Tuning / Hub-Pathway mini cost tables"
	@echo "make reports         reports/<paper>.html and reports/index.html from results/"
	@echo "make clean-results   delete results/ and reports/ outputs (not the hub cache)"

# The environment: re-installed when pyproject.toml changes. uv installs it when it can be had (about twice as fast
# as pip: ~40 s against ~85 s on the 2-core machine), with pip's configured constraint file and find-links passed on
# (uv does not read pip's configuration); otherwise pip (it reads /etc/xdg/pip constraints where present).
$(VENV)/.installed: pyproject.toml
	@echo "installing the environment into $(VENV) (pinned versions; about a minute)..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(PY) -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 && [ -x $(BIN)/uv ]; then \
	  opts=""; conf="$$($(PY) -m pip config list 2>/dev/null)"; \
	  for f in $$(echo "$$conf" | sed -n "s/^[^.]*\.constraint='\(.*\)'$$/\1/p"); do \
	    [ -f "$$f" ] && opts="$$opts -c $$f"; done; \
	  for d in $$(echo "$$conf" | sed -n "s/^[^.]*\.find-links='\(.*\)'$$/\1/p" | sort -u); do \
	    [ -d "$$d" ] && opts="$$opts --find-links $$d"; done; \
	  echo "$(BIN)/uv pip install$$opts -e '.[dev]'"; \
	  $(BIN)/uv pip install --quiet --python $(PY) $$opts -e '.[dev]'; \
	else \
	  echo "$(PY) -m pip install -e '.[dev]' (uv not available)"; \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --no-compile --progress-bar off -e '.[dev]' | grep -E '^(Successfully|ERROR)' || true; \
	fi
	@$(PY) -c "import transferlab" && touch $@

env: $(VENV)/.installed

# Fashion-MNIST (the mini protocol's images): Debian's package when we can install it (root on Debian/Ubuntu);
# otherwise torchvision downloads it on first use when online, or a clear error says what to install.
data:
	@if [ -d $(FMNIST) ]; then echo "Fashion-MNIST: $(FMNIST)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist..."; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	  || echo "apt-get could not install dataset-fashion-mnist; torchvision's download will be tried"; \
	else echo "note: no $(FMNIST) and no root apt-get; torchvision's download into data/ will be tried"; fi

# Pre-trained here, or installed from $TRANSFERLAB_HUB_RELEASE (sha256-checked) unless HUB_ARGS=--from-scratch.
HUB_ARGS ?=
hub: env data
	$(BIN)/transferlab hub build mini --jobs $(JOBS) $(HUB_ARGS)

# Every mini results table on the demo protocol (seed 0, every step count x 1/4 — the hub's pre-training too: the demo
# hub; papers/spec.py): the demo hub, then every cell in one pool of warm workers (longest first across all papers, so
# no core idles at a paper's last cell), the cost tables (alone: they time steps), then at once each paper's notebook
# through papermill (scope="table": it runs its tables through the same runner, finds them finished, and shows the
# tables and figures; kept under results/<paper>/demo/) and the reports (they only read results/).
demo: env data
	$(BIN)/transferlab hub build demo --jobs $(JOBS)
	$(BIN)/transferlab run all --protocol demo --jobs $(JOBS)
	$(BIN)/transferlab cost zoo_tuning hub_pathway --protocol demo --quick
	@echo "executing the paper notebooks and building the reports side by side..."
	@$(BIN)/transferlab run all --protocol demo --jobs 1 --via-notebook > results/demo-notebooks.log 2>&1 & nb=$$!; \
	  $(BIN)/transferlab report --all --jobs 1; rc=$$?; \
	  if wait $$nb; then echo "paper notebooks executed (log: results/demo-notebooks.log)"; \
	  else echo "a paper notebook failed; its log: results/demo-notebooks.log"; tail -n 30 results/demo-notebooks.log; exit 1; fi; \
	  exit $$rc
	@echo "Open reports/index.html."

# The full statistical mini protocol (5 seeds per cell); resumable: run it again after an interruption.
reproduce-mini: env data hub
	$(BIN)/transferlab run all --protocol mini --jobs $(JOBS)
	$(BIN)/transferlab run co_tuning --table ner --protocol mini --jobs $(JOBS)
	$(MAKE) --no-print-directory cost reports

# Co-Tuning's mini NER table: not part of `make demo` (the table is marked `separate`: `transferlab run all` skips it);
# its first cell fits the MiniLM masked-LM head once (~2 min, cached).
ner: env
	$(BIN)/transferlab run co_tuning --table ner --protocol mini --jobs $(JOBS)

# The RL tables (Table.demo=False: `run all` and `make demo` skip them). The source policies first (cached), then each
# paper's rl table; cells shared by the two tables (same config hash) are trained once and reused.
reproduce-rl: env
	$(BIN)/transferlab hub build atari_mini
	$(BIN)/transferlab run zoo_tuning --table rl --protocol mini --jobs $(JOBS)
	$(BIN)/transferlab run hub_pathway --table rl --protocol mini --jobs $(JOBS)
	$(BIN)/transferlab report zoo_tuning
	$(BIN)/transferlab report hub_pathway

cost: env
	$(BIN)/transferlab cost zoo_tuning hub_pathway --protocol mini

reports: env
	$(BIN)/transferlab report --all --jobs $(JOBS)

test: env data
	$(BIN)/ruff check lib tests notebooks
	$(BIN)/ruff format --check lib tests notebooks
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -m "not slow"

test-slow: env data
	$(BIN)/pytest -q -m slow

# JupyterLab opens notebooks/*.py (jupytext py:percent) as notebooks: a default viewer set for this venv only.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): $(VENV)/.installed
	@mkdir -p $(dir $@)
	@echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' > $@

# Started from the repository root (notebooks resolve results/ and data/ against it wherever they run).
lab: env $(LAB_SETTINGS)
	$(BIN)/jupyter lab --notebook-dir=. --port=$(PORT) $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS) notebooks/

clean-results:
	rm -rf results/*/ reports/*.html reports/*.ipynb reports/figures
