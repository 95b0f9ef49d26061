"""Bad input and a bad environment: for every case, the documented exit code, exactly one line on
stderr, no traceback, and nothing on disk changed (the run folder and the working folder hashed
before and after)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from t3d.cli import main
from tests.conftest import TINY_RUN

PROMPT = "a smiling head"


def tree_hash(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            digest.update(str(path).encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A finished tiny run, a posed folder with one good image, and files for the cases."""
    root = tmp_path_factory.mktemp("world")
    run = root / "run"
    assert main(["generate", PROMPT, "--steps", "2", "--out", str(run), "--no-video", "--no-mesh", *TINY_RUN]) == 0
    posed = root / "posed"
    posed.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(posed / "good.png")
    (posed / "empty.png").write_bytes(b"")
    (root / "outside.png").write_bytes((posed / "good.png").read_bytes())
    (root / "broken.yaml").write_text("guidance: {guide: [1, 2\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "a_file").write_text("not a folder")
    (root / "userdir").mkdir()
    (root / "userdir" / "notes.txt").write_text("mine")
    return root


def posed_folder(world: Path, name: str, entries: list) -> str:
    """A posed folder named `name` (files of `world/posed`) with these poses.json entries."""
    folder = world / name
    if not folder.exists():
        folder.mkdir()
        for image in (world / "posed").iterdir():
            (folder / image.name).write_bytes(image.read_bytes())
        (folder / "poses.json").write_text(json.dumps(entries).replace("Infinity", "1e999"))
    return f"analytic:{folder}"


def generate(*args) -> list[str]:
    return ["generate", PROMPT, *args]


# (case id, argv builder taking the world folder, words the one line must contain)
CASES = [
    ("empty-prompt", lambda w: ["generate", "", "--out", str(w / "new")], "prompt is empty"),
    ("blank-prompt", lambda w: ["generate", "  ", "--out", str(w / "new")], "prompt is empty"),
    ("steps-0", lambda w: generate("--steps", "0"), "--steps must be between 1"),
    ("steps-negative", lambda w: generate("--steps", "-5"), "--steps must be between 1"),
    ("steps-huge", lambda w: generate("--steps", "1000000000000"), "--steps must be between 1"),
    ("seed-negative", lambda w: generate("--seed", "-1"), "--seed must be between 0"),
    ("seed-overflow", lambda w: generate("--seed", "99999999999999999999"), "--seed must be between 0"),
    ("resolution-0", lambda w: generate("--resolution", "0"), "must be between 8 and 2048"),
    ("resolution-negative", lambda w: generate("--resolution", "-3"), "must be between 8 and 2048"),
    ("resolution-huge", lambda w: generate("--resolution", "100000"), "must be between 8 and 2048"),
    ("resolution-no-memory", lambda w: generate("--resolution", "2048", "--batch", "8"), "GB; this machine has"),
    ("batch-0", lambda w: generate("--batch", "0"), "--batch must be between 1"),
    ("scale-nan", lambda w: generate("--guidance-scale", "nan"), "must be a finite number"),
    ("scale-inf", lambda w: generate("--guidance-scale", "inf"), "must be a finite number"),
    ("clip-nan", lambda w: generate("--score-clip", "nan"), "finite"),
    ("clip-falling", lambda w: generate("--score-clip", "5:2"), "must rise over the run"),
    ("clip-words", lambda w: generate("--score-clip", "a:b"), "--score-clip"),
    ("t-range-reversed", lambda w: generate("--t-range", "0.9:0.1"), "--t-range must satisfy"),
    ("t-range-above-1", lambda w: generate("--t-range", "0:2"), "must be between 0 and 1"),
    ("method-unknown", lambda w: generate("--method", "magic"), "unknown method 'magic'"),
    ("noise-unknown", lambda w: generate("--noise", "pink"), "unknown noise 'pink'"),
    ("schedule-unknown", lambda w: generate("--t-schedule", "random"), "unknown timestep schedule"),
    ("encoding-unknown", lambda w: generate("--encoding", "voxels"), "unknown encoding"),
    ("option-of-other-piece", lambda w: generate("--inversion-steps", "5"), "noise 'inversion'"),
    ("esd-lambda-without-score-model", lambda w: generate("--esd-lambda", "0.5"), "baseline 'score_model'"),
    ("esd-lambda-range", lambda w: generate("--method", "esd", "--esd-lambda", "2"), "--esd-lambda"),
    ("front-mass-range", lambda w: generate("--front-mass", "1.5"), "--front-mass"),
    ("bandwidth-negative", lambda w: generate("--bandwidth", "-1"), "--bandwidth"),
    ("adherence-nan", lambda w: generate("--adherence", "nan"), "finite"),
    ("perp-neg-without-view-prompts", lambda w: generate("--perp-neg", "--no-view-prompts"), "--perp-neg"),
    ("mesh-format", lambda w: generate("--mesh-format", "stl"), "unknown mesh format"),
    ("device-unknown", lambda w: generate("--device", "tpu"), "unknown device"),
    ("threads-negative", lambda w: generate("--threads", "-2"), "--threads"),
    ("set-unknown-key", lambda w: generate("--set", "field.nope=3"), "unknown config key"),
    ("set-wrong-type", lambda w: generate("--set", "steps=many"), "must be a whole number"),
    ("set-no-equals", lambda w: generate("--set", "steps"), "KEY=VALUE"),
    ("config-missing", lambda w: generate("--config", str(w / "nope.yaml")), "config file not found"),
    ("config-yaml-error", lambda w: generate("--config", str(w / "broken.yaml")), "line 2, column 1"),
    ("config-not-mapping", lambda w: generate("--config", str(w / "list.yaml")), "not a mapping"),
    ("unknown-flag", lambda w: generate("--colour", "red"), "No such option"),
    ("unknown-object", lambda w: ["generate", "a teapot", "--out", str(w / "new"), *TINY_RUN],
     "knows no object in 'a teapot'"),
    ("analytic-empty-folder", lambda w: generate("--model", "analytic:"), "needs a folder after the colon"),
    ("analytic-missing-folder", lambda w: generate("--model", f"analytic:{w / 'nope'}"), "reference folder not found"),
    ("sd-missing-folder", lambda w: generate("--model", str(w / "no-sd")), "cannot load Stable Diffusion model"),
    ("posed-escapes-folder", lambda w: generate("--model", posed_folder(w, "p1", [
        {"file": "../outside.png", "azimuth": 0, "elevation": 0}])), "points outside"),
    ("posed-absolute-path", lambda w: generate("--model", posed_folder(w, "p2", [
        {"file": "/etc/passwd", "azimuth": 0, "elevation": 0}])), "absolute path"),
    ("posed-azimuth-inf", lambda w: generate("--model", posed_folder(w, "p3", [
        {"file": "good.png", "azimuth": float("inf"), "elevation": 0}])), "azimuth must be a finite"),
    ("posed-undecodable", lambda w: generate("--model", posed_folder(w, "p4", [
        {"file": "empty.png", "azimuth": 0, "elevation": 0}])), "cannot decode empty.png"),
    ("out-holds-a-run", lambda w: ["generate", PROMPT, "--out", str(w / "run")], "already holds a run"),
    ("out-is-a-file", lambda w: ["generate", PROMPT, "--out", str(w / "a_file")], "is not a folder"),
    ("out-user-folder", lambda w: ["generate", PROMPT, "--out", str(w / "userdir"), "--overwrite"],
     "choose another --out"),
    ("resume-missing", lambda w: ["generate", "--resume", str(w / "nope")], "run folder not found"),
    ("resume-other-method", lambda w: ["generate", "--resume", str(w / "run"), "--method", "vsd"],
     "cannot continue as 'vsd'"),
    ("resume-changed-config", lambda w: ["generate", "--resume", str(w / "run"), "--guidance-scale", "3"],
     "--guidance-scale cannot change it"),
    ("render-missing-run", lambda w: ["render-video", str(w / "nope")], "no run folder"),
    ("render-frames-0", lambda w: ["render-video", str(w / "run"), "--frames", "0"], "--frames"),
    ("export-format", lambda w: ["export-mesh", str(w / "run"), "--format", "fbx"], "unknown mesh format"),
    ("export-threshold", lambda w: ["export-mesh", str(w / "run"), "--threshold", "-1"], "--threshold"),
    ("evaluate-views", lambda w: ["evaluate", str(w / "run"), "--views", "2"], "--views"),
    ("debias-empty", lambda w: ["debias-prompt", " "], "prompt is empty"),
]


def test_the_table_is_long_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name, argv, needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(name, argv, needle, world, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a default run folder would appear here
    args = argv(world)
    before = tree_hash(world, tmp_path)
    code = main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("t3d: error:"), err
    assert "Traceback" not in err and needle in lines[0], err
    assert tree_hash(world, tmp_path) == before
