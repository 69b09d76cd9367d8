"""`manage.py krp <subcommand>`, run in the test process or as a real process.

`krp`, `krp_refused` and `krp_outcome` call the command in the test process (fast; a
refusal is a CommandError); `run_krp` runs `python manage.py krp ...` as an operator would, with the
test environment (or a changed copy of it), and `assert_refused` checks how a refusal
looks there: a non-zero exit status and a plain message on stderr, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError

from tests.fixtures.processes import ROOT, manage


@dataclass
class Output:
    stdout: str
    stderr: str
    error: str = ""  # the CommandError's message, for a refusal


def krp_outcome(*args: str) -> Output:
    """Run `krp <args>` in this process, whether it succeeds or refuses."""
    stdout, stderr = StringIO(), StringIO()
    try:
        call_command("krp", *args, stdout=stdout, stderr=stderr)
    except CommandError as refusal:
        return Output(stdout.getvalue(), stderr.getvalue(), str(refusal) or "CommandError")
    return Output(stdout.getvalue(), stderr.getvalue())


def krp(*args: str) -> Output:
    """Run `krp <args>` in this process; it must succeed."""
    ran = krp_outcome(*args)
    assert not ran.error, ran.error
    return ran


def krp_refused(*args: str) -> Output:
    """Run `krp <args>` in this process; it must refuse with a CommandError."""
    ran = krp_outcome(*args)
    assert ran.error, f"krp {' '.join(args)} succeeded:\n{ran.stdout}"
    return ran


def run_krp(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0,
            stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `python manage.py krp <args>` with the test environment, plus `env`; `stdin` is
    what it reads from standard input (nothing by default)."""
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "krp_project.settings"}
    environ.pop("KRP_USER", None)  # who acts is said by each test, never inherited
    environ.update(env or {})
    return subprocess.run(manage("krp", *args), cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=timeout, check=False, input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def assert_refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    """A refusal an operator can read: non-zero, each fragment on stderr, no traceback."""
    assert done.returncode != 0, done.stdout + done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
