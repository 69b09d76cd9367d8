"""One section in a process of its own: `python -m bench.runner SECTION --out FILE ...`,
started by `python -m bench` with the section's KRP_* variables. Sets Django up on the
section's database (already created), migrates it, runs the section, writes its result."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.processes import stop_all


@dataclass(frozen=True)
class Context:
    """What a section knows of its run."""

    quick: bool
    rounds: int
    duration: float  # seconds of each timed burst
    logs: Path
    env: dict[str, str]  # the section's variables, for the processes it starts
    sandbox_port: int

    @property
    def broker_url(self) -> str:
        return self.env["KRP_BROKER_URL"]

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("section")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--logs", required=True, type=Path)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sandbox-port", type=int, required=True)
    parser.add_argument("--earlier", type=Path, help="results of the sections run before")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    env = {k: v for k, v in os.environ.items() if k.startswith(("KRP_", "AWS_", "DJANGO_"))}
    context = Context(quick=args.quick, rounds=args.rounds, duration=args.duration,
                      logs=args.logs, env=env, sandbox_port=args.sandbox_port)
    section = importlib.import_module(f"bench.{args.section}")
    try:
        earlier = json.loads(args.earlier.read_text()) if args.earlier else {}
        result = (section.run(context, earlier) if args.section == "rss"
                  else section.run(context))
    except Exception:  # noqa: BLE001 - the table says the section failed, and why
        result = {"error": traceback.format_exc(), "rows": []}
    finally:
        stop_all()
    args.out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
