"""The Celery app factory and KRP's worker start-up.

`celery -A krp_project worker -Q alpha` finds `app` here. Configuration comes from
KrpSettings only. Which container a task uses (ProcessRuntime.container_origin says):

- web / manage.py / eager mode: the Django process's own, built in AppConfig.ready()
  ("django");
- a broker-mode worker's main process: a fresh one built at worker_init ("worker_init"),
  once Celery's Django fixup has run django.setup(). It runs the jobs with `-P solo` and
  `-P threads`;
- each prefork pool child: a fresh one built at worker_process_init
  ("worker_process_init"), so no boto3 session, client or database connection crosses
  the fork.
"""

from __future__ import annotations

import logging
import os
import sys

from celery import Celery, Task, current_app
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)
from kombu import Exchange, Queue

from containers.core import CoreContainer, build_container
from containers.settings import KrpSettings, SettingsError
from provisioning.errors import InvalidRequest
from provisioning.metrics.process import mark_process_dead
from provisioning.resources import REGISTRY
from provisioning.runtime import ContainerOrigin

logger = logging.getLogger("krp.worker")


def provision_task_name(type_name: str) -> str:
    """The registered name of the task that provisions a `type_name` resource."""
    return f"krp.provision.{type_name}"


class KrpCelery(Celery):
    """A Celery app that knows its KrpSettings and this process's container."""

    krp_settings: KrpSettings
    _container: CoreContainer | None = None
    _container_pid: int | None = None  # the process the bound container was bound in

    @property
    def container(self) -> CoreContainer:
        if self._container is None:
            raise RuntimeError(
                "no container is bound to the Celery app; Django's AppConfig.ready() or "
                "worker_process_init binds one"
            )
        return self._container

    def use_container(self, container: CoreContainer) -> None:
        self._container = container
        self._container_pid = os.getpid()

    @property
    def container_crossed_a_fork(self) -> bool:
        """Whether the bound container was bound in another process (this one's parent)."""
        return self._container_pid is not None and self._container_pid != os.getpid()

    def provision_task(self, type_name: str) -> Task:
        """This app's registered task for `type_name`. Publishing through the task object
        (not send_task, which ignores task_always_eager) keeps eager mode eager."""
        return self.tasks[provision_task_name(type_name)]


def check_rate_limits(settings: KrpSettings) -> None:
    """Every type KRP_RATE_LIMITS names must be a resource type.

    KrpSettings checks the shape and the rates; the type names are checked here, where the
    registry is known, so that containers/ does not depend on provisioning's resources.
    """
    known = ", ".join(sorted(REGISTRY))
    problems = [f"{type_name}: not a resource type ({known})"
                for type_name, _ in settings.rate_limits if type_name not in REGISTRY]
    if problems:
        raise SettingsError("KRP_RATE_LIMITS: " + "; ".join(problems))


class EnvironmentRouter:
    """Sends a job that names an environment to that environment's queue, and nowhere else."""

    def __init__(self, settings: KrpSettings):
        self._settings = settings

    def __call__(self, name, args, kwargs, options, task=None, **kw):
        environment = (kwargs or {}).get("environment")
        if environment is None:
            return None
        try:
            return {"queue": self._settings.environment(environment).queue}
        except KeyError:
            raise InvalidRequest(
                f"unknown environment {environment!r}; known: "
                f"{', '.join(self._settings.environment_names)}"
            ) from None


