"""Full-size check on CPU: every method preset, 2 steps, with the real SD 1.5 / SD 2.1-base sizes.

Each run is `python -m t3d.cli generate "a smiling head" --model FOLDER --method M --steps 2` on
a random-weight full-size folder (t3d/priors/full_size.py; USD with the full-size DINOv2-small
as `--pose-features`), then `render-video`, `export-mesh` and `evaluate` on the result. Every
command is its own child process, measured alone:
- s/step: the run's log.jsonl `seconds` at the last step divided by the steps, i.e. the training
  loop's wall time only (model loading, prompt embedding and USD's template sampling excluded;
  those are in `setup s` = the generate process's wall time minus the loop);
- peak RSS: the child's own resident high-water mark (/proc VmHWM, polled), model loading included.

One process at a time (a full-size run holds several GB). Results go to OUT/results.jsonl as they
come, so an interrupted check continues where it stopped (`--rerun` repeats finished runs); the
table is OUT/full_size_check.md. Exit 0 only if every command of every run succeeded.

    python examples/check_full_size.py                       # both architectures, all methods
    python examples/check_full_size.py --archs sd15 --methods sds --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ARCHS = ("sd15", "sd21-base")
METHODS = ("sds", "vsd", "esd", "dsds", "sdi", "gsd", "usd")
PROMPT = "a smiling head"
POST_COMMANDS = ("render-video", "export-mesh", "evaluate")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_rss_mb(pid: int) -> float | None:
    """The process's own resident-memory high-water mark so far (Linux /proc VmHWM; None elsewhere).
    Not wait4's ru_maxrss: on Linux that folds in the RSS the child inherited from this (large)
    parent at fork, before its exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_limiter(limit_gb: float):
    """A preexec_fn capping the child's data segment (heap and mmap'd buffers: every tensor) at
    `limit_gb`, so a run that needs more fails with an allocation error in its own log instead of
    bringing the OOM killer onto a shared machine. None when `limit_gb` <= 0 or unsupported."""
    try:
        import resource
    except ImportError:
        return None
    if limit_gb <= 0 or not hasattr(resource, "RLIMIT_DATA"):
        return None
    limit = int(limit_gb * 2**30)
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def default_memory_limit_gb() -> float:
    """85% of physical memory (0 = no limit where it cannot be read)."""
    try:
        return round(0.85 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def run_child(cmd: list[str], env: dict, log_path: Path, marks: dict[str, str] | None = None,
              memory_limit_gb: float = 0.0) -> dict:
    """Run `cmd` with its output in `log_path`; return rc, wall and CPU seconds, its own peak RSS
    (polled every 0.2 s: growth in its last 0.2 s is missed; None if it ended before the first
    poll), the load average around it, and the CPU time at which each of `marks` (name -> text)
    first appeared in its output."""
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    seen: dict[str, float | None] = {}
    peak: float | None = None
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=memory_limiter(memory_limit_gb))
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = peak_rss_mb(proc.pid)
            peak = peak if now is None else max(now, peak or 0.0)
            if marks and len(seen) < len(marks):
                text = log_path.read_text(errors="replace")
                for name, needle in marks.items():
                    if name not in seen and needle in text:
                        seen[name] = cpu_seconds(proc.pid)
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall_s": round(time.perf_counter() - start, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "peak_rss_mb": None if peak is None else round(peak),
            "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)], "cpu_marks": seen}


def loop_seconds(run_dir: Path) -> tuple[int, float] | None:
    """(steps, seconds) of the last logged training step in the run's log.jsonl."""
    try:
        records = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        return None
    timed = [r for r in records if "seconds" in r and "step" in r]
    return (timed[-1]["step"], timed[-1]["seconds"]) if timed else None


def last_line(path: Path) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "t3d.cli", *args]


def extra_flags(method: str, args) -> list[str]:
    """The generate flags beyond model, method, steps and outputs (recorded with each result)."""
    extra = [f for s in args.set for f in ("--set", s)]
    if method == "usd":
        extra += ["--set", f"guidance.terms.rectifier.template_steps={args.template_steps}", *args.usd_args.split()]
    return extra


