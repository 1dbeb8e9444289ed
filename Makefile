# `make run`: set up a local venv and start a demo cluster; `make test`: set up and run every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5333

.PHONY: run test lint typecheck pytest bench bench-routing clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/gllm start-cluster --engine sim --num-workers 4 --load-model demo-model --ip 127.0.0.1 --port $(PORT)

lint: $(BIN)/.installed
	$(BIN)/ruff check gllm tests benchmarks
	$(BIN)/ruff format --check gllm tests benchmarks

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest -q -p no:cacheprovider tests/

test: lint typecheck pytest

bench: $(BIN)/.installed
	GLLM_BIN=$(abspath $(BIN)/gllm) bash ../shared/bench/run_peers.sh --targets direct,vllm,sglang,gllm --rounds 2

bench-routing: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/routing.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