def create_celery_app(settings: KrpSettings, container: CoreContainer | None = None) -> KrpCelery:
    """A Celery app configured from `settings`.

    Give `container` to run tasks with a container you already have: the Django
    process's in eager mode, or a test's. SettingsError if the settings name a resource
    type that does not exist.
    """
    check_rate_limits(settings)
    app = KrpCelery("krp", set_as_current=False)
    app.krp_settings = settings
    if container is not None:
        app.use_container(container)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        # A worker that loses its broker reconnects for as long as it takes (Celery's
        # default gives up after 100 attempts, about 50 minutes, and the worker exits),
        # so an outage never leaves a queue unserved; a supervisor restarts what still dies.
        broker_connection_retry=True,
        broker_connection_max_retries=None,
        # A job running when the connection drops runs to its end rather than being killed
        # half-way through its AWS calls: its lease and idempotent steps make the broker's
        # later redelivery a no-op. (Celery 6 flips this default; stated so it cannot.)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # A publish to a broker that is down fails within seconds instead of hanging
        # the web request; the sweep publishes the request again later.
        broker_connection_timeout=3,
        task_publish_retry_policy={
            "max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5,
        },
        broker_transport_options=_broker_transport_options(settings),
        result_backend="django-db",
        result_extended=True,
        # No STARTED record: it would cost a result-backend write (and a transaction) per
        # job for what the request row already says (running, started_at, the lease), and
        # the row, not TaskResult, is the truth about a job. TaskResult records each run's
        # end: SUCCESS, FAILURE or RETRY.
        task_track_started=False,
        task_always_eager=settings.task_mode == "eager",
        task_store_eager_result=True,
        task_eager_propagates=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.control_queue,
        task_queues=_task_queues(settings),
        task_create_missing_queues=False,
        task_routes=(EnvironmentRouter(settings),),
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        task_soft_time_limit=settings.task_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds + 30,
        task_annotations={
            provision_task_name(type_name): {"rate_limit": rate}
            for type_name, rate in settings.rate_limits
        },
        beat_schedule=_beat_schedule(settings),
        imports=("provisioning.tasks",),
    )
    # Celery's Django fixup closes every database connection before and after each task
    # unless CELERY_DB_REUSE_MAX is set, whatever CONN_MAX_AGE says: a new PostgreSQL
    # connection per job (~5 ms here). Set past reach, it leaves them to
    # _keep_or_close_connections below, which follows CONN_MAX_AGE and its health checks
    # as Django does per HTTP request (CONN_MAX_AGE 0 still closes after every task).
    # The fixup still closes inherited connections in each prefork child.
    app.conf.update(CELERY_DB_REUSE_MAX=sys.maxsize)
    return app


