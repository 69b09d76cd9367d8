"""`manage.py krp <subcommand>`: the operator's command line.

    sandbox    run the sandbox AWS (moto with fault injection) on loopback
    sweep      expire overdue requests, take back lapsed leases, publish what is due
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from containers.settings import DEFAULT_SANDBOX_URL


class Command(BaseCommand):
    help = "KRP operator commands; `manage.py krp <subcommand> --help` for each."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True, metavar="subcommand")
        sandbox = subcommands.add_parser(
            "sandbox",
            help="run the sandbox AWS on loopback",
            description=(
                "Run an AWS-compatible server (moto) on loopback: the embedded default's "
                "stand-in for AWS. Each environment assumes a role in its own account, so "
                "their resources stay apart. Optional fault injection answers a share of "
                "calls with AWS throttling errors."
            ),
        )
        sweep = subcommands.add_parser(
            "sweep",
            help="run the sweep once (beat runs it periodically)",
            description=(
                "Expire requests past their deadline, put running requests whose worker "
                "stopped renewing its lease back in the queue, and publish queued requests "
                "whose message never went out or is now due."
            ),
        )
        sweep.add_argument("--json", action="store_true", help="print the report as JSON")
        default = urlsplit(_sandbox_url())
        sandbox.add_argument(
            "--host", default=default.hostname or "127.0.0.1",
            help="address to listen on (default: loopback; 0.0.0.0 inside a compose network)",
        )
        sandbox.add_argument("--port", type=int, default=default.port or 4566)
        sandbox.add_argument(
            "--throttle-rate", type=float, default=0.0,
            help="share of calls (0..1) answered with a throttling error",
        )
        sandbox.add_argument(
            "--throttle-services", default="",
            help="comma-separated services to throttle (default: all), e.g. s3,sqs",
        )
        sandbox.add_argument(
            "--latency", type=float, default=0.0, help="seconds added to every call"
        )
        sandbox.add_argument(
            "--dynamodb-create-delay", type=float, default=0.0,
            help="seconds a new DynamoDB table is reported CREATING (moto makes it ACTIVE at once)",
        )
        sandbox.add_argument("--seed", type=int, default=None, help="seed for repeatable faults")

    def handle(self, *args, **options) -> None:
        if options["subcommand"] == "sandbox":
            self.sandbox(**options)
        elif options["subcommand"] == "sweep":
            self.sweep(as_json=options["json"])

    def sweep(self, *, as_json: bool) -> None:
        from provisioning.services import sweep

        report = sweep().as_dict()
        if as_json:
            self.stdout.write(json.dumps(report))
            return
        for kind, ids in report.items():
            self.stdout.write(f"{kind}: {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))

    def sandbox(self, *, host: str, port: int, throttle_rate: float, throttle_services: str,
                latency: float, dynamodb_create_delay: float, seed: int | None,
                **_) -> None:
        from provisioning.sandbox import Faults, serve_sandbox

        faults = Faults()
        try:
            faults.update(
                {
                    "throttle_rate": throttle_rate,
                    "latency": latency,
                    "services": [s.strip() for s in throttle_services.split(",") if s.strip()],
                    "dynamodb_create_delay": dynamodb_create_delay,
                }
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        def ready(url: str) -> None:
            self.stdout.write(f"sandbox AWS listening on {url}")
            self.stdout.write(f"fault injection: {json.dumps(faults.describe())}")
            self.stdout.flush()

        try:
            serve_sandbox(host, port, faults, seed=seed, ready=ready)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        except KeyboardInterrupt:
            self.stdout.write("sandbox stopped")


def _sandbox_url() -> str:
    for env in settings.KRP.environments:
        if env.endpoint_url and urlsplit(env.endpoint_url).hostname in ("127.0.0.1", "localhost"):
            return env.endpoint_url
    return DEFAULT_SANDBOX_URL
