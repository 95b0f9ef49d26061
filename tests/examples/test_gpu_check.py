"""The GPU check script: its refusal without CUDA, its table writer, its plan and its measuring
loop on the tiny random SD (CPU, a few seconds)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from t3d.gpu_report import NOT_MEASURED, markdown_report, steps_table, write_report
from tests.helpers.scripts import load_example

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    return load_example("gpu_check")


def test_refuses_without_cuda_in_one_line_and_writes_nothing(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))  # no GPU, even on a GPU machine
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "gpu_check.py"), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "no CUDA device" in done.stderr
    assert "--device cpu" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


FAKE = {
    "device": "NVIDIA H100 80GB HBM3", "torch": "2.13.0", "tinycudann": "yes", "budget_s": 480, "elapsed_s": 470,
    "rows": [
        {"arch": "sd21-base", "method": "sds", "render": 64, "variant": "default", "ms_per_step": 57.25,
         "peak_mem_mb": 7012, "status": "ok",
         "breakdown_ms": {"cameras": 0.25, "render": 4.0, "encode": 20.5, "prior": 18.0, "guidance": 1.5,
                          "backward": 12.0, "optimizer": 1.0, "update": 0.0, "occupancy": 0.5}},
        {"arch": "sd21-base", "method": "vsd", "render": 64, "variant": "default", "ms_per_step": 90.0,
         "peak_mem_mb": 9100, "breakdown_ms": None, "status": "ok"},
        {"arch": "sd15", "method": "usd", "render": 256, "variant": "default", "status": "not measured: time budget"},
    ],
    "agreement": [{"arch": "sd21-base", "batch": 2, "rel_l2": 0.00123, "cosine": 0.9999991, "max_abs": 0.0042,
                   "guided_rel_l2": {"7.5": 0.004, "100": 0.05}, "status": "ok"},
                  {"arch": "sd15", "status": "not measured: time budget"}],
}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_table_writer_fills_measured_values_and_marks_missing_ones():
    lines = steps_table(FAKE["rows"]).splitlines()
    header, rows = _cells(lines[0]), [_cells(x) for x in lines[2:]]
    assert all(len(r) == len(header) for r in rows)  # no missing or extra cells
    sds = dict(zip(header, rows[0]))
    assert (sds["ms / step"], sds["peak MB"], sds["encode"], sds["of which UNet (prior)"]) == ("57.2", "7012", "20.5", "18.0")
    assert sds["cameras + occupancy"] == "0.8"  # 0.25 + 0.5, the two small parts in one column
    vsd = dict(zip(header, rows[1]))
    assert vsd["ms / step"] == "90.0" and vsd["render"] == NOT_MEASURED and vsd["backward"] == NOT_MEASURED
    usd = dict(zip(header, rows[2]))
    assert usd["ms / step"] == usd["peak MB"] == usd["encode"] == NOT_MEASURED
    assert usd["status"] == "not measured: time budget"


def test_report_json_in_markdown_out(tmp_path):
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps(FAKE))
    md = write_report(path).read_text()
    assert md == markdown_report(FAKE)
    assert md.startswith("# GPU check: NVIDIA H100 80GB HBM3")
    agreement = [x for x in md.splitlines() if x.startswith("| sd")][-2:]
    assert _cells(agreement[0])[2:7] == ["0.00123", "0.999999", "0.0042", "0.00400", "0.05000"]
    assert _cells(agreement[1])[2] == NOT_MEASURED


def test_plan_puts_methods_first_and_compile_last():
    gpu_check = load_script()
    items = gpu_check.plan(["sd21-base", "sd15"], ["sds", "usd"], [64, 256], ["channels-last", "torch-hash-grid",
                           "compile"], agreement=True, tcnn=False)
    first = [(i["method"], i["render"]) for i in items[:4]]
    assert first == [("sds", 64), ("usd", 64), ("sds", 256), ("usd", 256)] and items[0]["arch"] == "sd21-base"
    assert items[-1]["variant"] == "compile" and sum(i.get("variant") == "compile" for i in items) == 1
    assert not any(i.get("variant") == "torch-hash-grid" for i in items)  # no tinycudann: nothing to compare
    assert [i["arch"] for i in items if i["kind"] == "agreement"] == ["sd21-base", "sd15"]


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    from t3d.gpu_measure import load_source
    from t3d.priors.tiny_sd import build_tiny_sd

    folder = build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_gpu_check"))
    return folder, load_source(str(folder), torch.device("cpu"))[0]


def test_measuring_loop_times_steps_and_breaks_them_down_with_the_loops_timer(tiny_source):
    from t3d.gpu_measure import make_prior, measure_steps, run_config
    from t3d.gpu_report import PARTS

    folder, source = tiny_source
    cfg = run_config("vsd", 16, str(folder), steps_total=4, pose_features=None)
    cfg.field.grid_resolution, cfg.render.samples_per_ray = 16, 16
    result = measure_steps(cfg, make_prior(source, torch.device("cpu")), torch.device("cpu"), 1, 1, 2)
    assert result["ms_per_step"] > 0 and result["steps_timed"] == 1 and result["steps_breakdown"] == 2
    breakdown = result["breakdown_ms"]
    # The Trainer's own StepTimer parts, per step: VSD renders, runs the UNet, steps the optimiser
    # and trains its LoRA score model in every step.
    assert {"render", "guidance", "prior", "backward", "optimizer", "update"} <= set(breakdown)
    assert set(breakdown) <= set(PARTS) | {"cameras", "occupancy"}
    assert all(breakdown[p] > 0 for p in ("render", "guidance", "prior", "backward", "optimizer", "update"))
    assert breakdown["prior"] < breakdown["guidance"]  # nested: the UNet is part of the guidance step
    assert result["calls_per_step"]["render"] == 1.0  # one render per step, counted over the 2 timed steps
    # VSD put LoRA into its copy of the UNet; the source the next configuration copies has none.
    assert not any("lora" in name for name, _ in source["unet"].named_modules())


def test_bad_arguments_are_one_line_errors_before_anything_is_built(tmp_path, capsys):
    gpu_check = load_script()
    for bad in (["--archs", "sd3"], ["--methods", "magic"], ["--renders", "64,x"], ["--variants", "turbo"]):
        assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out"), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("gpu_check: unknown or invalid value")
    assert not (tmp_path / "out").exists()
