"""Requests, the inventory of what KRP manages, and the audit trail.

Status fields change only through provisioning.services (conditional updates that write
a RequestEvent); nothing here changes state on save().
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils.functional import cached_property


class RequestStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset(
    {RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELLED, RequestStatus.EXPIRED}
)
IN_FLIGHT_STATUSES = frozenset(
    {RequestStatus.PENDING_APPROVAL, RequestStatus.QUEUED, RequestStatus.RUNNING}
)
IN_FLIGHT_CONSTRAINT = "one_in_flight_request_per_resource"


class RequestAction(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    # Bring a resource made outside KRP under management: read its settings into a spec,
    # tag it, record it in the inventory.
    IMPORT = "import"


class ResourceStatus(models.TextChoices):
    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"
    DRIFTED = "drifted"
    MISSING = "missing"  # gone from the cloud behind KRP's back (found by reconcile)
    # An operator told KRP to stop tracking a missing resource: like deleted, its name is
    # free again and reconcile no longer looks for it.
    FORGOTTEN = "forgotten"


# A resource in one of these is no longer KRP's: its name may be created again.
GONE_STATUSES = frozenset({ResourceStatus.DELETED, ResourceStatus.FORGOTTEN})


class ResourceRequest(models.Model):
    """One ask: create, update or delete one resource in one environment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.CharField(max_length=32)
    resource_type = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    action = models.CharField(
        max_length=16, choices=RequestAction.choices, default=RequestAction.CREATE
    )
    spec = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=32, choices=RequestStatus.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="resource_requests"
    )
    # Indexed by request_team_newest, which leads with it.
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="resource_requests",
                             db_index=False)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    body_hash = models.CharField(max_length=64, blank=True)
    # Deterministic, and recorded before any create call, so an attempt whose outcome is
    # unknown looks the resource up instead of making another.
    physical_name = models.CharField(max_length=255)
    # Set just before the first create call goes to AWS: only then may a later attempt
    # adopt an untagged resource of that name as the one this request made.
    create_issued_at = models.DateTimeField(null=True, blank=True)
    resource = models.ForeignKey(
        "Resource", on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    outputs = models.JSONField(default=dict, blank=True)
    # What it will change (services.plans): made before approval where the environment
    # requires it, else as its run starts; `checked` once a run found the cloud as planned.
    plan = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts that ended in throttling or a network fault: spent against the time budget
    # (KRP_TRANSIENT_BUDGET_SECONDS or the deadline), not against KRP_MAX_ATTEMPTS.
    weather_attempts = models.PositiveIntegerField(default=0)
    # Physical names a failed create may have left in the cloud (its rollback could not
    # finish); reconcile reports them until they are gone, and `reconcile --fix` removes them.
    left_behind = models.JSONField(default=list, blank=True)
    task_id = models.CharField(max_length=255, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The fencing token: bumped on every start and every takeover. A run keeps the one it
    # started with and writes to the cloud only while the row still carries it, so a run
    # that stalled past its lease cannot overwrite what the run that took over did.
    lease_generation = models.PositiveBigIntegerField(default=0)
    # A member's request records the stack it belongs to and the member's key in it.
    stack = models.ForeignKey("Stack", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="member_requests")
    stack_member = models.CharField(max_length=64, blank=True)
    # The lifetime a create, import or update asks for (one or the other, or neither):
    # `ttl` counts from when the request succeeds; `expires_at` is a moment. Applied to
    # the resource when the request succeeds; an update with neither keeps its expiry.
    ttl = models.DurationField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("approve_resourcerequest", "Can approve resource requests")]
        constraints = [
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unique_idempotency_key_per_requester",
            ),
            # One request in flight per resource (waiting, queued or running): the
            # database decides a race between submissions, not a check-then-insert.
            # It subsumes the earlier one-running-request constraint.
            models.UniqueConstraint(
                fields=["environment", "resource_type", "name"],
                condition=Q(status__in=sorted(IN_FLIGHT_STATUSES)),
                name=IN_FLIGHT_CONSTRAINT,
            ),
        ]
        # The lists (newest first, ties by id: selectors.REQUEST_ORDERING) are read a page
        # at a time from an index in that order, at any depth: all requests, a team's, or
        # those of one status. Other filters (environment, type, action) keep a share of
        # the rows large enough that walking the newest-first index finds a page quickly.
        # The target leads with the name, so a list filtered by name alone uses it too.
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="request_status_lease"),
            models.Index(fields=["status", "published_at"], name="request_status_published"),
            models.Index(fields=["name", "environment", "resource_type"],
                         name="request_name_target"),
            models.Index(fields=["-created_at", "-id"], name="request_newest"),
            models.Index(fields=["team", "-created_at", "-id"], name="request_team_newest"),
            models.Index(fields=["status", "-created_at", "-id"], name="request_status_newest"),
            # A team's requests in flight where it has a quota (services.quotas counts
            # them at every submit it covers).
            models.Index(fields=["team", "environment", "resource_type"],
                         condition=Q(status__in=sorted(IN_FLIGHT_STATUSES)),
                         name="request_team_in_flight"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type} {self.environment}/{self.name}"

    @cached_property
    def task_result(self):
        """This request's latest run as django-celery-results recorded it, if it has one
        (looked up once per instance and again after refresh_from_db; a request just
        recorded sets it to None, as it has not run)."""
        from django_celery_results.models import TaskResult

        return TaskResult.objects.filter(task_id=self.task_id).first()

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("task_result", None)
        super().refresh_from_db(*args, **kwargs)

    @property
    def attempts_spent(self) -> int:
        """Attempts counted against KRP_MAX_ATTEMPTS: the weather's are budgeted by time."""
        return self.attempts - self.weather_attempts

    @property
    def error(self) -> dict[str, str] | None:
        if not self.error_code:
            return None
        return {"code": self.error_code, "message": self.error_message}


