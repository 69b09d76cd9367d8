"""The metrics directory and this process's name in it, before prometheus_client loads.

prometheus_client decides at import whether it runs in multiprocess mode, from
PROMETHEUS_MULTIPROC_DIR; krp_project.settings calls `use_metrics_directory` before anything
imports it (every KRP process, a Celery worker and beat included, loads those settings
first). Each process then writes its values to files of its own in that directory, named by
`process_identifier()`, and /metrics adds up every file there.

The directory is wiped when the deployment starts (bin/start, docker-compose's
metrics-reset), never by one process: a file removed under a live process hides what that
process counts from then on.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

ENVIRON_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Host names may repeat pids: two containers sharing the directory each have a pid 7. The
# host part tells them apart; "_" separates the parts of prometheus_client's file names.
_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
# What this process set PROMETHEUS_MULTIPROC_DIR to (one inherited from a parent, or set
# by hand, is KRP_METRICS_DIR's to replace).
_prepared: dict[str, str] = {}


def process_identifier(pid: int | None = None) -> str:
    """This process's (or `pid`'s, on this host) name in the metrics directory's files."""
    return f"{os.getpid() if pid is None else pid}-{_HOST}"


def use_metrics_directory(path: Path) -> None:
    """Make `path` this process's metrics directory: created if missing, and named in
    PROMETHEUS_MULTIPROC_DIR for prometheus_client (whatever that said before). Raises
    OSError naming the directory when it cannot be made or written."""
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable by this process")
    os.environ[ENVIRON_VARIABLE] = _prepared[ENVIRON_VARIABLE] = str(path)


def ensure_metrics_directory() -> None:
    """Name the metrics directory for prometheus_client if krp_project.settings has not yet:
    `celery -A krp_project` imports the container (and with it the AWS clients, which
    record metrics) before it loads Django's settings. The same KrpSettings decide; a bad
    variable is left for krp_project.settings to report."""
    if ENVIRON_VARIABLE in _prepared:
        return
    from containers.settings import KrpSettings, SettingsError

    try:
        use_metrics_directory(KrpSettings.from_environ(os.environ).metrics_path)
    except (SettingsError, OSError):
        return


def mark_process_dead(pid: int, path: Path | None = None) -> None:
    """Forget what process `pid` (of this host) held in live gauges, once it has exited:
    a gunicorn worker (gunicorn.conf.py's child_exit) or a pool child (worker shutdown).
    Its counters and histograms stay: they are what it did."""
    from prometheus_client import multiprocess

    directory = path or os.environ.get(ENVIRON_VARIABLE)
    if directory:
        multiprocess.mark_process_dead(process_identifier(pid), str(directory))
