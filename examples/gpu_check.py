"""GPU check: every method at render 64 and 256 with full-size SD (random weights), one JSON + table.

On a CUDA machine: builds the full-size random folders if absent (t3d/priors/full_size.py, on
the GPU), then for SD 2.1-base and SD 1.5 measures each method's ms/step, the per-part breakdown
(render, the guidance step and its encode, UNet and baseline parts, backward, optimizer, update), peak CUDA memory; fp16 vs
fp32 eps on one batch; channels_last, torch.compile of the UNet (SDS only: no t3d knob yet) and
the PyTorch vs tinycudann hash grid (when tinycudann imports). Writes OUT/gpu_check.json and
OUT/gpu_check.md. A time budget (default 480 s from the start, folder building included) keeps it
under 10 minutes: configurations it cannot start in time are listed as "not measured".

Without CUDA it refuses in one line (exit 2) unless `--device cpu` asks for a dry run, e.g.
    python examples/gpu_check.py --device cpu --steps 1 --archs sd15 --methods sds --renders 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ARCHS = ("sd21-base", "sd15")
METHODS = ("sds", "vsd", "esd", "dsds", "sdi", "gsd", "usd")
RENDERS = (64, 256)
COMPILE_MIN_S = 150  # compiling a full UNet takes minutes: start it only with this much time left


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default) | cpu (dry run)")
    p.add_argument("--archs", default=",".join(ARCHS), help="comma-separated: sd21-base, sd15 (tiny: a test model)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--renders", default=",".join(map(str, RENDERS)), help="training render sizes")
    p.add_argument("--variants", default=None,
                   help="extra SDS rows: channels-last, torch-hash-grid, compile; '' for none (default: all "
                        "three on CUDA, channels-last on CPU, where compiling a UNet takes many minutes)")
    p.add_argument("--no-agreement", action="store_true", help="skip fp16 vs fp32 eps")
    p.add_argument("--steps", type=int, default=6, help="timed steps per configuration")
    p.add_argument("--breakdown-steps", type=int, default=None, help="steps timed part by part (default: = --steps)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 2 on CUDA, 0 on CPU)")
    p.add_argument("--budget-s", type=float, default=480.0,
                   help="start no measurement after this many seconds from the start (folder building included)")
    p.add_argument("--cache", default=None, help="folder of the full-size models (default $T3D_CACHE/full-size)")
    p.add_argument("--out", type=Path, default=Path("runs/gpu-check"))
    return p.parse_args(argv)


def plan(archs: list[str], methods: list[str], renders: list[int], variants: list[str], agreement: bool,
         tcnn: bool) -> list[dict]:
    """Every measurement in the order it runs: what matters most comes first, compile last."""
    items = []
    for arch in archs:
        items += [{"kind": "steps", "arch": arch, "method": m, "render": r, "variant": "default"}
                  for r in renders for m in methods]
        if agreement:
            items.append({"kind": "agreement", "arch": arch})
        for v in variants:
            if v == "compile" or (v == "torch-hash-grid" and not tcnn):
                continue  # without tinycudann the default already is the PyTorch hash grid
            items += [{"kind": "steps", "arch": arch, "method": "sds", "render": r, "variant": v} for r in renders]
    if "compile" in variants:  # the first architecture only: a second compile would not fit the budget
        items.append({"kind": "steps", "arch": archs[0], "method": "sds", "render": renders[0], "variant": "compile"})
    return items


class Models:
    """Folders and loaded networks per architecture, made when first needed."""

    def __init__(self, device, cache, workdir: Path):
        self.device, self.cache, self.workdir = device, cache, workdir
        self.folders: dict[str, str] = {}
        self.sources: dict[str, dict] = {}
        self.load_s: dict[str, float] = {}

    def folder(self, name: str) -> str:
        if name not in self.folders:
            if name in ("tiny", "tiny-dinov2"):
                self.folders[name] = str(self._tiny(name))
            else:
                from t3d.priors.full_size import full_size_folder

                log = lambda s: print(f"  {s}", flush=True)  # noqa: E731
                self.folders[name] = str(full_size_folder(name, self.cache, self.device, log=log))
        return self.folders[name]

    def _tiny(self, name: str) -> Path:
        if name == "tiny":
            from t3d.priors.tiny_sd import build_tiny_sd

            return build_tiny_sd(self.workdir / "tiny-sd")
        from t3d.guidance.pose.features import save_tiny_dinov2

        return save_tiny_dinov2(self.workdir / "tiny-dinov2")

    def pose_features(self, arch: str) -> str:
        return self.folder("tiny-dinov2" if arch == "tiny" else "dinov2-small-reg")

    def source(self, arch: str) -> dict:
        from t3d.gpu_measure import load_source

        if arch not in self.sources:
            self.sources.clear()  # one architecture's networks in memory at a time
            self.sources[arch], self.load_s[arch] = load_source(self.folder(arch), self.device)
        return self.sources[arch]


def measure(item: dict, models: Models, args) -> dict:
    from t3d.gpu_measure import VARIANTS, eps_agreement, make_prior, measure_steps, release, run_config

    arch = item["arch"]
    if item["kind"] == "agreement":
        return eps_agreement(models.folder(arch), models.source(arch), models.device)
    variant = VARIANTS[item["variant"]]
    breakdown = args.steps if args.breakdown_steps is None else args.breakdown_steps
    cfg = run_config(item["method"], item["render"], models.folder(arch), args.warmup + args.steps + breakdown,
                     models.pose_features(arch) if item["method"] == "usd" else None)
    prior = make_prior(models.source(arch), models.device, variant, name=f"random:{arch}")
    try:
        return measure_steps(cfg, prior, models.device, args.warmup, args.steps, breakdown, variant)
    finally:
        del prior
        release(models.device)


def machine_facts(device) -> dict:
    import torch

    from t3d.scene.encodings import tinycudann_available

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU dry run ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda,
            "tinycudann": "yes" if tinycudann_available() else "no"}


def run_plan(items: list[dict], models: Models, args, results: dict, started: float) -> None:
    for item in items:
        elapsed = time.perf_counter() - started
        left = args.budget_s - elapsed
        row = {k: v for k, v in item.items() if k != "kind"}
        if left <= 0 or (item.get("variant") == "compile" and left < COMPILE_MIN_S):
            row["status"] = "not measured: time budget"
        else:
            label = " ".join(str(v) for v in row.values())
            print(f"[{elapsed:5.0f} s] {item['kind']}: {label}", flush=True)
            try:
                row.update(measure(item, models, args))
                row["status"] = "ok"
            except Exception as exc:  # one failing configuration must not lose the others' numbers
                row["status"] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        results["agreement" if item["kind"] == "agreement" else "rows"].append(row)
        results["elapsed_s"] = round(time.perf_counter() - started)
        write_outputs(results, args.out)


def write_outputs(results: dict, out: Path) -> None:
    from t3d.gpu_report import markdown_report
    from t3d.io import atomic_write_text

    atomic_write_text(out / "gpu_check.json", json.dumps(results, indent=1))
    atomic_write_text(out / "gpu_check.md", markdown_report(results))


def check_args(args, cuda: bool) -> str | None:
    """The one-line reason the arguments cannot run here, or None."""
    from t3d.config import known_methods
    from t3d.gpu_measure import VARIANTS

    if args.device not in ("cuda", "cpu"):
        return f"unknown --device {args.device!r}; use cuda, or cpu for a dry run"
    if args.device == "cuda" and not cuda:
        return "no CUDA device here; this script measures GPU steps (--device cpu runs it as a dry run)"
    bad = [a for a in args.archs.split(",") if a not in ARCHS + ("sd21", "tiny")]
    bad += [m for m in args.methods.split(",") if m not in known_methods()]
    bad += [v for v in args.variants.split(",") if v and (v not in VARIANTS or v == "default")]
    bad += [r for r in args.renders.split(",") if not r.isdigit() or int(r) < 8]
    if bad:
        return f"unknown or invalid value {bad[0]!r} (see --help)"
    return None


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    # diffusers warns on every dtype cast of a random model ("modules that should be kept in float32: []").
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    if args.variants is None:  # compiling a UNet on a CPU takes many minutes
        args.variants = "channels-last,torch-hash-grid,compile" if args.device == "cuda" else "channels-last"
    problem = check_args(args, torch.cuda.is_available())
    if problem:
        print(f"gpu_check: {problem}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    args.warmup = args.warmup if args.warmup is not None else (2 if device.type == "cuda" else 0)
    from t3d.scene.encodings import tinycudann_available

    items = plan(args.archs.split(","), args.methods.split(","), [int(r) for r in args.renders.split(",")],
                 [v for v in args.variants.split(",") if v], not args.no_agreement, tinycudann_available())
    results = {**machine_facts(device), "budget_s": args.budget_s, "steps": args.steps, "warmup": args.warmup,
               "rows": [], "agreement": []}
    with tempfile.TemporaryDirectory(prefix="t3d-gpu-check-") as work:
        models = Models(device, args.cache, Path(work))
        build_start = time.perf_counter()
        for arch in dict.fromkeys(i["arch"] for i in items):  # build what is missing before measuring
            models.folder(arch)
            if any(i.get("method") == "usd" and i["arch"] == arch for i in items):
                models.pose_features(arch)
        results["folders_s"] = round(time.perf_counter() - build_start)
        run_plan(items, models, args, results, started)
        results["load_s"] = {k: round(v, 1) for k, v in models.load_s.items()}
    write_outputs(results, args.out)
    print((args.out / "gpu_check.md").read_text())
    done = results["rows"] + results["agreement"]
    return 0 if all(r["status"] in ("ok", "not measured: time budget") for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
