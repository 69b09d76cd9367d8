"""gunicorn's settings for KRP's web process; gunicorn reads ./gunicorn.conf.py by itself
when started from the project's directory (as the image and the README start it).

Only what KRP needs of it: when a worker exits, its live metrics gauges are forgotten
(prometheus_client's multiprocess mode; docs/metrics.md). Bind address and worker count
stay on the command line.
"""

import os

from containers.settings import KrpSettings, SettingsError
from provisioning.metrics.process import mark_process_dead

try:
    # The same directory the workers write to; gunicorn's master loads no Django settings.
    _metrics_dir = KrpSettings.from_environ(os.environ).metrics_path
except SettingsError:
    _metrics_dir = None  # each worker stops at start with the message that names it


def child_exit(server, worker):
    """After a worker exits (gunicorn calls it in the master)."""
    if _metrics_dir is not None:
        mark_process_dead(worker.pid, _metrics_dir)
