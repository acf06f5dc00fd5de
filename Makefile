# The front door: `make demo` and `make test` work on a fresh machine (they create .venv).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum requirements.txt | cut -c1-8)
# pynq cannot share TensorFlow's environment: the board-driver test runs in its own venv
PYNQ_VENV := .venv-pynq
PYNQ_STAMP := $(PYNQ_VENV)/.installed-$(shell md5sum tests/pynq_mock/requirements.txt | cut -c1-8)
OUT ?= build
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup setup-pynq demo test test-all lint format bench clean

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

$(PYNQ_STAMP): tests/pynq_mock/requirements.txt
	python3 -m venv $(PYNQ_VENV)
	$(PYNQ_VENV)/bin/python -m pip install -q --upgrade pip
	$(PYNQ_VENV)/bin/python -m pip install -q -r tests/pynq_mock/requirements.txt
	touch $(PYNQ_STAMP)

setup: $(STAMP)

setup-pynq: $(PYNQ_STAMP)

demo: setup
	$(PY) demo.py --out $(OUT)

test: setup setup-pynq
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadgroup --durations=25

test-all: setup setup-pynq
	$(PY) -m pytest -q -n 2 --dist loadgroup

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) hls_project/format_headers.py --check $$(git ls-files '*.h' '*.cpp')

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
	$(PY) hls_project/format_headers.py $$(git ls-files '*.h' '*.cpp')

bench: setup setup-pynq
	$(PY) -m benchmarks.run --out $(OUT)/bench
	$(PY) -m benchmarks.compare_families --out $(OUT)/bench
	$(PY) -m benchmarks.estimate_boards --out $(OUT)/bench
	$(PY) -m benchmarks.bc_admm --out $(OUT)/bench
	$(PY) -m benchmarks.bc_block_size --out $(OUT)/bench
	$(PY) -m benchmarks.rbs_sparsity --out $(OUT)/bench
	$(PY) -m benchmarks.stream_frames --out $(OUT)/bench
	$(PY) -m benchmarks.long_stream --out $(OUT)/bench
	$(PY) -m benchmarks.ucf11_families --out $(OUT)/bench

clean:
	rm -rf $(OUT) .pytest_cache