def check_one(arch: str, method: str, folders: dict, args, env: dict) -> dict:
    run_dir = args.out / f"{arch}-{method}"
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    extra = extra_flags(method, args)
    cmd = cli("generate", PROMPT, "--model", folders[arch], "--method", method, "--steps", str(args.steps),
              "--out", str(run_dir), "--overwrite", "--device", "cpu", "--no-video", "--no-mesh", *extra)
    if method == "usd":
        cmd += ["--pose-features", folders["dinov2-small-reg"]]
    record = {"key": f"{arch}/{method}", "arch": arch, "method": method, "steps": args.steps, "flags": " ".join(extra),
              "threads": args.threads, "memory_limit_gb": args.memory_limit_gb, "cmd": " ".join(cmd[1:])}
    # The CLI prints its header line just before training and "step N/N" after the last step.
    marks = {"train_start": f"t3d {method} ·", "train_end": f"step {args.steps}/{args.steps}"}
    gen = run_child(cmd, env, logs / f"{arch}-{method}-generate.log", marks, args.memory_limit_gb)
    record["generate"] = gen
    timing = loop_seconds(run_dir)
    if gen["rc"] != 0 or timing is None:
        record["error"] = last_line(logs / f"{arch}-{method}-generate.log") or f"exit {gen['rc']}"
        return record
    steps, seconds = timing
    record.update(s_per_step=round(seconds / steps, 1), loop_s=seconds, setup_s=round(gen["wall_s"] - seconds, 1))
    cpu = gen["cpu_marks"]
    if cpu.get("train_start") is not None and cpu.get("train_end") is not None:
        record["cpu_s_per_step"] = round((cpu["train_end"] - cpu["train_start"]) / steps, 1)
    for name in POST_COMMANDS:
        result = run_child(cli(name, str(run_dir), "--device", "cpu"), env, logs / f"{arch}-{method}-{name}.log",
                           memory_limit_gb=args.memory_limit_gb)
        record[name] = result
        if result["rc"] != 0:
            record["error"] = f"{name}: " + (last_line(logs / f"{arch}-{method}-{name}.log") or f"exit {result['rc']}")
            return record
    record["outputs"] = sorted(p.name for p in run_dir.iterdir())
    return record


def build_folders(archs: list[str], env: dict, out: Path) -> dict:
    names = list(archs) + ["dinov2-small-reg"]
    proc = subprocess.run([sys.executable, "-m", "t3d.priors.full_size", *names], env=env,
                          stdout=subprocess.PIPE, stderr=open(out / "logs" / "build.log", "w"), text=True)
    if proc.returncode != 0:
        raise SystemExit(f"check_full_size: building the folders failed: {last_line(out / 'logs' / 'build.log')}")
    return dict(line.split("\t")[:2] for line in proc.stdout.splitlines() if "\t" in line)


def table(records: list[dict]) -> str:
    rows = ["| arch | method | extra flags | threads | s / step | CPU s / step | load avg | setup s | peak RSS (generate) | "
            "render-video / export-mesh / evaluate | result |",
            "|---|---|---|---:|---:|---:|---|---:|---:|---|---|"]
    for r in records:
        post = " / ".join(f"{r[n]['wall_s']} s, {r[n]['peak_rss_mb']} MB" for n in POST_COMMANDS if n in r)
        rss = f"{r['generate']['peak_rss_mb']} MB" if "generate" in r else ""
        result = "ok" if "error" not in r else f"FAILED: {r['error']}"
        load = "–".join(map(str, r.get("generate", {}).get("load_avg", [])))
        rows.append(f"| {r['arch']} | {r['method']} | {r.get('flags', '')} | {r['threads']} | {r.get('s_per_step', '')} | "
                    f"{r.get('cpu_s_per_step', '')} | {load} | {r.get('setup_s', '')} | {rss} | {post} | {result} |")
    return "\n".join(rows) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated, from {', '.join(ARCHS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated method presets")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or 2),
                        help="CPU threads per run (OMP_NUM_THREADS of the children; default $OMP_NUM_THREADS or 2)")
    parser.add_argument("--template-steps", type=int, default=20,
                        help="USD: DDIM steps of the pose templates sampled from the prior (t3d's default 20)")
    parser.add_argument("--usd-args", default="--low-vram",
                        help="extra generate flags for USD (default --low-vram: its exact rectifier decodes "
                             "512 px with gradient, ~30 GB in fp32 at batch 2 without it; '' for none)")
    parser.add_argument("--memory-limit-gb", type=float, default=default_memory_limit_gb(),
                        help="cap each child's data segment (default 85%% of RAM; 0 = none)")
    parser.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for every generate")
    parser.add_argument("--out", type=Path, default=Path("runs/full-size-check"))
    parser.add_argument("--rerun", action="store_true", help="repeat runs already in OUT/results.jsonl")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    archs, methods = args.archs.split(","), args.methods.split(",")
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONWARNINGS="ignore")
    folders = build_folders(archs, env, args.out)
    results_path = args.out / "results.jsonl"
    done = {}
    if results_path.exists() and not args.rerun:
        done = {r["key"]: r for r in map(json.loads, results_path.read_text().splitlines()) if "error" not in r}
    records = []
    for arch in archs:
        for method in methods:
            key = f"{arch}/{method}"
            same = (args.steps, args.threads, " ".join(extra_flags(method, args)))
            if key in done and (done[key]["steps"], done[key]["threads"], done[key].get("flags")) == same:
                records.append(done[key])
                continue
            print(f"{key}: running ({args.threads} threads)", flush=True)
            record = check_one(arch, method, folders, args, env)
            with open(results_path, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(f"{key}: " + ("ok" if "error" not in record else f"FAILED {record['error']}") +
                  f", {record.get('s_per_step', '?')} s/step, peak RSS {record['generate']['peak_rss_mb']} MB",
                  flush=True)
            records.append(record)
    md = table(records)
    (args.out / "full_size_check.md").write_text(md)
    print(md)
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
