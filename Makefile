# Every target installs first when needed, so each is one command on a fresh machine.
PY      := .venv/bin/python
STAMP   := .venv/.installed
MODEL     ?= runs/demo/decoder/final
DATA      ?= data/synface
EVALUATOR ?= evaluators/synface
OUT       ?= outputs/eval
TASKS     ?= all

.PHONY: install test test-all demo bench eval clean

install: $(STAMP)

# torch==2.13.0 first: the CPU build already on this disk. Every later requirement admits it,
# so pip never replaces it with a multi-GB CUDA build.
$(STAMP): setup.cfg setup.py pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# taming's declared deps (pytorch-lightning, torchvision) are not needed by the modules we use.
	$(PY) -m pip install -q --no-deps taming-transformers-rom1504==0.0.6
	touch $(STAMP)

# One thread per test process: the tests' tensors are tiny, and on 2 shared cores torch's
# default of one thread per core spends more time synchronising than computing (measured ~4x).
test: install
	$(PY) -m ruff check talk2face talk2face_train benchmarks scripts tests experiments
	.venv/bin/lint-imports
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

# make demo VQGAN=train / EVALUATOR=train: train them here instead of using the shipped ones
demo: install
	$(PY) -m benchmarks.demo $(if $(VQGAN),--vqgan=$(VQGAN)) $(if $(filter train,$(EVALUATOR)),--evaluator=train)

bench: install
	$(PY) -m benchmarks.bench

eval: install
	$(PY) -m talk2face.cli eval --model $(MODEL) --data $(DATA) --evaluator $(EVALUATOR) --out $(OUT) --tasks $(TASKS)

clean:
	rm -rf .venv *.egg-info .pytest_cache
