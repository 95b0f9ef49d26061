"""The run's log (log.jsonl): one JSON record per logged step, on disk as soon as it is written.

Each record is flushed when written (a `kill -9` loses at most the record being written, never
those before it) and the file is fsynced at every checkpoint. When a run resumes from a
checkpoint, the records the lost steps wrote after it are dropped, so the log holds exactly one
record per logged step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from t3d.io import atomic_write_text, read_jsonl, write_failed

LOG_FILE = "log.jsonl"


def read_records(path: Path) -> list[dict]:
    """Every complete record; a torn last line (the write a crash interrupted) is ignored."""
    return read_jsonl(path)


def keep_until(path: Path, step: int) -> int:
    """Drop the records of steps after `step` (a skipped-step record at `step` came after it);
    returns how many were dropped."""
    records = read_records(path)
    kept = [r for r in records if r.get("step", 0) < step or (r.get("step") == step and not r.get("skipped"))]
    if len(kept) != len(records) or (path.is_file() and not path.read_text(errors="replace").endswith("\n")):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(records) - len(kept)


class RunLog:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOG_FILE
        try:
            self.file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise write_failed(self.path, exc) from None

    def write(self, record: dict) -> None:
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as exc:
            raise write_failed(self.path, exc) from None

    def sync(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:
            raise write_failed(self.path, exc) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass  # the records were flushed as they were written

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
