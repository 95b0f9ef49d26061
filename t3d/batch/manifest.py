"""DIR/batch.jsonl: one JSON line per prompt result, appended as results arrive.

Each line reaches the disk before the next result is taken (write, flush, fsync). The file is a
log over every invocation of the batch (field "batch" tells them apart); the latest line of a
folder is its current status. A crash can at worst leave the last line torn: readers skip it,
and the next writer cuts it off before appending, so one crash never damages two records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from t3d.errors import T3dError
from t3d.io import read_jsonl

MANIFEST_FILE = "batch.jsonl"


class Manifest:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.repaired = repair_torn_tail(self.path)
            self.file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise T3dError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def append(self, record: dict) -> None:
        try:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:  # e.g. a full disk: stop the batch with one line, runs keep their checkpoints
            raise T3dError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def repair_torn_tail(path: Path) -> bool:
    """Cut a last line that lacks its newline (a write cut short); True if something was cut."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return False
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def read_manifest(path: Path) -> list[dict]:
    """Every complete record in `path`; a torn or unreadable line is skipped."""
    return read_jsonl(path)


def latest_by_folder(records: list[dict]) -> dict[str, dict]:
    """The last record of each run folder."""
    return {r["folder"]: r for r in records if "folder" in r}
