"""The AWS client map: boto3 sessions and clients per environment, and the identity guard.

This module and the resource provisioners are the only code that imports boto3.
Sessions are built lazily, so a process that forks before touching AWS carries none into
its children, and each container (one per process) holds its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.retries import quota, standard
from urllib3.exceptions import HTTPError as URLLib3Error

from containers.settings import (
    SANDBOX_ACCESS_KEY_ID,
    SANDBOX_SECRET_ACCESS_KEY,
    EnvironmentSettings,
    KrpSettings,
)
from provisioning.budget import CallBudget, CallBudgetExhausted
from provisioning.errors import KrpError, PermanentCloudError, TransientCloudError, WrongAccount
from provisioning.metrics import instruments as metrics
from provisioning.resources import REGISTRY

logger = logging.getLogger(__name__)

# Throttling: the account's rate limits, AWS's weather rather than a failure. "503" is
# S3's SlowDown (or ServiceUnavailable) answering a HEAD, which has no body to name it in.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "503",
        # KRP's own: no token of the environment's shared call budget came in time.
        CallBudgetExhausted.code,
    }
)
# The network between KRP and AWS failed: the endpoint could not be reached, or the
# connection broke or timed out after the call was sent (it may have taken effect: the
# retry adopts what it made, by tag or by the name recorded before the call).
NETWORK_CODES = frozenset({"EndpointConnectionError", "NetworkError"})

# AWS error codes that a later attempt may not see again: throttling and AWS's own faults
# of any service here, and each resource type's own (its service settling a change).
TRANSIENT_CODES = THROTTLING_CODES.union(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "PriorRequestNotComplete",
        "IDPCommunicationError",
    }
).union(*(kind.transient_codes for kind in REGISTRY.values()))


def classify_cloud_error(exc: Exception) -> KrpError:
    """Turn a botocore failure into TransientCloudError or PermanentCloudError.

    The AWS error code and message are kept; credentials never appear in either.
    """
    if isinstance(exc, KrpError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        # A HEAD answer has no body: botocore then gives the HTTP status as the code.
        message = str(error.get("Message") or exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in TRANSIENT_CODES or status >= 500:
            return TransientCloudError(message, code)
        return PermanentCloudError(message, code)
    if isinstance(exc, NoCredentialsError):
        return no_credentials(None)
    if isinstance(exc, EndpointConnectionError | ConnectionError):
        return TransientCloudError(f"AWS endpoint unreachable: {exc}", "EndpointConnectionError")
    if isinstance(exc, HTTPClientError | URLLib3Error):
        # ConnectionClosedError, ReadTimeoutError, ResponseStreamingError, and urllib3's
        # ProtocolError where one escapes botocore: ambiguous, the call may have been done.
        return TransientCloudError(
            f"connection to AWS failed ({type(exc).__name__}), the call may or may not have "
            f"taken effect: {exc}", "NetworkError",
        )
    if isinstance(exc, BotoCoreError):
        return PermanentCloudError(f"{type(exc).__name__}: {exc}", type(exc).__name__)
    raise exc


def no_credentials(environment: str | None) -> PermanentCloudError:
    """boto3's chain found no credentials: say what to set, and where."""
    subject = f"environment {environment!r}" if environment else "this environment"
    return PermanentCloudError(
        f"no AWS credentials for {subject} in this process: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, in the environment of the process that runs "
        "its jobs (its worker; in eager mode the web process and manage.py krp)",
        "no_credentials",
    )


def spends_time(error: KrpError) -> bool:
    """Whether an error is budgeted by time (throttling, the network: retried until the
    request's deadline or KRP_TRANSIENT_BUDGET_SECONDS) rather than by KRP_MAX_ATTEMPTS."""
    return isinstance(error, TransientCloudError) and (
        error.code in THROTTLING_CODES or error.code in NETWORK_CODES
    )


def classify_failure(exc: Exception) -> KrpError:
    """Any failure of a job as a KrpError: AWS's classified, ours an internal_error (logged
    with its traceback, recorded without it)."""
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return TransientCloudError("the attempt ran past its time limit", "time_limit")
    try:
        return classify_cloud_error(exc)
    except Exception:  # noqa: BLE001 - a bug of ours: record it, keep the trace in the log
        logger.exception("unexpected error")
        return PermanentCloudError(f"internal error: {type(exc).__name__}: {exc}",
                                   "internal_error")


class _UnspentQuota(quota.RetryQuota):
    """A retry quota that never runs out: KRP budgets AWS calls itself."""

    def acquire(self, capacity_amount: int) -> bool:
        return True


