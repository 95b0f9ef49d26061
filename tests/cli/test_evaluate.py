"""`t3d evaluate` end to end on tiny analytic runs: files, JSON, table, comparison sheet, errors."""

import json
import shutil

import imageio.v3 as iio
import pytest

from t3d.cli import main
from tests.conftest import TINY_RUN
from tests.helpers.cli import assert_one_line_error


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    runs = []
    for seed in (0, 1):
        run = root / f"head-{seed}"
        assert main(["generate", "a smiling head", "--steps", "2", "--seed", str(seed), "--out", str(run),
                     "--no-video", "--no-mesh", *TINY_RUN]) == 0
        runs.append(run)
    return runs


def test_evaluate_writes_metrics_and_pictures(two_runs, capsys):
    run = two_runs[0]
    assert main(["evaluate", str(run), "--views", "12", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "metrics.json").read_text())
    assert printed == [saved]
    j = saved["janus"]
    assert saved["method"] == "sds" and saved["step"] == 2 and saved["views"] == 12
    assert len(j["predicted_azimuth"]) == 12 and j["true_azimuth"][:2] == [0.0, 30.0]
    assert 0 <= j["front_views"] <= 12 and j["faces"] >= 0 and isinstance(j["success"], bool)
    assert saved["elevation"] == 10.0  # the reference elevation nearest 15 degrees
    sheet = iio.imread(run / "eval" / "orbit.png")
    assert sheet.shape[1] == 12 * 64 + 13 * 2  # 16 px renders shown 4x, 12 per row
    assert iio.imread(run / "eval" / "azimuth.png").shape == (320, 420, 3)
    assert any("no --clip-model" in note for note in saved["notes"])


def test_several_runs_make_a_table_and_a_comparison_sheet(two_runs, capsys, tmp_path):
    sheet = tmp_path / "cmp.png"
    assert main(["evaluate", *map(str, two_runs), "--views", "8", "--compare", str(sheet), "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "pose acc" in out and "faces" in out and out.count("sds") == 2
    assert iio.imread(sheet).shape[0] == 2 * (64 + 4)  # one row per run


def test_evaluate_missing_run(tmp_path, capsys):
    code = main(["evaluate", str(tmp_path / "nope")])
    assert_one_line_error(code, capsys.readouterr().err, "no run folder or checkpoint")


def test_evaluate_corrupt_checkpoint(two_runs, tmp_path, capsys):
    copy = tmp_path / "damaged"
    shutil.copytree(two_runs[0], copy)
    latest = sorted((copy / "checkpoints").iterdir())[-1]
    latest.write_bytes(latest.read_bytes()[:100])
    (copy / "metrics.json").unlink(missing_ok=True)
    code = main(["evaluate", str(copy)])
    assert_one_line_error(code, capsys.readouterr().err, "corrupt or truncated")
    assert not (copy / "metrics.json").exists()


def test_evaluate_rejects_too_few_views(two_runs, capsys):
    code = main(["evaluate", str(two_runs[0]), "--views", "2"])
    assert_one_line_error(code, capsys.readouterr().err, "--views must be at least 4")
