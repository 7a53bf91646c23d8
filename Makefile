# embinit — common tasks. `make help` lists them.
PYTHON ?= python3
# The CPU build of torch; GPU users: `make install TORCH=torch` (or install a CUDA build first).
TORCH ?= torch==2.13.0
STUDY ?= arms
OVERRIDES ?=

.PHONY: help install run test test-fast lint format sweep report compute-control bench clean

help:
	@echo "install   install embinit + dev tools into the current Python ($(TORCH))"
	@echo "run       one run of the default arm (bpe+scratch) on the embedded corpus"
	@echo "test      the full test suite (tests/unit + tests/e2e)"
	@echo "test-fast the unit suite (tests/unit, under a minute)"
	@echo "lint      ruff"
	@echo "sweep     run STUDY (default: arms) across arms x seeds, then build its report"
	@echo "report    rebuild results/STUDY from its run records, without training"
	@echo "compute-control  BPE + scratch at the word arms' FLOPs, against the word arms of study arms"
	@echo "bench     trainer throughput grid -> results/bench/"
	@echo "clean     remove caches, run records and generated results"

install:
	$(PYTHON) -m pip install "$(TORCH)"
	$(PYTHON) -m pip install -e ".[dev,glove]"

run:
	$(PYTHON) run.py $(OVERRIDES)

test:
	$(PYTHON) -m pytest -q

test-fast:
	$(PYTHON) -m pytest -q tests/unit

lint:
	$(PYTHON) -m ruff check .

format:
	$(PYTHON) -m ruff format .

sweep:
	$(PYTHON) run.py study=$(STUDY) $(OVERRIDES)
	$(PYTHON) -m embinit.report experiments/$(STUDY) --out results/$(STUDY)

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

clean:
	rm -rf cache experiments/*/ results/*/ outputs multirun .pytest_cache
