"""One writer per run folder: an exclusive OS lock held while a command writes into the run.

The lock is `flock` on RUN/.t3d.lock, which also records the holder's process id for the error
message. The kernel releases it when the holder exits, however it exits (kill -9 included), so a
crashed run never blocks its folder; the file itself stays (it is not part of the run's outputs).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from t3d.errors import RunBusy
from t3d.io import UMASK

LOCK_FILE = ".t3d.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another process"
    pid, _, command = text.partition(" ")
    return f"process {pid}" + (f" ({command})" if command else "") if pid.isdigit() else "another process"


def _busy(run_dir: Path) -> RunBusy:
    return RunBusy(f"run folder {run_dir} is in use by {_holder(run_dir / LOCK_FILE)}; wait for it to "
                   f"finish or choose another --out")


class RunLock:
    def __init__(self, run_dir: str | os.PathLike, command: str = "t3d"):
        self.run_dir, self.command = Path(run_dir), command
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        """Take the lock (creating the folder if needed) or raise RunBusy naming the holder."""
        from t3d.io import check_writable_dir

        check_writable_dir(self.run_dir)
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666 & ~UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise _busy(self.run_dir) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def check_not_busy(run_dir: str | os.PathLike) -> None:
    """Fail early (before models load) when a live process holds the folder; takes nothing."""
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise _busy(Path(run_dir)) from None
    finally:
        os.close(fd)


def lock_if_inside(run_dir: Path, out: Path, command: str):
    """The run's lock when `out` lies inside the run folder (a write into the run), else nothing:
    rendering a running run's checkpoint to a file elsewhere needs no lock."""
    import contextlib

    from t3d.errors import T3dError

    if not Path(run_dir).is_dir():
        raise T3dError(f"no run folder or checkpoint at {run_dir}")
    inside = Path(out).resolve().is_relative_to(Path(run_dir).resolve())
    return RunLock(run_dir, command) if inside else contextlib.nullcontext()
