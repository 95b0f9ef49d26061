#!/usr/bin/env bash
# The GPU check (see examples/gpu_check.py --help): full-size SD random weights, every method at
# render 64 and 256, one JSON and one markdown table in runs/gpu-check/. Under 10 minutes on one GPU;
# refuses without CUDA unless --device cpu (dry run). Extra arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project venv when there is one (make install), else the python3 on PATH.
if [ -x .venv/bin/python ]; then default_python=.venv/bin/python; else default_python=python3; fi
PYTHON="${PYTHON:-$default_python}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" DIFFUSERS_VERBOSITY=error TRANSFORMERS_VERBOSITY=error
exec "$PYTHON" examples/gpu_check.py "$@"
