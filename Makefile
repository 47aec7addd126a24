# datadiet: `make demo` and `make test` set everything up on a fresh machine (Python 3.11).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# CPU build of torch; these machines carry its wheel, so no multi-GB CUDA download.
TORCH  := torch==2.13.0
BENCHES := io heuristics memory memory_dedup proxy dsir kmeans dedup near_dedup quality eval_ab cascade select gradients

.PHONY: install demo test test-fast bench soak lint run proxy data-samples docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@# optional: loading fastText .bin quality models (sdist; its test skips without it)
	-$(BIN)/python -m pip install -q -e ".[fasttext]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/datadiet run data_samples/recipes/demo.yaml -o out/demo
	@echo "selected rows:  out/demo/data/   (datasets.load_dataset('parquet', data_dir='out/demo/data'))"
	@echo "manifest:       out/demo/manifest.json   (or: $(BIN)/datadiet inspect out/demo)"

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	-$(BIN)/python -m pip install -q -e ".[bench]"
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

# not in BENCHES: 4 GB of text takes well over 10 minutes on 2 cores (SOAK_GB=1.5 for less)
soak: install
	$(BIN)/python -m bench.soak --gb $(or $(SOAK_GB),4)

lint: install
	$(BIN)/ruff check datadiet tests bench data_samples

# make run RECIPE=recipe.yaml [INPUT=path/glob/url] [OUT=dir] [SCHEDULER=synchronous|local|tcp://host:port] [WORKERS=n]
run: install
	@test -n "$(RECIPE)" || (echo "usage: make run RECIPE=recipe.yaml [INPUT=...] [OUT=...] [SCHEDULER=...]"; exit 2)
	$(BIN)/datadiet run $(RECIPE) $(if $(INPUT),--input "$(INPUT)") $(if $(OUT),-o "$(OUT)") \
		$(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(WORKERS),--workers $(WORKERS))

# a small proxy LM on data_samples, for the model-based recipes (proxy_perplexity, learning_dynamics, ifd_instruct, d4)
proxy: install
	$(BIN)/datadiet proxy train --input "data_samples/corpus/*.parquet" -o out/proxy --layers 2 --width 128 \
		--heads 4 --context 256 --vocab 4096 --steps 200 --save-steps 50,100,200

data-samples: install
	$(BIN)/python data_samples/build.py

# the recipe reference, generated from the registered components (tests/test_describe.py checks it)
docs: install
	$(BIN)/datadiet describe --all --markdown > docs/recipe-reference.md

clean:
	rm -rf out .pytest_cache
