"""Benchmark v2: animals and posed folders as objects, bandwidths limited to some objects, the
success matrix, and one image grid (method rows x object columns, four azimuths each)."""

import json

import imageio.v3 as iio
import numpy as np

from tests.examples.test_janus_benchmark import TINY_SETS
from tests.helpers.scripts import load_example



def load(name):
    return load_example(name)


def test_object_and_bandwidth_specs():
    bench = load("janus_benchmark")
    labels, folders = bench.parse_objects("head,cat,cat-folder=/data/cat")
    assert labels == ["head", "cat", "cat-folder"] and folders == {"cat-folder": "/data/cat"}
    assert bench.object_prompt("cat-folder") == bench.object_prompt("cat") == "a smiling cat"
    assert bench.object_prompt("dog") == "a smiling dog" and bench.object_prompt("teapot") is None
    assert bench.parse_bandwidths("2,0.25:head+cat", labels) == [(2.0, labels), (0.25, ["head", "cat"])]


def fake_record(bench, m, o, b, s, n, success):
    return {"key": bench.run_key(m, o, b, s, n), "method": m, "object": o, "bandwidth": b, "seed": s, "steps": n,
            "train_s": 1.0, "janus": {"pose_accuracy": 1.0 if success else 0.25, "front_views": 9 if success else 36,
                                      "views": 36, "faces": 1 if success else 4, "parts": 1, "part": "face",
                                      "janus": not success, "success": success}}


def test_scope_success_matrix_and_grid(monkeypatch, tmp_path):
    """The default bandwidth spec runs every object at h = 2 and only head and cat at 0.25; the
    matrix counts successes per method x object; the grid has a row per method."""
    bench = load("janus_benchmark")
    seen = []

    def fake(m, o, b, s, n, *rest):
        seen.append((m, o, b, s))
        return fake_record(bench, m, o, b, s, n, success=(o == "cat" and s == 0))

    monkeypatch.setattr(bench, "train_and_score", fake)
    args = ["--methods", "sds,esd", "--objects", "head,mug,cat", "--seeds", "0,1", "--jobs", "1", "--out", str(tmp_path)]
    assert bench.main(args) == 0
    assert len(seen) == 2 * 3 * 2 + 2 * 2 * 2  # h = 2: 3 objects; h = 0.25: head and cat
    assert {o for m, o, b, s in seen if b == 0.25} == {"head", "cat"}
    table = (tmp_path / "janus_benchmark.md").read_text()
    matrix = table.split("## success, bandwidth 2 ")[1].split("##")[0]
    assert "| method | head | mug | cat |" in matrix and "| sds | 0/2 | 0/2 | 1/2 |" in matrix
    grid = iio.imread(tmp_path / "janus_grid.png")
    # No run folder holds views here: every cell is the grey placeholder, one row per method.
    assert grid.shape[0] > 2 * 66 and grid.shape[1] > 3 * 261
    assert (grid[..., :3] == 200).all(-1).sum() >= 2 * 3 * 66 * 261


def test_a_posed_folder_runs_beside_a_builtin_and_fills_the_grid(tmp_path):
    posed = load("posed_folder")
    bench = load("janus_benchmark")
    folder = tmp_path / "cat-folder"
    posed.write_folder(folder, "cat", ["cat"], resolution=16, azimuth_step=30.0, elevations=(10.0,))
    entries = json.loads((folder / "poses.json").read_text())
    assert len(entries) == 12 and entries[0]["words"] == ["cat"]
    out = tmp_path / "bench"
    args = ["--methods", "sds", "--objects", f"head,cat-folder={folder}", "--seeds", "0", "--steps", "2",
            "--bandwidths", "0.25", "--views", "8", "--jobs", "1", "--out", str(out)]
    for s in TINY_SETS:
        args += ["--set", s]
    assert bench.main(args) == 0
    records = {json.loads(x)["object"]: json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()}
    assert records["cat-folder"]["model"] == f"analytic:{folder}" and records["head"]["model"] == "analytic"
    assert records["cat-folder"]["janus"]["parts"] is None  # a folder names no duplicated part
    for r in records.values():
        four = iio.imread(out / r["key"] / "eval" / "four_views.png")
        assert four.shape[1] > 3 * four.shape[0]  # four views side by side
    grid = iio.imread(out / "janus_grid.png")[..., :3]
    assert not (grid == 200).all(-1).any(0).all()  # renders, not placeholders
    assert np.asarray(grid).std() > 10
