"""t3d batch without training: prompt files, options, run names, folder states, manifest, errors."""

import json

import pytest

from t3d.batch import options as opt
import t3d.cli
from t3d.batch.child import Outcome
from t3d.batch.manifest import Manifest, read_manifest
from t3d.batch.naming import plan_jobs, run_name
from t3d.batch.prompts import read_prompt_file
from t3d.batch.runner import judge
from t3d.batch.state import inspect_run
from t3d.errors import T3dError
from tests.helpers.cli import assert_one_line_error


def main(argv):
    return t3d.cli.main(["batch", *argv])


def write(path, text):
    path.write_text(text)
    return path


def test_text_prompt_file_skips_comments_and_splits_options(tmp_path):
    lines = read_prompt_file(write(tmp_path / "p.txt", "# c\n\n  a smiling   head  \n"
                                   "a cat | --method esd --set 'guidance.aux_views=[side, back]'  # note\n"
                                   "a|b mug\na dog |\n"))
    assert [(e.line, e.prompt, e.options) for e in lines] == [
        (3, "a smiling head", ()),
        (4, "a cat", ("--method", "esd", "--set", "guidance.aux_views=[side, back]")),
        (5, "a|b mug", ()), (6, "a dog", ())]


def test_jsonl_prompt_file(tmp_path):
    path = write(tmp_path / "p.jsonl", json.dumps({"prompt": "a mug", "options": ["--seed", 3]}) + "\n\n"
                 + json.dumps({"prompt": "a bird", "options": "--method vsd"}) + "\n")
    assert [(e.line, e.prompt, e.options) for e in read_prompt_file(path)] == [
        (1, "a mug", ("--seed", "3")), (3, "a bird", ("--method", "vsd"))]


@pytest.mark.parametrize("name, text, needle", [
    ("empty.txt", "# only a comment\n\n", "has no prompts"),
    ("quote.txt", "a cat | --set 'x\n", "quote.txt:1: cannot split"),
    ("noprompt.txt", " | --seed 1\n", "noprompt.txt:1: the prompt is empty"),
    ("bad.jsonl", '{"prompt": "a mug"}\n{"prompt": \n', "bad.jsonl:2: not a JSON object"),
    ("keys.jsonl", '{"prompt": "a mug", "option": []}\n', "keys.jsonl:1: unknown key(s) option"),
])
def test_bad_prompt_files_are_one_line_errors(tmp_path, name, text, needle):
    path = write(tmp_path / name, text)
    with pytest.raises(T3dError) as info:
        read_prompt_file(path)
    assert needle in str(info.value)


def test_line_options_override_batch_options():
    merged = opt.merge_options(("--steps", "5", "--video", "--set", "a.b=1", "--seed=2"),
                               ("--no-video", "--seed", "7", "--set", "a.b=3"))
    assert opt.option_value(merged, "steps") == "5"
    assert opt.option_value(merged, "seed") == "7"
    assert opt.option_value(merged, "video") == "--no-video"
    assert [g.tokens for g in opt.split_groups(merged) if g.name == "set_"] == [("--set", "a.b=1"), ("--set", "a.b=3")]


def test_run_names_are_stable_distinct_and_ignore_steps():
    base = run_name("a smiling head", ("--seed", "1"))
    assert base == run_name("a smiling head", ("--seed=1",))  # spelling does not matter
    assert base == run_name("a smiling head", ("--seed", "1", "--steps", "900", "--no-video"))  # nor steps/outputs
    assert base != run_name("a smiling head", ("--seed", "2"))
    assert base != run_name("a smiling head!", ("--seed", "1"))  # same slug, different prompt
    assert base.startswith("a-smiling-head-") and len(base.rsplit("-", 1)[1]) == 8
    assert run_name("a cat", ("--method", "esd")).startswith("a-cat-esd-")