@task_prerun.connect
@task_postrun.connect
def _keep_or_close_connections(sender=None, **kwargs):
    """Around each task in a worker: close connections that are past CONN_MAX_AGE or broken;
    keep the rest. Not in eager mode, where the task runs inside a web request's."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


def _is_rabbitmq(settings: KrpSettings) -> bool:
    return settings.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


def _task_queues(settings: KrpSettings) -> list[Queue]:
    """One durable queue per environment plus the control queue.

    On RabbitMQ they are quorum queues: replicated and fsynced, so an accepted job survives
    a broker node's loss. Celery detects them (worker_detect_quorum_queues) and then uses
    per-consumer QoS and RabbitMQ's native delayed delivery for countdowns, which routes
    through topic exchanges: hence a topic exchange, whose exact routing keys route as the
    direct one did.
    """
    if not _is_rabbitmq(settings):
        return [Queue(name, routing_key=name) for name in settings.queues]
    exchange = Exchange(settings.control_queue, type="topic", durable=True)
    return [Queue(name, exchange, routing_key=name, durable=True,
                  queue_arguments={"x-queue-type": "quorum"})
            for name in settings.queues]


def _broker_transport_options(settings: KrpSettings) -> dict:
    """Transport options for the broker KRP_BROKER_URL names."""
    options: dict = {
        "visibility_timeout": settings.visibility_timeout_seconds,  # Redis only
        # How kombu retries a publish (the web request waits for at most this).
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    }
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # TCP keepalives find a connection that died without a word (a broker host gone,
        # a NAT dropping an idle flow), so the worker reconnects instead of waiting on a
        # dead socket; a command that timed out is tried once more before it counts as
        # a lost connection.
        options.update(socket_keepalive=True, retry_on_timeout=True)
    return options


def _beat_schedule(settings: KrpSettings) -> dict[str, dict]:
    """The sweep on the control queue; a reconcile of each environment on its own queue."""
    schedule = {
        "krp-sweep": {
            "task": "krp.sweep",
            "schedule": float(settings.sweep_interval_seconds),
            "options": {"queue": settings.control_queue,
                        "expires": float(settings.sweep_interval_seconds)},
        },
    }
    if settings.reconcile_interval_seconds:
        for env in settings.environments:
            schedule[f"krp-reconcile-{env.name}"] = {
                "task": "krp.reconcile",
                "schedule": float(settings.reconcile_interval_seconds),
                "kwargs": {"environment": env.name},
                "options": {"queue": env.queue,
                            "expires": float(settings.reconcile_interval_seconds)},
            }
    return schedule


def _django_krp_settings() -> KrpSettings:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "krp_project.settings")
    from django.conf import settings

    return settings.KRP


try:
    app = create_celery_app(_django_krp_settings())
except SettingsError as exc:
    # As krp_project.settings does for the variables KrpSettings checks: stop before
    # anything serves, naming the variable, without a traceback.
    sys.stderr.write(f"KRP cannot start: {exc}\n")
    raise SystemExit(2) from None
app.set_current()
app.set_default()


def bind_fresh_container(worker_app: KrpCelery, origin: ContainerOrigin) -> CoreContainer:
    """Build this process's own container from the app's settings, wire it (unwiring the
    one it replaces) and bind it to the app."""
    if worker_app._container is not None:
        worker_app._container.unwire()
    container = build_container(worker_app.krp_settings, origin=origin, celery_app=worker_app)
    worker_app.use_container(container)
    return container


def declare_every_queue(worker_app: KrpCelery) -> None:
    """On RabbitMQ, declare every KRP queue, not only those this worker consumes.

    A countdown (not_before, a retry's backoff) travels through RabbitMQ's native delayed
    delivery and comes back through a `#.<queue>` binding that Celery makes when a worker
    starts, for every queue of the app; binding a queue nothing has declared yet fails, and
    a countdown to that queue is then dropped when it ends. So a worker declares them all
    first (a declare of what exists changes nothing). Redis needs nothing of the kind.
    """
    if not worker_app.conf.broker_url.startswith(("amqp", "pyamqp")):
        return
    try:
        with worker_app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in worker_app.amqp.queues.values():
                queue.bind(channel).declare()
    except Exception as exc:  # noqa: BLE001 - the broker's errors vary; the worker goes on
        logger.warning("could not declare KRP's queues (%s: %s); a countdown to a queue no "
                       "worker has started on may wait for the sweep", type(exc).__name__, exc)


@worker_init.connect
def _main_process_container(sender, **kwargs):
    """Once, in the main worker process, after the Django fixup's django.setup() and after
    -Q is applied: build the container that serves -P solo and -P threads (and that prefork
    children replace), and log the fingerprint and what this worker consumes."""
    worker_app = sender.app
    if not isinstance(worker_app, KrpCelery):
        return  # another app's worker in this process (worker_init is not filtered by app)
    container = bind_fresh_container(worker_app, "worker_init")
    settings: KrpSettings = worker_app.krp_settings
    declare_every_queue(worker_app)
    queues = sorted(worker_app.amqp.queues.consume_from or ())
    logger.info(
        "krp worker %s: settings fingerprint %s, task mode %s, queues %s, environments %s",
        sender.hostname,
        settings.fingerprint,
        settings.task_mode,
        ",".join(queues),
        ",".join(
            env.name for env in settings.environments if env.queue in queues
        ) or "(none)",
    )
    logger.debug("krp worker main process runtime %s", container.runtime().describe())


@worker_process_init.connect
def _fresh_container_per_child(**kwargs):
    """Each prefork child builds its own container from the same settings.

    The solo pool sends this signal too, in the main process itself: nothing was forked
    there, so the container built at worker_init serves.
    """
    worker_app = current_app._get_current_object()
    if worker_app.container_crossed_a_fork:
        bind_fresh_container(worker_app, "worker_process_init")


@worker_process_shutdown.connect
def _pool_child_metrics_done(pid=None, **kwargs):
    """A prefork child exiting: its live gauges go with it (its counters stay)."""
    mark_process_dead(pid or os.getpid())