class Resource(models.Model):
    """The inventory: one resource KRP manages (or managed) in one environment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.CharField(max_length=32)
    resource_type = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    physical_name = models.CharField(max_length=255)
    physical_id = models.CharField(max_length=1024)
    arn = models.CharField(max_length=2048)
    spec = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=ResourceStatus.choices, default=ResourceStatus.ACTIVE
    )
    # Indexed by resource_team_listing, which leads with it.
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="resources",
                             db_index=False)
    created_by_request = models.ForeignKey(
        ResourceRequest, on_delete=models.PROTECT, related_name="created_resources"
    )
    last_verified_at = models.DateTimeField(null=True, blank=True)
    # When reconcile last described its settings in full (not only listed it with its tags):
    # each run deep-checks those whose check is oldest (never first).
    last_deep_checked_at = models.DateTimeField(null=True, blank=True)
    # When it expires: the sweep then files an ordinary delete request for it (as
    # "krp-expiry"). None: it lives until someone deletes it.
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the sweep next looks at it: its next warning, its expiry, or a retry of an
    # expiry delete that was refused (expiry_problem says why). None: nothing to do.
    expiry_check_at = models.DateTimeField(null=True, blank=True)
    # The warnings sent for the current expiry, oldest first: {"before", "left",
    # "sent_at"}. Each threshold is sent at most once; extending the expiry clears them.
    expiry_warnings = models.JSONField(default=list, blank=True)
    expiry_problem = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["environment", "resource_type", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "resource_type", "name"],
                condition=~Q(status__in=sorted(GONE_STATUSES)),
                name="unique_live_resource",
            ),
        ]
        # The inventory list's order (selectors.RESOURCE_ORDERING), read a page at a time:
        # all resources, or a team's.
        indexes = [
            models.Index(fields=["arn"], name="resource_arn"),
            models.Index(fields=["environment", "resource_type", "name", "id"],
                         name="resource_listing"),
            models.Index(fields=["team", "environment", "resource_type", "name", "id"],
                         name="resource_team_listing"),
            # The sweep's expiry step reads the due ones a batch at a time; the admin's
            # "expiring" filter reads by expires_at. Most resources have neither.
            models.Index(fields=["expiry_check_at"], name="resource_expiry_due",
                         condition=Q(expiry_check_at__isnull=False)),
            models.Index(fields=["expires_at"], name="resource_expires",
                         condition=Q(expires_at__isnull=False)),
        ]
        permissions = [("forget_resource", "Can forget resources gone from the cloud")]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.environment}/{self.name}"


class PeriodicRun(models.Model):
    """When a periodic job (the sweep) last ran to its end, in any process: readiness and
    `krp check` read it to tell whether anything consumes the control queue."""

    name = models.CharField(max_length=64, primary_key=True)
    last_run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} last ran {self.last_run_at:%Y-%m-%d %H:%M:%S}"


class AuditEvent(models.Model):
    """Who moved something from which status to which, and why. Append-only: an event is
    never changed or deleted once written."""

    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    actor = models.CharField(max_length=255)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} by {self.actor}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError(f"{self._meta.verbose_name_plural} are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError(f"{self._meta.verbose_name_plural} are append-only")


class RequestEvent(AuditEvent):
    """The audit trail of a request."""

    request = models.ForeignKey(ResourceRequest, on_delete=models.PROTECT, related_name="events")

    class Meta(AuditEvent.Meta):
        pass


class FindingKind(models.TextChoices):
    MISSING = "missing"  # KRP believes it live; the cloud has no such resource
    DRIFTED = "drifted"  # its tags or settings differ from what KRP applied
    ORPHAN = "orphan"  # tagged krp:managed-by=krp in the account; the inventory knows nothing
    # Still in the cloud under a physical name a failed request recorded as left behind.
    LEFT_BEHIND = "left_behind"
    # Could not be checked (or its fix failed outright): the cloud's error; the run went on.
    ERROR = "error"


class ReconcileRun(models.Model):
    """One comparison of an environment's inventory with its cloud account."""

    class Status(models.TextChoices):
        RUNNING = "running"
        CLEAN = "clean"
        FINDINGS = "findings"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.CharField(max_length=32)
    fix = models.BooleanField(default=False)
    delete_orphans = models.BooleanField(default=False)
    triggered_by = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # Inventory resources checked for existence (and tags, where the listing gives them),
    # and those of them whose settings were described in full this run.
    checked = models.PositiveIntegerField(default=0)
    deep_checked = models.PositiveIntegerField(default=0)
    finding_count = models.PositiveIntegerField(default=0)
    # AWS calls the run made (each HTTP attempt), by service: {"s3": 120, ...}.
    aws_calls = models.JSONField(default=dict, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        # Django hands datetimes back aware and in UTC (USE_TZ).
        return (f"reconcile {self.environment} {self.started_at:%Y-%m-%d %H:%M:%S} UTC "
                f"({self.status})")


class Finding(models.Model):
    """One difference between the inventory and the cloud, and what was done about it."""

    run = models.ForeignKey(ReconcileRun, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=16, choices=FindingKind.choices)
    resource = models.ForeignKey(
        Resource, on_delete=models.SET_NULL, null=True, blank=True, related_name="findings"
    )
    resource_type = models.CharField(max_length=32)
    arn = models.CharField(max_length=2048)
    details = models.JSONField(default=dict, blank=True)
    action_taken = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "kind", "arn"]

    def __str__(self) -> str:
        return f"{self.kind} {self.resource_type} {self.arn}"

    @property
    def resolved(self) -> bool:
        return bool(self.action_taken)


class StackStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval"
    RUNNING = "running"  # its members are being created, a step at a time
    SUCCEEDED = "succeeded"  # every member created
    FAILED = "failed"  # a member failed for good; what remains is listed in its error
    ROLLING_BACK = "rolling_back"  # deleting the members a failed run created
    ROLLED_BACK = "rolled_back"  # a failed run, undone: nothing of it is left
    CANCELLED = "cancelled"  # withdrawn before it started
    DELETING = "deleting"  # tearing down its members, dependents first
    DELETED = "deleted"


class StackAction(models.TextChoices):
    """What a stack does, or waits for approval to do."""

    CREATE = "create"
    DELETE = "delete"


# A stack in one of these holds (or may hold) resources: its name is taken.
LIVE_STACK_STATUSES = frozenset({
    StackStatus.PENDING_APPROVAL, StackStatus.RUNNING, StackStatus.SUCCEEDED,
    StackStatus.FAILED, StackStatus.ROLLING_BACK, StackStatus.DELETING,
})
# Work is under way: the chord's callback (or the sweep) moves it on.
ACTIVE_STACK_STATUSES = frozenset({
    StackStatus.RUNNING, StackStatus.ROLLING_BACK, StackStatus.DELETING,
})


class Blueprint(models.Model):
    """A stack document a platform team publishes for any team to instantiate by name."""

    name = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BlueprintVersion(models.Model):
    """One version of a blueprint: its stack document, with {"param": NAME} placeholders,
    and the JSON Schema of its parameters. Immutable once a stack has used it."""

    blueprint = models.ForeignKey(Blueprint, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    document = models.JSONField()
    parameters_schema = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["blueprint", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["blueprint", "version"],
                                    name="unique_blueprint_version"),
        ]

    def __str__(self) -> str:
        return f"{self.blueprint.name} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and self.stacks.exists():
            raise ValueError(f"{self} is used by stacks and cannot change; publish a new "
                             "version instead")
        super().save(*args, **kwargs)


