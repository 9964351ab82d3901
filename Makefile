# Each target sets up what it needs: a .venv with the CPU build of torch, then genhelpers with its extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -qq
STAMP := $(VENV)/.installed-stamp
# torch comes first, from where you say: on this project's machines `torch==2.13.0` is a CPU wheel on local disk;
# on an ordinary Linux machine the package index would give the multi-GB CUDA build, so pass the CPU index:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
# Runs here never touch a model hub; tiny twins are cached inside the checkout (make clean removes them).
RUN_ENV := HF_HUB_OFFLINE=1 GENHELPERS_CACHE=$(CURDIR)/.cache/genhelpers GENHELPERS_TWIN_CACHE=$(CURDIR)/.cache/twins

.PHONY: setup run test lint bench wheel clean

setup: $(STAMP)

$(STAMP): pyproject.toml genhelpers/tested-versions.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) '$(TORCH)' $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) -e '.[dev]' -c genhelpers/tested-versions.txt
	$(PIP) --no-deps 'DALL-E==0.1'  # DALL·E's dVAE classes; its metadata would pull torchvision, mypy, pytest
	touch $@

WORKERS ?= 2
run: setup  ## every notebook, smoke profile, CPU, $(WORKERS) at a time; outputs + report.html in outputs/smoke/
	$(RUN_ENV) $(VENV)/bin/genhelpers run --profile smoke --workers $(WORKERS) --force --out outputs/smoke

test: setup  ## the import contracts (CONTRIBUTING.md), then the whole test suite
	$(VENV)/bin/lint-imports --no-logo
	$(RUN_ENV) $(PY) -m pytest -q

lint: setup  ## style and the import contracts
	$(VENV)/bin/ruff check genhelpers tests benchmarks tools
	$(VENV)/bin/lint-imports --no-logo

bench: setup  ## timings and classroom quality written to benchmarks/results.json
	$(RUN_ENV) $(PY) benchmarks/bench_smoke.py
	$(RUN_ENV) $(PY) benchmarks/bench_classroom.py
	$(PY) benchmarks/bench_suite.py  # fresh clone: make setup, make test cold and warm, make run (~35 min)

wheel: setup  ## dist/genhelpers-*.whl from the committed files (git archive HEAD); `genhelpers kaggle build` makes the dataset
	$(VENV)/bin/genhelpers kaggle wheel --out dist

clean:
	rm -rf outputs .cache dist build genhelpers.egg-info .pytest_cache
