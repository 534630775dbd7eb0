# Every target works on a fresh clone with only python3 (>= 3.10) and a package index.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup case-study test bench bench-peers clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

case-study: setup
	$(PY) case_studies/california.py --out output/california

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) output .pytest_cache
