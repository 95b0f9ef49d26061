"""A folder built once and reused: written under a temporary name, renamed into place when done.

A half-written folder is never taken as complete: the build writes `.NAME.partial-PID`, adds a
manifest (every file and its size) last, and renames the whole folder into place. A folder counts
as complete only if its manifest matches what is on disk, so a file deleted or truncated later
makes it be rebuilt. Concurrent builders of the same folder are serialised by a lock file (where
the OS has `fcntl`); partial folders of builds that died are removed by the next build.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

MANIFEST = "t3d-manifest.json"


def _manifest_of(folder: Path, info: dict) -> dict:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {**info, "files": {p.relative_to(folder).as_posix(): p.stat().st_size for p in files}}


def is_complete(folder: Path, info: dict) -> bool:
    """True when `folder` holds a manifest with this `info` and every listed file at its size."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in info.items()):
        return False
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _fsync_files(folder: Path) -> None:
    """Flush every file to disk before the manifest vouches for it (a crash after the rename must
    not leave files that the manifest lists but the disk never got)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the rename below still never exposes a partial folder
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_folder(folder: str | os.PathLike, info: dict, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Return (`folder`, built): reuse it if complete for `info`, else `build(tmp)` and move it in.

    `info` (JSON-serialisable) identifies what the folder holds, e.g. a name and a format version;
    a complete folder with other info is rebuilt. `build` fills an empty temporary folder.
    """
    folder = Path(folder)
    if is_complete(folder, info):
        return folder, False
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _lock(folder.parent / f".{folder.name}.lock"):
        if is_complete(folder, info):  # another process finished it while we waited
            return folder, False
        for stale in folder.parent.glob(f".{folder.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)  # we hold the lock: no build of it is running
        partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
        partial.mkdir()
        try:
            build(partial)
            _fsync_files(partial)
            (partial / MANIFEST).write_text(json.dumps(_manifest_of(partial, info), indent=1))
            old = folder.parent / f".{folder.name}.old-{os.getpid()}"
            if folder.exists():
                os.replace(folder, old)  # an incomplete or outdated folder: out of the way first
            os.replace(partial, folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return folder, True
