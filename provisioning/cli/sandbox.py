"""krp sandbox: the sandbox AWS (moto with fault injection) on loopback."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from dependency_injector.wiring import Provide, inject
from django.core.management.base import CommandError, CommandParser

from containers.core import CoreContainer
from containers.settings import DEFAULT_SANDBOX_URL, KrpSettings
from provisioning.cli import Subcommand
from sandbox.server import Faults, serve_sandbox


class Sandbox(Subcommand):
    name = "sandbox"
    help = "run the sandbox AWS on loopback"
    description = (
        "Run an AWS-compatible server (moto) on loopback: the embedded default's stand-in "
        "for AWS. Each environment assumes a role in its own account, so their resources "
        "stay apart. Optional fault injection answers a share of calls with AWS throttling "
        "errors, or carries a share out and drops the connection before answering."
    )
    json_option = False

    def add_arguments(self, parser: CommandParser) -> None:
        default = urlsplit(_sandbox_url())
        parser.add_argument(
            "--host", default=default.hostname or "127.0.0.1",
            help="address to listen on (default: loopback; 0.0.0.0 inside a compose network)",
        )
        parser.add_argument("--port", type=int, default=default.port or 4566)
        parser.add_argument(
            "--throttle-rate", type=float, default=0.0,
            help="share of calls (0..1) answered with a throttling error",
        )
        parser.add_argument(
            "--throttle-services", default="",
            help="comma-separated services to throttle (default: all), e.g. s3,sqs",
        )
        parser.add_argument(
            "--latency", type=float, default=0.0, help="seconds added to every call"
        )
        parser.add_argument(
            "--dynamodb-create-delay", type=float, default=0.0,
            help="seconds a new DynamoDB table is reported CREATING (moto makes it ACTIVE at once)",
        )
        parser.add_argument(
            "--drop-rate", type=float, default=0.0,
            help="share of calls (0..1) carried out and then answered by a dropped "
                 "connection, as a load balancer drops one (of --throttle-services' services)",
        )
        parser.add_argument(
            "--drop-actions", default="",
            help="comma-separated operations to drop (default: all), e.g. CreateBucket",
        )
        parser.add_argument("--seed", type=int, default=None, help="seed for repeatable faults")

    def run(self, options: dict[str, Any]) -> None:
        host, port = options["host"], options["port"]
        faults = Faults()
        try:
            faults.update(
                {
                    "throttle_rate": options["throttle_rate"],
                    "latency": options["latency"],
                    "services": [
                        s.strip() for s in options["throttle_services"].split(",") if s.strip()
                    ],
                    "dynamodb_create_delay": options["dynamodb_create_delay"],
                    "drop_rate": options["drop_rate"],
                    "drop_actions": [
                        a.strip() for a in options["drop_actions"].split(",") if a.strip()
                    ],
                }
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        def ready(url: str) -> None:
            self.out(f"sandbox AWS listening on {url}")
            self.out(f"fault injection: {json.dumps(faults.describe())}")

        try:
            serve_sandbox(host, port, faults, seed=options["seed"], ready=ready)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        except KeyboardInterrupt:
            self.out("sandbox stopped")


@inject
def _sandbox_url(settings: KrpSettings = Provide[CoreContainer.settings]) -> str:
    """Where the environments expect a loopback sandbox, so `krp sandbox` serves them."""
    for env in settings.environments:
        if env.endpoint_url and urlsplit(env.endpoint_url).hostname in ("127.0.0.1", "localhost"):
            return env.endpoint_url
    return DEFAULT_SANDBOX_URL
