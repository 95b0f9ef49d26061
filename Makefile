# Everything a fresh machine needs: `make demo` and `make test` install into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A plain "torch" requirement pulls multi-GB CUDA wheels on Linux; CPU machines here have a local
# CPU build of 2.13.0. CUDA users: install your CUDA torch into $(VENV) first, it is kept.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.t3d-installed

.PHONY: install demo test test-slow bench check-full-size gpu-check gltf-check clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	# nerfacc ships an sdist whose build imports torch: build it against the torch we have,
	# without compiling CUDA kernels (its CPU volume-rendering functions are pure PyTorch).
	$(BIN)/python -c "import nerfacc" 2>/dev/null || BUILD_NO_CUDA=1 $(BIN)/python -m pip install -q --no-build-isolation "nerfacc>=0.5.3"
	$(BIN)/python -m pip install -q --no-build-isolation -e ".[test,ray]"
	# The Khronos glTF-Validator checks exported GLBs in the tests (Node.js; skipped without npm,
	# except in CI, which requires it).
	command -v npm >/dev/null && npm install --silent --no-audit --no-fund --prefix examples/.gltf-client gltf-validator || true
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/t3d generate "a smiling cat" --method esd --out runs/demo --overwrite
	@echo "demo outputs: runs/demo/video.mp4 runs/demo/mesh.glb runs/demo/previews/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

gltf-check: $(STAMP)
	PYTHON=$(BIN)/python examples/gltf_client_check.sh runs/demo

bench: $(STAMP)
	$(BIN)/python examples/bench.py

# Hours on a 2-core CPU: every method, 2 steps, with full-size random SD 1.5 / 2.1-base (docs/speed.md).
check-full-size: $(STAMP)
	$(BIN)/python examples/check_full_size.py --out runs/full-size-check

# On a CUDA machine, under 10 minutes; refuses in one line without CUDA.
gpu-check: $(STAMP)
	PYTHON=$(BIN)/python examples/gpu_check.sh --out runs/gpu-check

clean:
	rm -rf runs .pytest_cache
