"""The embedded default end to end: SQLite, eager tasks, the sandbox AWS, `manage.py krp`.

Every step is a real `manage.py` process, as a newcomer runs them after `bin/start`.
"""

import json
import os
import subprocess

import pytest

from tests.fixtures.processes import ROOT, manage

pytestmark = pytest.mark.usefixtures("sandbox")


@pytest.fixture
def embedded(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "krp_project.settings",
        "KRP_DATABASE_URL": f"sqlite:///{tmp_path / 'krp.sqlite3'}",
        "KRP_TASK_MODE": "eager",
        "KRP_USER": "newcomer",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(manage(*args), cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)

    assert run("migrate", "--noinput").returncode == 0
    made = run("shell", "-c", (
        "from django.contrib.auth.models import Group, User; "
        "u = User.objects.create_user('newcomer'); "
        "u.groups.add(Group.objects.create(name='sandbox'))"
    ))
    assert made.returncode == 0, made.stderr
    return run


def test_submit_wait_status_and_reconcile_on_sqlite_in_eager_mode(embedded):
    submitted = embedded("krp", "submit", "--env", "alpha", "--type", "sqs_queue",
                         "--name", "first-queue", "--spec", '{"fifo": true}', "--wait")

    assert submitted.returncode == 0, submitted.stderr
    assert "running -> succeeded" in submitted.stdout

    listed = embedded("krp", "status", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["status"]) == ("first-queue", "succeeded")

    detail = json.loads(embedded("krp", "status", row["id"], "--json").stdout)
    assert detail["outputs"]["arn"].endswith(":111111111111:krp-alpha-first-queue.fifo")

    checked = embedded("krp", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "broker: not used (eager mode)" in checked.stdout
    assert "sweep: not scheduled (eager mode): no beat runs it" in checked.stdout

    reconciled = embedded("krp", "reconcile", "--env", "alpha", "--json")
    [run] = json.loads(reconciled.stdout)
    assert run["checked"] == 1
    assert not [f for f in run["findings"] if f["kind"] != "orphan"]
