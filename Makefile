# reku: `make demo` and `make test` set up everything they need (Debian packages through .ci/provision, a venv
# in .venv, the pinned MicroPython WebAssembly build in node_modules) and then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PY_OK  := $(VENV)/.installed
NODE_OK := node_modules/.installed

.PHONY: demo test bench fuzz clean venv node provision-demo provision-test

demo: provision-demo
	$(MAKE) --no-print-directory $(PY_OK) $(NODE_OK)
	$(BIN)/reku demo

test: provision-test
	$(MAKE) --no-print-directory $(PY_OK) $(NODE_OK)
	$(BIN)/python -m pytest -q

# Debian packages (compilers, node, the Arm toolchain for the M0 tests): one script, also what CI runs.
provision-demo provision-test:
	@bash .ci/provision $(@:provision-%=%)

bench: provision-test
	$(MAKE) --no-print-directory $(PY_OK) $(NODE_OK)
	$(BIN)/reku bench

venv: $(PY_OK)
node: $(NODE_OK)

$(PY_OK): pyproject.toml $(wildcard setup.py)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "reku needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,test,fleet]'
	touch $@

$(NODE_OK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules build *.egg-info host/*.egg-info

# The long fuzz run of the board's frame handler (a short one is part of `make test`).
fuzz: provision-test
	$(MAKE) --no-print-directory $(PY_OK) $(NODE_OK)
	REKU_FUZZ_N=100000 REKU_FUZZ_N_MP=20000 $(BIN)/python -m pytest -q tests/test_fuzz.py
