"""krp sweep: run the sweep once (beat runs it periodically)."""

from __future__ import annotations

from typing import Any

from provisioning.cli import Subcommand
from provisioning.services import sweep


class Sweep(Subcommand):
    name = "sweep"
    help = "run the sweep once (beat runs it periodically)"
    description = (
        "Expire requests past their deadline, put running requests whose worker stopped "
        "renewing its lease back in the queue, publish queued requests whose message "
        "never went out or is now due, and publish again notification deliveries whose "
        "message was lost."
    )

    def run(self, options: dict[str, Any]) -> None:
        report = sweep().as_dict()
        if options["json"]:
            self.out_json(report)
            return
        for kind, ids in report.items():
            self.out(f"{kind}: {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))