def test_identical_lines_run_once_and_conflicting_ones_are_refused(tmp_path):
    lines = read_prompt_file(write(tmp_path / "p.txt", "a mug\na bird\na mug\n"))
    jobs, notes = plan_jobs(lines, ("--steps", "3"), tmp_path / "out", "p.txt")
    assert [(j.prompt, j.lines) for j in jobs] == [("a mug", (1, 3)), ("a bird", (2,))]
    assert notes == [f"p.txt:3 repeats line 1 (same prompt and options): it runs once, as {jobs[0].name}"]
    lines = read_prompt_file(write(tmp_path / "q.txt", "a mug\na mug | --steps 9\n"))
    with pytest.raises(T3dError, match="q.txt:2: same prompt and training options as line 1"):
        plan_jobs(lines, ("--steps", "3"), tmp_path / "out", "q.txt")


@pytest.mark.parametrize("line, needle", [
    ("a mug | --stepz 3", "p.txt:1: No such option: --stepz"),
    ("a mug | --steps many", "p.txt:1: Invalid value for '--steps'"),
    ("a mug | --out elsewhere", "p.txt:1: --out cannot be used in a batch"),
    ("a mug | --resume x", "--resume cannot be used in a batch"),
    ("a mug | another prompt", "unexpected extra argument"),
])
def test_bad_line_options_are_refused_before_anything_runs(tmp_path, capsys, line, needle):
    prompts = write(tmp_path / "p.txt", f"{line}\na bird\n")
    out = tmp_path / "out"
    code = main([str(prompts), "--out", str(out), "--steps", "2"])
    assert_one_line_error(code, capsys.readouterr().err, needle)
    assert not out.exists()


def test_missing_empty_and_unwritable_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "out"
    assert_one_line_error(main([str(tmp_path / "nope.txt"), "--out", str(out)]), capsys.readouterr().err,
                          "prompt file not found")
    empty = write(tmp_path / "empty.txt", "\n# nothing\n")
    assert_one_line_error(main([str(empty), "--out", str(out)]), capsys.readouterr().err, "has no prompts")
    prompts = write(tmp_path / "p.txt", "a mug\n")
    blocker = write(tmp_path / "file", "not a folder")
    assert_one_line_error(main([str(prompts), "--out", str(blocker / "out")]), capsys.readouterr().err,
                          "is not writable")
    assert_one_line_error(main([str(prompts), "--out", str(out), "--jobs", "0"]), capsys.readouterr().err,
                          "--jobs must be at least 1")
    assert_one_line_error(main([str(prompts), "--out", str(out), "--ray", "local:zero"]), capsys.readouterr().err,
                          "--ray local:N expects")
    assert not out.exists()


def make_run(folder, steps=10, checkpoints=(5,), files=(), prompt="a mug"):
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(f"prompt: {prompt}\nsteps: {steps}\noutput:\n  mesh_format: obj\n")
    for step in checkpoints:
        (folder / "checkpoints" / f"step_{step:06d}.safetensors").write_bytes(b"x")
    for name in files:
        (folder / name).write_bytes(b"x")
    return folder


def test_run_state_partial_trained_finished(tmp_path):
    partial = inspect_run(make_run(tmp_path / "a", checkpoints=(2, 5)), "a mug", None, True, True)
    assert (partial.step, partial.target, partial.trained) == (5, 10, False)
    trained = inspect_run(make_run(tmp_path / "b", checkpoints=(10,), files=("video.mp4",)), "a mug", None, True, True)
    assert trained.trained and not trained.finished and trained.missing == ("mesh",)  # mesh.obj, from the config
    done = inspect_run(make_run(tmp_path / "c", checkpoints=(10,), files=("video.mp4", "mesh.obj")), "a mug", None, True, True)
    assert done.finished
    assert not inspect_run(tmp_path / "c", "a mug", 20, True, True).trained  # a larger --steps: resume
    assert inspect_run(tmp_path / "b", "a mug", None, True, False).finished  # --no-mesh
    assert inspect_run(tmp_path / "c", "a bird", None, True, True).other_prompt == "a mug"
    empty = inspect_run(tmp_path / "missing", "a mug", None, True, True)
    assert not empty.has_config and not empty.trained


