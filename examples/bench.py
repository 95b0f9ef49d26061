"""`make bench`: training-step speed and peak memory, one JSON line per configuration.

The benchmark lives in t3d/bench.py (see its docstring); flags: --quick, --only SUBSTRING.
"""

import sys

from t3d.bench import main

if __name__ == "__main__":
    sys.exit(main())
