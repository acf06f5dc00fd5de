# The front door: `make demo` and `make test` work on a fresh machine (they create .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum requirements.txt | cut -c1-8)
OUT ?= build
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup demo test test-all lint format bench clean

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) demo.py --out $(OUT)

test: setup
	$(PY) -m pytest -q -m "not slow" -n 2

test-all: setup
	$(PY) -m pytest -q -n 2

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror $$(git ls-files '*.h' '*.cpp')

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
	$(VENV)/bin/clang-format -i $$(git ls-files '*.h' '*.cpp')

bench: setup
	$(PY) -m benchmarks.run --out $(OUT)/bench
	$(PY) -m benchmarks.compare_families --out $(OUT)/bench

clean:
	rm -rf $(OUT) .pytest_cache
