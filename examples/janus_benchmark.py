"""Janus benchmark on the analytic prior: every method x object x seed x bandwidth.

Each run is trained with `t3d generate` (in process, no video or mesh), scored with the
ground-truth Janus metrics of `t3d evaluate`, and appended to OUT/results.jsonl; a run already in
that file is not repeated, so an interrupted benchmark continues where it stopped. At the end
everything is written to OUT: janus_benchmark.md (a success matrix method x object, one table per
bandwidth with rows method x object, and one row per run) and janus_grid.png (method rows x object
columns, each cell the run's views at azimuths 0/90/180/270).

Objects are built-in names (head, mug, bird, cat, dog, bunny) or LABEL=FOLDER for a posed folder
(`--model analytic:FOLDER`); the label's first word before "-" picks the prompt, so
`cat-folder=/data/cat` is prompted "a smiling cat". A bandwidth may be limited to some objects:
`--bandwidths 2,0.25:head+cat` runs every object at h = 2 and only the head and the cat at 0.25.

The methods are whatever presets t3d/config/presets/ holds when the script runs
(`t3d.config.known_methods()`), so presets added later are benchmarked without editing this file.

Usage:
  python examples/janus_benchmark.py                        # the default scope (see --help)
  python examples/janus_benchmark.py --methods sds --objects head --seeds 0 --steps 50
  python examples/janus_benchmark.py --objects cat,cat-folder=/tmp/cat-folder --bandwidths 2
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

OBJECT_PROMPTS = {"head": "a smiling head", "mug": "a coffee mug", "bird": "a small bird",
                  "cat": "a smiling cat", "dog": "a smiling dog", "bunny": "a smiling bunny"}
DEFAULT_OBJECTS = "head,mug,bird,cat,dog"
DEFAULT_BANDWIDTHS = "2,0.25:head+cat"

sys.path.insert(0, str(Path(__file__).resolve().parent))  # janus_grid.py beside this script


def parse_list(text: str, cast=str) -> list:
    return [cast(x) for x in text.replace(",", " ").split()]


def parse_objects(text: str) -> tuple[list[str], dict[str, str]]:
    """Object labels in order, and the posed folder of each LABEL=FOLDER item."""
    labels, folders = [], {}
    for item in parse_list(text):
        label, sep, folder = item.partition("=")
        labels.append(label)
        if sep:
            folders[label] = folder
    return labels, folders


def object_prompt(label: str) -> str | None:
    return OBJECT_PROMPTS.get(label) or OBJECT_PROMPTS.get(label.split("-")[0])


def parse_bandwidths(text: str, objects: list[str]) -> list[tuple[float, list[str]]]:
    """`2,0.25:head+cat` -> [(2.0, every object), (0.25, [head, cat])] (in the order asked)."""
    out = []
    for item in parse_list(text):
        value, sep, only = item.partition(":")
        chosen = [o for o in objects if o in only.split("+")] if sep else list(objects)
        out.append((float(value), chosen))
    return out


def run_key(method: str, obj: str, bandwidth: float, seed: int, steps: int) -> str:
    return f"{method}/{obj}-bw{bandwidth:g}-s{seed}-n{steps}"


def train_and_score(method: str, obj: str, bandwidth: float, seed: int, steps: int, views: int,
                    out: Path, extra_sets: list[str], folders: dict[str, str] | None = None) -> dict:
    import torch
    from rich.console import Console

    from janus_grid import save_four_views
    from t3d.commands.generate import GenerateRequest, run_generate
    from t3d.evaluate.runner import EvalOptions, evaluate_run

    folder = (folders or {}).get(obj)
    model = f"analytic:{folder}" if folder else "analytic"
    run_dir = out / run_key(method, obj, bandwidth, seed, steps)
    req = GenerateRequest(prompt=object_prompt(obj), method=method, model=model, steps=steps, out=run_dir,
                          overwrite=True, overrides={"seed": seed, "analytic.bandwidth": bandwidth, "device": "cpu",
                                                 "threads": torch.get_num_threads()},  # the worker's share
                          sets=list(extra_sets), video=False, mesh=False)
    quiet = Console(file=io.StringIO())
    start = time.perf_counter()
    run_generate(req, quiet)
    seconds = time.perf_counter() - start
    evaluation = evaluate_run(run_dir, EvalOptions(views=views, device="cpu"))
    save_four_views(run_dir, evaluation.orbit.rgb, views)
    return {"key": run_key(method, obj, bandwidth, seed, steps), "method": method, "object": obj,
            "model": model, "bandwidth": bandwidth, "seed": seed, "steps": steps, "train_s": round(seconds, 2),
            "janus": evaluation.metrics["janus"]}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_all(todo: list[tuple], args, workers: int):
    """Train and score every (method, object, bandwidth, seed); yields records as they finish.
    Several workers split the cores between them: small renders scale badly past a few threads,
    so two one-thread runs beat one two-thread run on a 2-core machine."""
    jobs = [(m, o, b, s, args.steps, args.views, args.out, args.sets, args.folders) for m, o, b, s in todo]
    if workers == 1:
        for job in jobs:
            yield train_and_score(*job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        for future in as_completed([pool.submit(train_and_score, *job) for job in jobs]):
            yield future.result()


def mean(values) -> float:
    """Mean of the values that exist (a posed folder has no duplicated part: parts is None)."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def part_cell(janus: dict) -> str:
    """'1 handle'; '? handle' when the count was withheld (t3d.evaluate.janus.count_part); '' for folders."""
    if not janus.get("part"):
        return ""
    return f"{'?' if janus.get('parts') is None else janus['parts']} {janus['part']}"


