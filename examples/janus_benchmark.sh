#!/usr/bin/env bash
# The Janus benchmark on the analytic prior (see examples/janus_benchmark.py --help).
# Extra arguments pass through, e.g.  examples/janus_benchmark.sh --methods sds,esd --seeds 0
# Default scope: every method preset x head, mug, bird, cat, dog x seeds 0,1,2 at bandwidth 2, and
# at 0.25 for the head and the cat (147 runs of 600 steps), one run per core at once. Results,
# tables and the image grid go to --out (default runs/janus-benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
# The project venv when there is one (make install), else the python3 on PATH.
if [ -x .venv/bin/python ]; then default_python=.venv/bin/python; else default_python=python3; fi
PYTHON="${PYTHON:-$default_python}"
exec "$PYTHON" examples/janus_benchmark.py "$@"
