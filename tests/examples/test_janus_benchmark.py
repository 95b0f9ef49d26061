"""The benchmark script: runs the requested scope, writes the markdown table, and resumes."""

import json
from pathlib import Path

import pytest

from tests.helpers.scripts import load_example

ROOT = Path(__file__).resolve().parents[2]
TINY_SETS = ["analytic.resolution=16", "analytic.azimuth_step=30", "analytic.jitter_copies=1",
             "field.grid_resolution=16", "render.samples_per_ray=24", "render.resolution=16",
             "camera.batch=1", "output.checkpoint_every=2", "output.preview_every=0"]


def load_script():
    return load_example("janus_benchmark")


def test_benchmark_writes_a_table_and_resumes(tmp_path, capsys):
    bench = load_script()
    args = ["--methods", "sds", "--objects", "head,mug", "--seeds", "0", "--steps", "2", "--bandwidths", "0.25",
            "--views", "8", "--jobs", "1", "--out", str(tmp_path)]
    for s in TINY_SETS:
        args += ["--set", s]
    assert bench.main(args) == 0
    records = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["key"] for r in records] == ["sds/head-bw0.25-s0-n2", "sds/mug-bw0.25-s0-n2"]
    assert all(r["janus"]["views"] == 8 and r["train_s"] > 0 for r in records)
    table = (tmp_path / "janus_benchmark.md").read_text()
    assert "## bandwidth 0.25" in table and "| sds | head | 1 |" in table and "| sds | mug | 1 |" in table
    per_run = table.split("## every run")[1]
    for r in records:  # one row per run, with its own numbers
        j = r["janus"]
        assert f"| sds | {r['object']} | 0.25 | 0 | {j['pose_accuracy']:.2f} | {j['front_views']}/8 | {j['faces']} |" in per_run
    capsys.readouterr()
    assert bench.main(args) == 0  # everything already done: nothing is trained again
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2


def test_benchmark_picks_up_every_preset_and_rejects_unknown(monkeypatch, tmp_path, capsys):
    from t3d import config
    from t3d.config import presets

    bench = load_script()
    assert bench.main(["--methods", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown method(s) ['nope']" in capsys.readouterr().err
    # A preset file added to t3d/config/presets/ (the loaded files are cached in this mapping).
    monkeypatch.setitem(presets._files(), "sds-copy", "guidance:\n  guide: {scale: 50.0}\n")
    seen = []
    monkeypatch.setattr(bench, "train_and_score", lambda m, o, b, s, n, *a: seen.append(m) or {
        "key": bench.run_key(m, o, b, s, n), "method": m, "object": "head", "bandwidth": 0.25, "seed": 0, "steps": 1, "train_s": 1.0,
        "janus": {"pose_accuracy": 1.0, "front_views": 9, "views": 36, "faces": 1, "janus": False, "success": True}})
    assert bench.main(["--objects", "head", "--seeds", "0", "--bandwidths", "0.25", "--jobs", "1",
                       "--out", str(tmp_path)]) == 0
    assert seen == config.known_methods() and "sds-copy" in seen


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_benchmark_runs_in_parallel_workers(tmp_path):
    import subprocess
    import sys

    script = ROOT / "examples" / "janus_benchmark.py"
    args = [sys.executable, str(script), "--methods", "sds", "--objects", "head,mug", "--seeds", "0",
            "--steps", "2", "--bandwidths", "0.25", "--views", "8", "--jobs", "2", "--out", str(tmp_path)]
    for s in TINY_SETS:
        args += ["--set", s]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    keys = sorted(json.loads(x)["key"] for x in (tmp_path / "results.jsonl").read_text().splitlines())
    assert keys == ["sds/head-bw0.25-s0-n2", "sds/mug-bw0.25-s0-n2"]
    table = (tmp_path / "janus_benchmark.md").read_text()
    assert "| sds | head | 1 |" in table and "| sds | mug | 1 |" in table and "2 run(s) at once" in table