def _retry_without_quota(client: BaseClient, max_attempts: int) -> None:
    """botocore's standard retries for `client`, minus its per-client retry quota.

    Standard mode stops retrying once a client's quota is spent (500 units; a throttled
    retry costs 5, another retry 14; a call that fails for good gives nothing back). A
    worker's clients live as long as its process, so sustained throttling drains the quota
    and from then on no call is retried at all: a run of a dozen calls at 50% throttling
    then practically never gets through, however long the request's time budget. What the
    quota guards against (a retry storm) KRP's shared per-environment call budget and the
    request's time budget already bound, so the handler is registered again, built as
    botocore builds it (botocore.retries.standard.register_retry_handler) with a quota
    that never runs out.
    """
    service = client.meta.service_model.service_id.hyphenize()
    adapter = standard.RetryEventAdapter()
    throttling = standard.ThrottlingErrorDetector(adapter)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
            retry_backoff=standard.ExponentialBackoff(
                service_name=service, throttling_detector=throttling
            ),
        ),
        retry_event_adapter=adapter,
        retry_quota=standard.RetryQuotaChecker(_UnspentQuota(), throttling),
        service_name=service,
    )
    unique_id = f"retry-config-{service}"
    client.meta.events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    client.meta.events.register(f"needs-retry.{service}", handler.needs_retry,
                                unique_id=unique_id)


class CallTally:
    """AWS calls (each HTTP attempt that went out) by service, counted while `counting()`
    is in force in the calling context and in contexts copied from it (a run's threads):
    a run counts its own calls, not those of other work sharing the process's clients."""

    def __init__(self) -> None:
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, service: str) -> None:
        with self._lock:
            self._calls[service] += 1

    def by_service(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._calls.items()))

    @contextmanager
    def counting(self) -> Iterator[CallTally]:
        token = _current_tally.set(self)
        try:
            yield self
        finally:
            _current_tally.reset(token)


_current_tally: ContextVar[CallTally | None] = ContextVar("krp_call_tally", default=None)


class CloudClients:
    """boto3 clients for each environment: its account (by role), region and endpoint."""

    def __init__(self, settings: KrpSettings, *, max_attempts: int = 3,
                 budget: CallBudget | None = None):
        self._settings = settings
        # botocore's standard mode, deliberately not adaptive: adaptive adds a client-side
        # token bucket per client, i.e. per process, which cannot keep N workers under one
        # account's limit (the shared per-account budget does) and sleeps inside the call,
        # where the soft time limit may strike. Standard retries throttling and the
        # network a few times with capped jittered backoff (without its retry quota: see
        # _retry_without_quota); KRP's own time budget (execution._failed) carries a
        # request through longer weather.
        self._max_attempts = max_attempts
        # Every HTTP attempt of every client built here takes a token first (see
        # provisioning.budget); None: unbudgeted (a test's own look at the cloud).
        self._budget = budget
        self._config = Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=5,
            read_timeout=30,
            user_agent_extra="krp",
        )
        self._sessions: dict[str, boto3.Session] = {}
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self._lock = threading.Lock()

    def client(self, environment: str, service: str) -> Any:
        """A client for `service` in `environment`; built once, shared by threads."""
        key = (environment, service)
        with self._lock:
            if key not in self._clients:
                env = self._settings.environment(environment)
                session = self._session(env)
                client = session.client(
                    service,
                    region_name=env.region,
                    endpoint_url=env.endpoint_url,
                    config=self._config,
                )
                _retry_without_quota(client, self._max_attempts)
                if self._budget is not None:
                    self._take_from_budget(client, environment)
                _count_calls(client, environment, service)
                self._clients[key] = client
            return self._clients[key]

    def _take_from_budget(self, client: BaseClient, environment: str) -> None:
        """Make each HTTP attempt of `client` wait for a token of `environment`'s budget.

        botocore's `before-send` fires once per attempt, retries included, just before the
        request goes on the wire: the one place that sees every call AWS will count.
        """
        budget = self._budget

        def take_token(**_: Any) -> None:
            budget.take(environment)  # returning None lets botocore send the request

        client.meta.events.register("before-send", take_token, unique_id="krp-call-budget")

    def _session(self, env: EnvironmentSettings) -> boto3.Session:
        if env.name not in self._sessions:
            self._sessions[env.name] = self._build_session(env)
        return self._sessions[env.name]

    def _build_session(self, env: EnvironmentSettings) -> boto3.Session:
        source = _base_session(env)
        source_credentials = source.get_credentials()
        if source_credentials is None:
            raise no_credentials(env.name)
        if not env.role_arn:
            return boto3.Session(botocore_session=source, region_name=env.region)

        def create_sts_client(service_name: str, **kwargs: Any) -> BaseClient:
            return source.create_client(
                service_name, region_name=env.region, endpoint_url=env.endpoint_url, **kwargs
            )

        fetcher = AssumeRoleCredentialFetcher(
            client_creator=create_sts_client,
            source_credentials=source_credentials,
            role_arn=env.role_arn,
            extra_args={"RoleSessionName": f"krp-{env.name}"},
        )
        target = _sandbox_session() if env.credentials == "sandbox" else botocore.session.Session()
        # botocore has no public setter for refreshable assumed-role credentials; this is
        # how its own AssumeRoleProvider installs them, and they renew before expiry.
        target._credentials = DeferredRefreshableCredentials(
            method="assume-role", refresh_using=fetcher.fetch_credentials
        )
        return boto3.Session(botocore_session=target, region_name=env.region)