def success_matrix(results: list[dict]) -> list[str]:
    """Successful runs / runs for every method (rows) x object (columns), per bandwidth."""
    lines = []
    for bw in sorted({r["bandwidth"] for r in results}):
        at_bw = [r for r in results if r["bandwidth"] == bw]
        methods = sorted({r["method"] for r in at_bw})
        objects = list(dict.fromkeys(r["object"] for r in at_bw))
        lines += [f"## success, bandwidth {bw:g} (successful runs / runs)", "",
                  "| method | " + " | ".join(objects) + " |", "|---|" + "---:|" * len(objects)]
        for m in methods:
            cells = []
            for o in objects:
                rs = [r for r in at_bw if (r["method"], r["object"]) == (m, o)]
                cells.append(f"{sum(r['janus']['success'] for r in rs)}/{len(rs)}" if rs else "")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def markdown(results: list[dict], machine: str, command: str) -> str:
    lines = ["# Janus benchmark (analytic prior)", "",
             f"Command: `{command}`  ", f"Machine: {machine}", "",
             "Per cell: mean over seeds. pose acc = share of orbit views whose nearest reference is within "
             "45 deg of the true azimuth; front = views that look like the front (of V); faces = head-on arcs "
             "(1 = one face); janus = share of runs with >= 2 faces or > 50% front views; success = share with "
             "exactly one face and <= 50% front views.", ""]
    lines += success_matrix(results)
    for bw in sorted({r["bandwidth"] for r in results}):
        lines += [f"## bandwidth {bw:g}", "",
                  "| method | object | runs | pose acc | front views | faces | parts | janus | success | s / run |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        cells = sorted({(r["method"], r["object"]) for r in results if r["bandwidth"] == bw})
        for method, obj in cells:
            rs = [r for r in results if (r["method"], r["object"], r["bandwidth"]) == (method, obj, bw)]
            j = [r["janus"] for r in rs]
            lines.append(
                f"| {method} | {obj} | {len(rs)} | {mean(x['pose_accuracy'] for x in j):.2f} | "
                f"{mean(x['front_views'] for x in j):.1f}/{j[0]['views']} | {mean(x['faces'] for x in j):.1f} | "
                f"{mean(x.get('parts') for x in j):.1f} | "
                f"{mean(x['janus'] for x in j):.0%} | {mean(x['success'] for x in j):.0%} | "
                f"{mean(r['train_s'] for r in rs):.0f} |")
        lines.append("")
    # Per run, because a mean hides which seed failed and how (two faces, or none at all).
    lines += ["## every run", "",
              "| method | object | bandwidth | seed | pose acc | front views | faces | parts | verdict |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        j = r["janus"]
        verdict = "success" if j["success"] else "janus" if j["janus"] else "no face" if j["faces"] == 0 else "other"
        lines.append(f"| {r['method']} | {r['object']} | {r['bandwidth']:g} | {r['seed']} | {j['pose_accuracy']:.2f} | "
                     f"{j['front_views']}/{j['views']} | {j['faces']} | {part_cell(j)} | {verdict} |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="all", help="comma-separated presets, or 'all' (every preset t3d knows)")
    p.add_argument("--objects", default=DEFAULT_OBJECTS,
                   help=f"built-in objects ({', '.join(OBJECT_PROMPTS)}) or LABEL=FOLDER posed folders")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--steps", type=int, default=600, help="training steps per run")
    p.add_argument("--bandwidths", default=DEFAULT_BANDWIDTHS,
                   help="analytic prior kernel widths h, comma-separated; H:OBJ+OBJ limits one to those objects")
    p.add_argument("--views", type=int, default=36, help="orbit views scored per run")
    p.add_argument("--set", dest="sets", action="append", default=[], help="extra config KEY=VALUE for every run")
    p.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8),
                   help="runs trained at once (default: one per core, at most 8), each with cpu_count/jobs threads")
    p.add_argument("--out", type=Path, default=Path("runs/janus-benchmark"), help="folder for runs and results")
    p.add_argument("--table", type=Path, default=None, help="markdown table path (default OUT/janus_benchmark.md)")
    p.add_argument("--grid", type=Path, default=None, help="image grid path (default OUT/janus_grid.png)")
    return p.parse_args(argv)


def load_done(results_path: Path) -> dict[str, dict]:
    """Records already in OUT/results.jsonl, by run key: those runs are not repeated."""
    done = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["key"]] = record
    return done


