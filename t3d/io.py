"""File writes that never leave half a file: a kill, a full disk or an I/O error at any moment
leaves either the old file or the new one, one clear error line, and no temporary file behind.

New files get the permissions any other tool would give them (0666 minus the user's umask),
not the 0600 of a temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from t3d.errors import T3dError, WriteError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once at import: changing it is process-wide and not thread-safe


def write_failed(path: Path, exc: OSError) -> WriteError:
    return WriteError(f"cannot write {path}: {exc.strerror or exc}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a crash after it must not resurrect the old file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not open directories; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is fsynced and renamed onto `path`.

    The temporary file keeps `path`'s suffix because some writers (trimesh, imageio) pick the
    format from it. Any OSError while writing becomes a WriteError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~UMASK)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise write_failed(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_can_create_dir(path: str | os.PathLike) -> None:
    """Refuse, without creating anything, a folder that could not be made or written: its nearest
    existing ancestor must be a folder we may write into."""
    path = Path(path).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise T3dError(f"output folder {path} is not writable: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise T3dError(f"output folder {path} is not writable: no write permission on {existing}")


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create `path` if needed and prove we can write there; one clear error otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".t3d-write-probe", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise T3dError(f"output folder {path} is not writable: {exc.strerror or exc}") from None
    return path


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete JSON-object line of an append-only log; a torn last line (the write a crash
    interrupted) and any line that is not an object are skipped."""
    try:
        text = Path(path).read_bytes().decode("utf-8", "replace")
    except (FileNotFoundError, IsADirectoryError):
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