class Stack(models.Model):
    """Several resources asked for together, wired by references, created in dependency
    order as one request and rolled back as one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    environment = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=32, choices=StackStatus.choices)
    # What it is doing or waits for approval to do: create its members, or delete them.
    action = models.CharField(max_length=16, choices=StackAction.choices,
                              default=StackAction.CREATE)
    # The stack document as submitted (a blueprint's, with its parameters filled in).
    document = models.JSONField(default=dict, blank=True)
    rollback = models.BooleanField(default=True)
    blueprint = models.ForeignKey(BlueprintVersion, on_delete=models.PROTECT, null=True,
                                  blank=True, related_name="stacks")
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="stacks")
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="stacks")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="approved_stacks")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    body_hash = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Its lifetime, as its document asks (one or the other, or neither): `ttl` counts from
    # when it succeeds (or fails holding members), then sets `expires_at`. Its members have
    # no expiry of their own: at expires_at the sweep deletes the stack as a whole (as
    # "krp-expiry"). The expiry_* fields mirror the Resource's.
    ttl = models.DurationField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    expiry_check_at = models.DateTimeField(null=True, blank=True)
    expiry_warnings = models.JSONField(default=list, blank=True)
    expiry_problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unique_stack_idempotency_key_per_requester",
            ),
            models.UniqueConstraint(
                fields=["environment", "name"],
                condition=Q(status__in=sorted(LIVE_STACK_STATUSES)),
                name="unique_live_stack",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="stack_newest"),
            models.Index(fields=["team", "-created_at", "-id"], name="stack_team_newest"),
            models.Index(fields=["status", "updated_at"], name="stack_status_updated"),
            # As the Resource's: the sweep reads the due ones a batch at a time.
            models.Index(fields=["expiry_check_at"], name="stack_expiry_due",
                         condition=Q(expiry_check_at__isnull=False)),
            models.Index(fields=["expires_at"], name="stack_expires",
                         condition=Q(expires_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"stack {self.environment}/{self.name}"

    @property
    def error(self) -> dict[str, str] | None:
        if not self.error_code:
            return None
        return {"code": self.error_code, "message": self.error_message}


class StackMember(models.Model):
    """One resource of a stack: what it asks for (its spec may hold {"ref": ...}), what it
    waits for, and the requests that create and delete it."""

    class State(models.TextChoices):
        WAITING = "waiting"  # not recorded yet: what it needs has not all succeeded
        RECORDED = "recorded"  # its create request is recorded: that request's status tells
        CANCELLED = "cancelled"  # never started: another member failed first
        REFUSED = "refused"  # its request could not be recorded (error_* say why)

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="members")
    key = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    spec = models.JSONField(default=dict, blank=True)  # as written, references unresolved
    tags = models.JSONField(default=dict, blank=True)
    depends_on = models.JSONField(default=list, blank=True)  # member keys
    # Its place in a dependency order: every member comes after those it depends on.
    position = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    request = models.ForeignKey(ResourceRequest, on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")
    delete_request = models.ForeignKey(ResourceRequest, on_delete=models.PROTECT, null=True,
                                       blank=True, related_name="+")

    class Meta:
        ordering = ["stack", "position", "key"]
        constraints = [
            models.UniqueConstraint(fields=["stack", "key"], name="unique_stack_member"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.resource_type} {self.name})"


class StackEvent(AuditEvent):
    """The audit trail of a stack."""

    stack = models.ForeignKey(Stack, on_delete=models.PROTECT, related_name="events")

    class Meta(AuditEvent.Meta):
        pass


class DryRun(models.Model):
    """The audit trail of a dry run: who asked what would change, and what they were shown.
    A dry run records nothing else."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="dry_runs")
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="dry_runs")
    environment = models.CharField(max_length=32)
    # A request's type, name and action; a stack's name with resource_type "stack".
    resource_type = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    action = models.CharField(max_length=16)
    lines = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"dry run of {self.action} {self.resource_type} {self.environment}/{self.name}"