def test_manifest_cuts_a_torn_last_line_before_appending(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps({"folder": "a", "status": "done"}) + "\n" + '{"folder": "b", "sta')
    assert [r["folder"] for r in read_manifest(path)] == ["a"]  # a reader skips the torn line
    with Manifest(path) as manifest:
        assert manifest.repaired
        manifest.append({"folder": "c", "status": "failed"})
    assert path.read_text().count("\n") == 2
    assert [r["folder"] for r in read_manifest(path)] == ["a", "c"]
    with Manifest(path) as manifest:
        assert not manifest.repaired


@pytest.mark.parametrize("code, line, verdict", [
    (0, "trained to step 5", "done"),
    (2, "t3d: error: run folder runs/x is locked by process 4242 (started 12:00); wait or stop it", "busy"),
    (2, "t3d: error: runs/x is in use by pid 77", "busy"),
    (2, "t3d: error: --steps must be a positive number of steps, got 0", "failed"),
    (1, "t3d: error: stopped at step 40: 20 steps in a row had a non-finite loss", "failed"),
    (1, "RuntimeError: CUDA error: an illegal memory access was encountered", "retry"),
    (-9, "step 40/100  loss 1.2", "retry"),
])
def test_exit_codes_decide_done_busy_failed_or_retry(tmp_path, code, line, verdict):
    finished = inspect_run(make_run(tmp_path / "r", checkpoints=(10,), files=("video.mp4", "mesh.obj")),
                           "a mug", None, True, True)
    assert judge(Outcome(code, line, False), finished if code == 0 else finished.__class__(True, 4, 10, ())) == verdict


@pytest.mark.parametrize("code", [0, 130, -2])
def test_a_stopped_child_is_interrupted_unless_its_folder_is_finished(tmp_path, code):
    finished = inspect_run(make_run(tmp_path / "r", checkpoints=(10,), files=("video.mp4", "mesh.obj")),
                           "a mug", None, True, True)
    partial = finished.__class__(True, 4, 10, ())
    assert judge(Outcome(code, "t3d: interrupted", True), finished) == "done"
    assert judge(Outcome(code, "t3d: interrupted", True), partial) == "interrupted"


def test_a_run_held_by_another_process_is_busy_not_failed(tmp_path, capsys, monkeypatch):
    from t3d.batch import runner

    line = "t3d: error: run folder is locked by process 4242; another t3d is writing it"
    monkeypatch.setattr(runner, "run_child", lambda *a, **k: Outcome(2, line, False))
    prompts = write(tmp_path / "p.txt", "a mug\n")
    code = main([str(prompts), "--out", str(tmp_path / "out"), "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 3, err
    (record,) = read_manifest(tmp_path / "out" / "batch.jsonl")
    assert record["status"] == "busy" and record["error"] == line and record["attempts"] == 1
    assert "| busy |" in (tmp_path / "out" / "summary.md").read_text()
    assert err.strip().splitlines()[-1].startswith("t3d: error: batch incomplete: 1 prompt(s): 1 busy")


def test_a_folder_holding_another_prompt_is_failed_not_touched(tmp_path, capsys):
    prompts = write(tmp_path / "p.txt", "a mug\n")
    jobs, _ = plan_jobs(read_prompt_file(prompts), (), tmp_path / "out", "p.txt")
    make_run(tmp_path / "out" / jobs[0].name, prompt="a bird", checkpoints=(3,))
    code = main([str(prompts), "--out", str(tmp_path / "out")])
    assert code == 1, capsys.readouterr().err
    (record,) = read_manifest(tmp_path / "out" / "batch.jsonl")
    assert record["status"] == "failed" and record["error"].endswith("holds a run for 'a bird'")
    assert not (tmp_path / "out" / "logs" / f"{jobs[0].name}.log").exists()  # no process was started


def test_an_unwritable_manifest_is_one_line_before_any_run(tmp_path, capsys):
    prompts = write(tmp_path / "p.txt", "a mug\n")
    (tmp_path / "out" / "batch.jsonl").mkdir(parents=True)  # a folder where the manifest should go
    code = main([str(prompts), "--out", str(tmp_path / "out")])
    assert_one_line_error(code, capsys.readouterr().err, "cannot write", "batch.jsonl")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["batch.jsonl", "logs"]
