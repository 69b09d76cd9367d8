"""python -m bench [--quick] [--only accept,worker,lists,reconcile,rss] [--rounds N]
[--duration S] [--json PATH] [--keep]: KRP's benchmark suite (see bench/README.md)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.components import (
    VAR,
    create_database,
    database_name,
    drop_database,
    section_environ,
    start_redis,
)
from bench.processes import ROOT, Process, free_loopback_port, stop_all
from bench.report import table

SECTIONS = ("accept", "worker", "lists", "reconcile", "rss")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a pass of about a minute (fewer rounds, smaller sizes)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (of {', '.join(SECTIONS)})")
    parser.add_argument("--rounds", type=int, help="alternating rounds (quick 2, full 5)")
    parser.add_argument("--duration", type=float,
                        help="seconds of each accept measurement (quick 1.5, full 5)")
    parser.add_argument("--json", type=Path, default=VAR / "latest.json",
                        help="where the figures go (default var/bench/latest.json)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the databases krp_bench_<section> afterwards")
    args = parser.parse_args()
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown section {', '.join(unknown)} (known: "
                     f"{', '.join(SECTIONS)})")
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.duration = args.duration or (1.5 if args.quick else 5.0)
    return args


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout.strip()
    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "git_commit": commit, "git_dirty": bool(dirty), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average": os.getloadavg()}


def run_section(section: str, args: argparse.Namespace, logs: Path, redis_port: int,
                index: int, results: dict[str, Any]) -> dict[str, Any]:
    """One section in its own process, on its own database and Redis databases."""
    sandbox_port = free_loopback_port()
    env = section_environ(section=section,
                          broker_url=f"redis://127.0.0.1:{redis_port}/{2 * index}",
                          cache_url=f"redis://127.0.0.1:{redis_port}/{2 * index + 1}",
                          sandbox_url=f"http://127.0.0.1:{sandbox_port}")
    out, earlier = logs / f"{section}.json", logs / "earlier.json"
    earlier.write_text(json.dumps(results, default=str))
    create_database(database_name(section))
    started = time.monotonic()
    runner = None
    try:
        runner = Process(section, [
            sys.executable, "-m", "bench.runner", section, "--out", str(out), "--logs",
            str(logs / section), "--rounds", str(args.rounds), "--duration",
            str(args.duration), "--sandbox-port", str(sandbox_port), "--earlier", str(earlier),
            *(["--quick"] if args.quick else []),
        ], logs / f"{section}.log", env)
        runner.popen.wait()
        if out.exists():
            result = json.loads(out.read_text())
        else:
            result = {"error": f"the section's process exited with {runner.popen.returncode}:"
                               f"\n{runner.log()[-3000:]}", "rows": []}
    finally:
        if runner is not None:
            runner.stop()  # before the drop: it may hold connections to the database
        if not args.keep:
            drop_database(database_name(section))
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def main() -> None:
    args = _arguments()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = VAR / "runs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    began = time.monotonic()
    try:
        redis, redis_port = start_redis(logs)
        for index, section in enumerate(s for s in SECTIONS if s in args.sections):
            print(f"bench: {section} ...", flush=True)
            results[section] = run_section(section, args, logs, redis_port, index, results)
            if results[section].get("error"):
                print(f"bench: {section} failed:\n{results[section]['error']}", flush=True)
    finally:
        stop_all()
    document = {"machine": machine(), "quick": args.quick, "rounds": args.rounds,
                "seconds": round(time.monotonic() - began, 1), "logs": str(logs),
                "sections": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, default=str))
    print()
    print(table(results))
    print(f"\n{document['seconds']} s; figures in {args.json}; logs in {logs}")
    if any(result.get("error") for result in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
