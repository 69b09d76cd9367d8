"""The processes a benchmark starts: each in its own process group, its output in a log
file, stopped on exit whatever happens (atexit, SIGTERM, SIGINT)."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_running: list[Process] = []


def free_loopback_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """One started command: `wait_for(text)` in its log, `stop()`, its `pid`."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                args, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _running.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}) before "
                                   f"{text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: no {text!r} within {timeout}s:\n{self.log()[-3000:]}")

    def children(self) -> list[int]:
        """The pids whose parent is this process (gunicorn's workers, a worker's pool)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                    found.append(int(entry.name))
        return sorted(found)

    def stop(self, timeout: float = 20.0) -> None:
        if self in _running:
            _running.remove(self)
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def stop_all() -> None:
    """Stop every process still running, newest first."""
    for process in reversed(list(_running)):
        process.stop()


def _on_signal(signum, frame) -> None:  # noqa: ARG001
    # Only unwind here: the `finally` blocks and atexit stop the processes. Stopping them
    # inside the handler would wait on a Popen the interrupted frame is already waiting on.
    raise SystemExit(128 + signum)


atexit.register(stop_all)
for _signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_signal, _on_signal)
