"""What a section starts: its PostgreSQL database, a private redis-server, the sandbox AWS,
gunicorn and Celery workers, each given the same KRP_* variables (section_environ)."""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import time
from pathlib import Path

import psycopg

from bench.processes import ROOT, Process, free_loopback_port

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
VAR = ROOT / "var" / "bench"
ACCOUNTS = {"alpha": "111111111111", "prod": "222222222222"}


def database_name(section: str) -> str:
    return f"krp_bench_{section}"


def create_database(name: str) -> None:
    """A fresh, empty database (an old one of that name is dropped first)."""
    with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def section_environ(*, section: str, broker_url: str, cache_url: str,
                    sandbox_url: str) -> dict[str, str]:
    """The variables every process of a section runs with (web, workers, the section's own
    Django process): broker mode, the section's database, alpha and prod in the sandbox,
    each reached through a role of its own account as tests/settings.py does."""
    environments = {
        name: {"account_id": account, "region": "ap-northeast-2",
               "role_arn": f"arn:aws:iam::{account}:role/krp-provisioner",
               "endpoint_url": sandbox_url,
               # KRP's call budget still takes a token per call (its cost is measured), at
               # a rate no section reaches: the default 20/s would time the limit instead.
               "api_calls_per_second": 10_000, **({"requires_approval": True}
                                                if name == "prod" else {})}
        for name, account in ACCOUNTS.items()
    }
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "KRP_DATABASE_URL": f"postgres://{POSTGRES['user']}@{POSTGRES['host']}:"
                            f"{POSTGRES['port']}/{database_name(section)}",
        "KRP_BROKER_URL": broker_url,
        # As a deployment with several web processes would: throttle counts shared in Redis.
        "KRP_CACHE_URL": cache_url,
        "KRP_TASK_MODE": "broker",
        "KRP_SECRET_KEY": "krp-bench-secret-key-not-for-use",
        "KRP_LOG_LEVEL": "WARNING",
        "KRP_ENVIRONMENTS": json.dumps(environments),
        "KRP_SANDBOX_URL": sandbox_url,
        # Throttling stays on (its cost is part of KRP's), at a rate the bench never reaches.
        "KRP_API_USER_RATE": "10000000/min",
        "KRP_SWEEP_INTERVAL_SECONDS": "3600",
        # Hourly, as by default: a reconcile run deep-checks its share, as beat's runs do (no
        # beat runs here, so nothing reconciles on its own).
        "KRP_RECONCILE_INTERVAL_SECONDS": "3600",
        "KRP_STATIC_ROOT": str(VAR / "static"),
        "KRP_METRICS_DIR": str(VAR / "metrics"),
        "AWS_ACCESS_KEY_ID": "AKIAKRPBENCH00000001",
        "AWS_SECRET_ACCESS_KEY": "krp-bench-secret-access-key",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_redis(logs: Path) -> tuple[Process, int]:
    assert shutil.which("redis-server"), "the benchmark needs redis-server installed"
    port = free_loopback_port()
    process = Process("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(logs)],
                      logs / "redis.log", {})
    process.wait_for("Ready to accept connections", timeout=20)
    return process, port


def start_sandbox(logs: Path, port: int, env: dict[str, str]) -> Process:
    process = Process("sandbox", [sys.executable, "manage.py", "krp", "sandbox",
                                  "--port", str(port)], logs / "sandbox.log", env)
    process.wait_for("sandbox AWS listening on", timeout=60)
    return process


def sandbox_calls(url: str) -> dict[str, int]:
    """Calls the sandbox has seen so far, per service."""
    import urllib.request

    with urllib.request.urlopen(url + "/_krp/calls", timeout=10) as answer:
        return json.loads(answer.read())["calls"]


def calls_since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {service: after.get(service, 0) - before.get(service, 0)
            for service in sorted(set(after) | set(before))
            if after.get(service, 0) - before.get(service, 0)}


def start_gunicorn(logs: Path, env: dict[str, str], workers: int = 2) -> tuple[Process, int]:
    """gunicorn as a deployment runs it (sync workers), serving bench.settings's URLconf:
    all of KRP's URLs plus the floor view."""
    port = free_loopback_port()
    process = Process("gunicorn", [sys.executable, "-m", "gunicorn", "krp_project.wsgi",
                                   "-w", str(workers), "-b", f"127.0.0.1:{port}"],
                      logs / "gunicorn.log", env)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                break
        except OSError:
            pass
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not answer /healthz:\n{process.log()[-3000:]}")
        time.sleep(0.1)
    return process, port


def start_worker(logs: Path, env: dict[str, str], queues: str, name: str) -> Process:
    """A Celery worker as the README runs it, with one pool process (-c 1), so that its
    jobs run one after another like the direct loop it is compared with."""
    process = Process(f"worker-{name}", [
        sys.executable, "-m", "celery", "-A", "krp_project", "worker", "-Q", queues,
        "-n", f"{name}@%h", "-c", "1", "-P", "prefork", "-l", "INFO",
    ], logs / f"worker-{name}.log", env)
    process.wait_for("ready.", timeout=60)
    return process
