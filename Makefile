# Every target works on a fresh clone with only python3 (>= 3.10) and a package index.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup case-study test data bench bench-env mlsynth-env clean
BENCH_VENV ?= .venv-bench
MLSYNTH_VENV ?= .venv-mlsynth

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# --no-compile: byte-compiling every installed module (scipy, pandas, matplotlib)
	# takes longer than the study; Python compiles the modules it imports on first use.
	$(PY) -m pip install --quiet --no-compile -e ".[test]"
	touch $@

setup: $(VENV)/.installed

case-study: setup
	$(PY) -m synthcontrol run case_studies/yrd_twinning.toml --out output/yrd

test: setup
	$(PY) -m pytest -q

# Rebuilds synthcontrol/datasets/data (classic panels, city panel and its flags) from the
# raw files in $(RAW) (not redistributed; see synthcontrol/datasets/DATASHEET.md).
RAW ?= ../shared/data
data: setup
	$(PY) case_studies/data/build_datasets.py --raw $(RAW)

# The peers (pysyncon, SyntheticControlMethods, scpi_pkg) pin older numpy/scipy/pandas,
# so they live in their own environment and are driven through benchmarks/peers.py.
$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements-peers.txt
	touch $@

bench-env: $(BENCH_VENV)/.installed

# mlsynth (MSCMT-style differential evolution, compared with the certificate in
# benchmarks/bench_certify.py) wants a newer scipy than the peers allow: its own environment.
$(MLSYNTH_VENV)/.installed: benchmarks/requirements-mlsynth.txt
	$(PYTHON) -m venv $(MLSYNTH_VENV)
	$(MLSYNTH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MLSYNTH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-mlsynth.txt
	touch $@

mlsynth-env: $(MLSYNTH_VENV)/.installed

# Writes benchmarks/RESULTS.md (+ results/) and the results block of benchmarks/README.md;
# about 13 minutes on 2 cores once both environments exist.
bench: setup bench-env mlsynth-env
	$(PY) benchmarks/run_all.py --out benchmarks/RESULTS.md --readme benchmarks/README.md

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(MLSYNTH_VENV) output .pytest_cache
