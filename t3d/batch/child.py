"""Run one `python -m t3d.cli ...` child: output to the run's log, stop it cleanly, keep its last line.

The child runs in its own session, so a Ctrl-C at the terminal reaches only the batch, which then
sends exactly one SIGINT to each child (a second SIGINT could cut short the checkpoint a child
saves on the first). On Linux the child is also tied to its parent's life (PR_SET_PDEATHSIG):
when the batch or a Ray worker dies, its child dies with it, so a rescheduled task never meets
an orphan still writing to the same run folder.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

# Executed by `python -c` before t3d starts: let SIGINT in (a Ray worker blocks it, a shell's
# background job ignores it, and both carry over to exec'd children; t3d needs it to save a
# checkpoint), ask the kernel to SIGKILL this process when its parent dies (Linux prctl
# option 1 = PR_SET_PDEATHSIG), exit if the parent is already gone, then exec the real command.
# No preexec_fn: that is unsafe in a process with threads.
LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "    if os.getppid() != int(sys.argv[1]): sys.exit(137)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)
POLL_SECONDS = 0.2


@dataclass
class Stop:
    """Set by the executor: `interrupt` sends each child one SIGINT, `kill` a SIGKILL."""

    interrupt: threading.Event = field(default_factory=threading.Event)
    kill: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class Outcome:
    code: int  # the child's exit code; -N when killed by signal N
    last_line: str  # the last non-empty line it printed ("" if none)
    interrupted: bool  # the batch asked it to stop


def t3d_command(*args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, str(os.getpid()), "-m", "t3d.cli", *args]


def run_child(args: list[str], log_path: Path, env: dict, stop: Optional[Stop], cwd: Optional[str]) -> Outcome:
    """Run `t3d ARGS`, appending its stdout and stderr to `log_path`, until it exits."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} t3d {shlex.join(args)}\n".encode())
        log.flush()
        start = log.tell()
        proc = subprocess.Popen(t3d_command(*args), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd=cwd if cwd and os.path.isdir(cwd) else None, start_new_session=True)
        interrupted = wait_child(proc, stop)
    return Outcome(proc.returncode, last_line(log_path, start), interrupted)


def wait_child(proc: subprocess.Popen, stop: Optional[Stop]) -> bool:
    """Wait for `proc`, passing on a stop request; True when the batch asked it to stop.

    Polls instead of blocking in wait(): Ray cancels a task by raising KeyboardInterrupt in it,
    which Python only delivers between bytecodes.
    """
    interrupted = killed = False
    while True:
        try:
            if stop is not None and stop.kill.is_set() and not killed:
                proc.kill()
                interrupted = killed = True
            elif stop is not None and stop.interrupt.is_set() and not interrupted:
                proc.send_signal(signal.SIGINT)
                interrupted = True
            proc.wait(timeout=POLL_SECONDS)
            return interrupted
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # Ray's cancel, or Ctrl-C in a single-threaded caller
            if interrupted:
                proc.kill()  # asked twice: stop now
                killed = True
            else:
                proc.send_signal(signal.SIGINT)
            interrupted = True


def last_line(path: Path, start: int) -> str:
    """The last non-empty line written to `path` after byte `start`."""
    with open(path, "rb") as fh:
        fh.seek(max(start, os.path.getsize(path) - 8192))
        tail = fh.read().decode("utf-8", "replace")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""
