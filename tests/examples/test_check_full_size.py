"""examples/check_full_size.py's measuring helpers: a child's own peak RSS and CPU time, the
training-loop seconds from log.jsonl, and the table (the full-size runs themselves take hours
on CPU and are run by `make check-full-size`, not by the test suite)."""

import json
import sys
from pathlib import Path

from tests.helpers.scripts import load_example



def load_script():
    return load_example("check_full_size")


def test_child_peak_rss_is_its_own_and_marks_get_cpu_times(tmp_path):
    check = load_script()
    # Touches 300 MiB, says so, then spins for 1 s of its own CPU time so the poller sees the mark.
    code = ("import time; b = bytearray(300 * 2**20); print('allocated', flush=True)\n"
            "while time.process_time() < 1.0: pass")
    # A child that holds little for 1 s: its peak must not include this (large) test process's RSS.
    small = check.run_child([sys.executable, "-c", "import time; time.sleep(1)"], {}, tmp_path / "small.log")
    big = check.run_child([sys.executable, "-c", code], {}, tmp_path / "big.log", {"alloc": "allocated"})
    assert small["rc"] == big["rc"] == 0
    # The bytearray is zero-filled, so all 300 MiB are resident; the interpreter adds < 100 MiB.
    assert 300 <= big["peak_rss_mb"] < 500 and small["peak_rss_mb"] < 100
    assert big["cpu_s"] >= 1.0  # the busy loop alone used 1 s of CPU
    if Path("/proc/self/stat").exists():
        assert big["cpu_marks"]["alloc"] is not None


def test_loop_seconds_reads_the_last_logged_step(tmp_path):
    check = load_script()
    lines = [{"step": 1, "skipped": True, "skipped_total": 1}, {"loss": 1.0, "step": 2, "seconds": 301.5}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert check.loop_seconds(tmp_path) == (2, 301.5)
    assert check.loop_seconds(tmp_path / "missing") is None


def test_table_has_one_row_per_run_and_names_the_failure():
    check = load_script()
    gen = {"rc": 0, "wall_s": 500.0, "cpu_s": 900.0, "peak_rss_mb": 11000, "load_avg": [2.1, 2.3]}
    post = {"rc": 0, "wall_s": 10.0, "peak_rss_mb": 700}
    ok = {"arch": "sd15", "method": "sds", "flags": "", "threads": 2, "s_per_step": 120.5, "cpu_s_per_step": 230.0,
          "setup_s": 40.0, "generate": gen, "render-video": post, "export-mesh": post, "evaluate": post}
    bad = {"arch": "sd21-base", "method": "usd", "flags": "--low-vram", "threads": 2, "generate": dict(gen, rc=1), "error": "Killed"}
    lines = check.table([ok, bad]).splitlines()
    assert len(lines) == 4
    assert "| sd15 | sds |  | 2 | 120.5 | 230.0 | 2.1–2.3 | 40.0 | 11000 MB |" in lines[2] and lines[2].endswith("| ok |")
    assert lines[3].startswith("| sd21-base | usd | --low-vram | 2 |") and lines[3].endswith("| FAILED: Killed |")
