"""The Celery app is configured from KrpSettings: queues, routes, limits, the sweep."""

import os

import pytest

from containers.settings import KrpSettings, SettingsError
from krp_project.celery import create_celery_app
from provisioning.errors import InvalidRequest


def app_for(**variables):
    return create_celery_app(KrpSettings.from_environ({**os.environ, **variables}))


def test_one_queue_per_environment_plus_the_control_queue():
    app = app_for()

    assert sorted(queue.name for queue in app.conf.task_queues) == [
        "alpha", "krp", "prod", "theta", "zeta"]
    assert app.conf.task_default_queue == "krp"
    assert app.conf.task_create_missing_queues is False


def test_jobs_naming_an_environment_are_routed_to_its_queue_only():
    app = app_for()
    router = app.conf.task_routes[0]

    assert router("krp.environment_check", (), {"environment": "prod"}, {}) == {"queue": "prod"}
    with pytest.raises(InvalidRequest, match="unknown environment 'staging'"):
        router("krp.environment_check", (), {"environment": "staging"}, {})


def test_rate_limit_per_resource_type_comes_from_settings():
    app = app_for(KRP_RATE_LIMITS='{"iam_role": "10/m", "s3_bucket": "2/s"}')

    assert app.tasks["krp.provision.iam_role"].rate_limit == "10/m"
    assert app.tasks["krp.provision.s3_bucket"].rate_limit == "2/s"
    assert app.tasks["krp.provision.sqs_queue"].rate_limit is None


def test_bad_rate_limits_are_refused_naming_the_type():
    # The type names are checked where the registry is known: the Celery app factory.
    with pytest.raises(SettingsError, match="KRP_RATE_LIMITS: bucket: not a resource type"):
        create_celery_app(KrpSettings.from_environ({"KRP_RATE_LIMITS": '{"bucket": "1/s"}'}))
    with pytest.raises(SettingsError, match="'fast' is not a Celery rate"):
        KrpSettings.from_environ({"KRP_RATE_LIMITS": '{"s3_bucket": "fast"}'})


def test_beat_runs_the_sweep_on_the_control_queue_at_the_configured_interval():
    app = app_for(KRP_SWEEP_INTERVAL_SECONDS="45")

    entry = app.conf.beat_schedule["krp-sweep"]
    assert entry["task"] == "krp.sweep"
    assert entry["schedule"] == 45.0
    assert entry["options"]["queue"] == "krp"


def test_late_acks_and_reject_on_worker_loss_with_a_visibility_timeout_from_settings():
    app = app_for(KRP_VISIBILITY_TIMEOUT_SECONDS="7200")

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] == 7200
    assert app.conf.result_backend == "django-db"
    assert app.conf.result_extended is True


def test_a_visibility_timeout_shorter_than_a_job_is_refused():
    with pytest.raises(SettingsError, match="must be at least twice the longest"):
        KrpSettings.from_environ({"KRP_VISIBILITY_TIMEOUT_SECONDS": "600"})


def test_beat_reconciles_each_environment_on_its_own_queue():
    app = app_for(KRP_RECONCILE_INTERVAL_SECONDS="600")

    entries = {k: v for k, v in app.conf.beat_schedule.items() if v["task"] == "krp.reconcile"}
    assert {e["kwargs"]["environment"]: e["options"]["queue"] for e in entries.values()} == {
        "alpha": "alpha", "prod": "prod", "theta": "theta", "zeta": "zeta",
    }
    assert {e["schedule"] for e in entries.values()} == {600.0}
    assert "krp.reconcile" not in {
        e["task"] for e in app_for(KRP_RECONCILE_INTERVAL_SECONDS="0").conf.beat_schedule.values()
    }


def test_a_worker_reconnects_to_a_lost_broker_for_as_long_as_it_takes():
    app = app_for()

    assert app.conf.broker_connection_retry is True
    assert app.conf.broker_connection_max_retries is None  # Celery's default gives up at 100
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False
    assert app.conf.broker_transport_options["socket_keepalive"] is True


def test_on_rabbitmq_the_queues_are_durable_quorum_queues_on_a_topic_exchange():
    app = app_for(KRP_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/krp")

    queues = {queue.name: queue for queue in app.conf.task_queues}
    assert sorted(queues) == ["alpha", "krp", "prod", "theta", "zeta"]
    for name, queue in queues.items():
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.durable is True
        assert (queue.exchange.type, queue.routing_key) == ("topic", name)
    assert "socket_keepalive" not in app.conf.broker_transport_options  # Redis's option


@pytest.mark.parametrize(("conn_max_age", "kept"), [(60, True), (0, False)])
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_between_tasks_only_within_conn_max_age(
    krp_settings, conn_max_age, kept
):
    """Celery's Django fixup, as a worker installs it, and KRP's own handler around a task:
    the connection lives on while CONN_MAX_AGE allows (no new connection per job)."""
    from celery.fixups.django import DjangoWorkerFixup
    from celery.signals import task_postrun, task_prerun
    from django.db import connection

    app = create_celery_app(krp_settings)
    task = app.tasks["krp.sweep"]
    fixup = DjangoWorkerFixup(app)
    before = connection.settings_dict["CONN_MAX_AGE"]
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = conn_max_age
    try:
        connection.ensure_connection()
        opened = connection.connection
        for signal, fixup_handler in ((task_prerun, fixup.on_task_prerun),
                                      (task_postrun, fixup.on_task_postrun)):
            fixup_handler(sender=task)
            signal.send(sender=task, task_id="t", task=task, args=(), kwargs={})
        assert (connection.connection is opened) is kept
    finally:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = before
