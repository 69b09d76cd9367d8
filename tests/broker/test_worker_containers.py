"""Which container runs a job, for each worker pool: a prefork child builds its own at
worker_process_init; with -P solo or -P threads the main worker process runs the job with
the container it built at worker_init. Real worker processes, one per pool kind."""

import pytest

from provisioning.tasks import environment_check
from tests.fixtures.processes import parent_pid

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def run_check_on(start_worker, pool: str) -> tuple[dict, int]:
    """Start a `pool` worker for prod's queue (the session's alpha worker never takes a
    prod job), run the environment check there, and return what reported it and the
    worker's main pid."""
    worker = start_worker("prod", name=f"prod-{pool}", pool=pool)
    worker.wait_for("ready.")
    answer = environment_check.apply_async(kwargs={"environment": "prod"}).get(timeout=90)
    assert answer["identity"]["account"] == "222222222222"
    return answer["worker"], worker.pid


def test_prefork_child_runs_the_job_with_the_container_it_built_at_worker_process_init(
    start_worker, container
):
    runtime, main_pid = run_check_on(start_worker, "prefork")

    assert runtime["container_origin"] == "worker_process_init"
    assert runtime["pid"] != main_pid
    assert parent_pid(runtime["pid"]) == main_pid
    assert runtime["fingerprint"] == container.settings().fingerprint


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_run_the_job_with_the_main_process_container_built_at_worker_init(
    start_worker, container, pool
):
    runtime, main_pid = run_check_on(start_worker, pool)

    assert runtime["container_origin"] == "worker_init"
    assert runtime["pid"] == main_pid
    assert runtime["fingerprint"] == container.settings().fingerprint