def _count_calls(client: BaseClient, environment: str, service: str) -> None:
    """Count each attempt of `client` in the process's metrics and in the context's
    CallTally, if one is counting, and each throttled answer in the metrics; registered
    after the budget's hook, so an attempt the budget refused is not counted."""

    def count(**_: Any) -> None:
        metrics.aws_call(environment, service)
        tally = _current_tally.get()
        if tally is not None:
            tally.add(service)

    # needs-retry follows every attempt, the last included; the detector is botocore's
    # own, which its standard retry mode uses to back off longer after a throttle.
    throttling = standard.ThrottlingErrorDetector(standard.RetryEventAdapter())

    def count_throttle(**kwargs: Any) -> None:
        if kwargs.get("response") is not None and throttling.is_throttling_error(**kwargs):
            metrics.aws_throttled(environment, service)

    client.meta.events.register("before-send", count, unique_id="krp-call-tally")
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"needs-retry.{service_id}", count_throttle,
                                unique_id="krp-throttle-count")


def _base_session(env: EnvironmentSettings) -> botocore.session.Session:
    """The session whose credentials an environment starts from (and assumes its role with)."""
    if env.credentials == "sandbox":
        session = _sandbox_session()
        session.set_credentials(SANDBOX_ACCESS_KEY_ID, SANDBOX_SECRET_ACCESS_KEY)
        return session
    return botocore.session.get_session()


def _sandbox_session() -> botocore.session.Session:
    """A session blind to this process's AWS configuration: no AWS_PROFILE (a profile that
    exists only on the operator's machine must not break the sandbox, nor lend it a real
    key), no config or shared credentials file."""
    return botocore.session.Session(session_vars={
        "profile": (None, None, None, None),
        "config_file": (None, None, os.devnull, None),
        "credentials_file": (None, None, os.devnull, None),
    })


class IdentityGuard:
    """Confirms, once per process and environment, that the credentials in use resolve to
    that environment's configured account before anything there is changed."""

    def __init__(self, settings: KrpSettings, clients: CloudClients):
        self._settings = settings
        self._clients = clients
        self._confirmed: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def confirm(self, environment: str) -> dict[str, str]:
        """Return the caller identity (account, arn); raise WrongAccount if it is not ours."""
        with self._lock:
            if environment in self._confirmed:
                return self._confirmed[environment]
        env = self._settings.environment(environment)
        try:
            answer = self._clients.client(environment, "sts").get_caller_identity()
        except Exception as exc:  # noqa: BLE001 - classified, never swallowed
            error = classify_cloud_error(exc)
            if env.credentials == "sandbox" and error.code in NETWORK_CODES:
                # The first call of a process: most likely the sandbox is simply not running.
                error = TransientCloudError(
                    f"the sandbox AWS at {env.endpoint_url} is not answering: start it with "
                    "bin/start (or manage.py krp sandbox)", error.code,
                )
            raise error from exc
        identity = {"account": answer["Account"], "arn": answer["Arn"]}
        if identity["account"] != env.account_id:
            logger.error(
                "identity guard refused environment %s: credentials resolve to account %s, "
                "configured account is %s",
                environment,
                identity["account"],
                env.account_id,
            )
            raise WrongAccount(
                f"environment {environment!r} is configured for account {env.account_id}, "
                f"but this worker's credentials resolve to account {identity['account']} "
                f"({identity['arn']}); refusing to change anything there"
            )
        with self._lock:
            self._confirmed[environment] = identity
        logger.info("identity guard: environment %s is account %s", environment, env.account_id)
        return identity
