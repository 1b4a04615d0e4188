# neurosim set-up and common jobs. `make demo` runs the main job (`neurosim compare digits`), `make test`
# the test suite;
# both create .venv and install everything on a fresh machine first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo quickstart compare-all test bench bench-quick clean

install: $(STAMP)

# torch first (2.13.0 is a local CPU wheel here; a newer torch would pull CUDA packages), then the
# exact lock with --no-deps: norse and spikingjelly declare torchvision/torchaudio, for which no
# build matches the CPU torch, and neurosim's use of them never imports either. Any torchvision
# left by an earlier install is removed, since a broken one breaks packages that probe for it.
$(STAMP): pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	-$(BIN)/python -m pip uninstall --quiet -y torchvision torchaudio 2>/dev/null
	$(BIN)/python -c "import neurosim, norse.torch, brian2, tonic, torch_geometric, nir, h5py, diffusers, sys; assert 'torchvision' not in sys.modules, 'torchvision loaded'; print('neurosim', neurosim.__version__, 'installed')"
	$(BIN)/python -m neurosim.compiled.warm
	touch $(STAMP)

demo: install
	$(BIN)/neurosim compare digits --out out/compare/digits

quickstart: install
	$(BIN)/python examples/quickstart.py --out out

compare-all: install
	$(BIN)/neurosim compare --all --out out/compare

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/run_all.py --out benchmarks/results.json

bench-quick: install
	$(BIN)/python benchmarks/run_all.py --quick

clean:
	rm -rf $(VENV) out .pytest_cache

# The separate Lava environment (lava-nc 0.10.0 + lava-dl 0.6.0 on Python 3.11, numpy < 2), pinned
# in requirements/lava.txt; built once under ~/.cache/neurosim/ (or $LAVA_ENV), found by its stamp
# afterwards. Its last line of output is the environment's folder.
.PHONY: lava-env
lava-env:
	$(PYTHON) scripts/build_lava_env.py --python $(PYTHON)