class Quota(models.Model):
    """How much one team may hold in an environment: live resources of a type (those being
    created count) and requests in flight. Set by operators; enforced when a request or a
    stack is submitted (services.quotas).

    A blank environment or resource type means any: a team's quota of 20 resources of any
    type in prod. Every quota that matches a request applies to it.
    """

    team = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="quotas")
    environment = models.CharField(max_length=32, blank=True,
                                   help_text="blank: every environment")
    resource_type = models.CharField(max_length=32, blank=True,
                                     help_text="blank: every resource type")
    max_live = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="resources not deleted, and those being created; blank: no limit")
    max_in_flight = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="requests waiting, queued or running (any action); blank: no limit")
    note = models.TextField(blank=True)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                               null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team", "environment", "resource_type", "id"]
        constraints = [
            # Also the index a submission finds its team's quotas by.
            models.UniqueConstraint(fields=["team", "environment", "resource_type"],
                                    name="unique_quota"),
        ]

    def __str__(self) -> str:
        return (f"team {self.team.name}'s quota for {self.resource_type or 'any type'} in "
                f"{self.environment or 'any environment'}")


class ResourceEvent(AuditEvent):
    """Who changed a resource's lifetime outside a request, and how: an extension
    (to_status "extended"), each expiry warning ("warned") and an expiry delete that could
    not be filed yet ("expiry_refused"). Its status does not change: from/to say what
    happened."""

    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="events")

    class Meta(AuditEvent.Meta):
        pass


class NotificationEvent(models.TextChoices):
    """What a team may be told about (a channel subscribes to some of them)."""

    SUBMITTED = "submitted"
    PENDING_APPROVAL = "pending_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRING = "expiring"  # a resource's time to live runs out soon
    DRIFT_FOUND = "drift_found"  # reconcile found the team's resources drifted or missing


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook"
    EMAIL = "email"


class NotificationChannel(models.Model):
    """Where a team is told about its requests and resources: a webhook (signed POSTs to
    `target`, an http(s) URL) or an email address. A channel that keeps failing is
    disabled (services.deliveries) until someone of the team enables it again."""

    team = models.ForeignKey(Group, on_delete=models.CASCADE,
                             related_name="notification_channels")
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    target = models.CharField(max_length=2048)
    events = models.JSONField(default=list)
    # The HMAC key of a webhook's signatures. Shown once, when the channel is made; never
    # in a form, a list, an API answer, a task or a log line after that.
    secret = models.CharField(max_length=128, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "kind", "target", "id"]
        # The fan-out's one query: a team's enabled channels.
        indexes = [models.Index(fields=["team", "enabled"], name="channel_team_enabled")]

    def __str__(self) -> str:
        # The target as given; a webhook URL never carries credentials (refused on entry).
        return f"{self.kind} {self.target}"


class Delivery(models.Model):
    """One event sent (or being sent) to one channel: the log operators and the team read."""

    class Status(models.TextChoices):
        PENDING = "pending"  # not yet sent, or being retried
        DELIVERED = "delivered"
        FAILED = "failed"  # refused for good (a 4xx, a bad address): not retried
        GAVE_UP = "gave_up"  # every attempt failed, or the channel was disabled meanwhile

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE,
                                related_name="deliveries")
    event = models.CharField(max_length=32, choices=NotificationEvent.choices)
    # The body as sent (no secrets: requests and resources only carry what the API shows).
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # When its next attempt is due (while pending): a pending delivery whose attempt was
    # due long ago lost its message (a failed publish, a broker's loss), and the sweep
    # publishes it again.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["channel", "-created_at"], name="delivery_channel_newest"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.channel} ({self.status})"