def write_outputs(results: list[dict], args, argv, methods, objects, bandwidths, seeds) -> None:
    """The markdown tables and the image grid (first bandwidth, first seed: one run per cell)."""
    import torch
    from janus_grid import grid_image

    from t3d.io import atomic_write_text
    from t3d.video import save_png

    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    machine = f"CPU, {os.cpu_count()} cores, torch {torch.__version__}, {threads} thread(s) per run, {args.jobs} run(s) at once"
    command = "python examples/janus_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
    table = args.table or args.out / "janus_benchmark.md"
    atomic_write_text(table, markdown(results, machine, command.strip()) + "\n")
    print(f"table: {table}")
    bw, seed = bandwidths[0][0], seeds[0]
    cells = {(r["method"], r["object"]): r for r in results if r["bandwidth"] == bw and r["seed"] == seed}
    grid = save_png(grid_image(cells, methods, objects, args.out), args.grid or args.out / "janus_grid.png")
    print(f"grid: {grid} (bandwidth {bw:g}, seed {seed})")


def main(argv: list[str] | None = None) -> int:
    from t3d.config import known_methods

    args = parse_args(argv)
    methods = known_methods() if args.methods == "all" else parse_list(args.methods)
    unknown = [m for m in methods if m not in known_methods()]
    objects, args.folders = parse_objects(args.objects)
    bad_objects = [o for o in objects if object_prompt(o) is None]
    if unknown or bad_objects:
        print(f"janus_benchmark: unknown method(s) {unknown} or object(s) {bad_objects}; "
              f"methods: {', '.join(known_methods())}; objects: {', '.join(OBJECT_PROMPTS)}", file=sys.stderr)
        return 2
    seeds = parse_list(args.seeds, int)
    try:
        bandwidths = parse_bandwidths(args.bandwidths, objects)
    except ValueError:
        print(f"janus_benchmark: bad --bandwidths {args.bandwidths!r} (e.g. 2,0.25:head+cat)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.jsonl"
    done = load_done(results_path)
    scope = [(m, o, b, s) for b, only in bandwidths for m in methods for o in only for s in seeds]
    print(f"janus_benchmark: {len(scope)} runs ({len(methods)} methods x {len(objects)} objects x "
          f"{len(seeds)} seeds x {len(bandwidths)} bandwidths), {args.steps} steps each", flush=True)
    todo = [item for item in scope if run_key(*item[:4], args.steps) not in done]
    for record in run_all(todo, args, workers=max(1, args.jobs)):
        done[record["key"]] = record
        with open(results_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        j = record["janus"]
        print(f"[{len(done)}] {record['key']}: pose acc {j['pose_accuracy']:.2f}, front {j['front_views']}/{j['views']}, "
              f"faces {j['faces']}, parts {j.get('parts')}, janus {j['janus']}, success {j['success']} "
              f"({record['train_s']:.0f}s)", flush=True)
    results = [done[run_key(*item, args.steps)] for item in scope]
    write_outputs(results, args, argv, methods, objects, bandwidths, seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
