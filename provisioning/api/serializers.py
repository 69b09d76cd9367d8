"""Shapes of the API's input and output. Validation of meaning lives in the services;
these only check that the body has the right shape."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField

from containers.durations import EXAMPLE as DURATION_EXAMPLE
from containers.durations import format_duration
from provisioning import selectors
from provisioning.models import (
    Blueprint,
    Quota,
    RequestAction,
    RequestEvent,
    Resource,
    ResourceRequest,
    Stack,
    StackEvent,
    StackMember,
)
from provisioning.services import plans
from provisioning.services.quotas import use_of

TAG_VALUE = serializers.CharField(allow_blank=True, max_length=256)
# DRF would say 'Expected a dictionary of items but got type "list"': Python's words.
NOT_AN_OBJECT = {"not_a_dict": "must be a JSON object"}


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, naming them."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = {
            name: ["is not a field of this request"]
            for name in sorted(set(data) - set(self.fields))
        } if isinstance(data, dict) else {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**unknown, **exc.detail}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def fields_that_passed(self) -> dict[str, Any]:
        """After a failed is_valid(): each field's value where its own shape is right, and
        None where it is not, so that what the fields mean can be checked as well and every
        problem reported in one answer."""
        values: dict[str, Any] = {}
        for name, field in self.fields.items():
            values[name] = None
            if name in self.errors:
                continue
            try:
                values[name] = field.run_validation(field.get_value(self.initial_data))
            except (serializers.ValidationError, SkipField):
                pass
        return values


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that says its zone. DRF would read a naive one in the server's zone
    (UTC) without a word; the client may have meant another, so it is refused instead."""

    default_error_messages = {
        "naive": "must include a time zone (e.g. 2026-12-01T09:00:00Z or +09:00)",
    }

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class RequestCreateSerializer(StrictSerializer):
    environment = serializers.CharField(max_length=64)
    resource_type = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=128)
    spec = serializers.DictField(required=False, default=dict, error_messages=NOT_AN_OBJECT)
    action = serializers.ChoiceField(choices=RequestAction.choices, default=RequestAction.CREATE)
    tags = serializers.DictField(child=TAG_VALUE, required=False, allow_null=True, default=None,
                                 error_messages=NOT_AN_OBJECT)
    team = serializers.CharField(required=False, max_length=150, allow_null=True, default=None)
    not_before = AwareDateTimeField(required=False, allow_null=True, default=None)
    deadline = AwareDateTimeField(required=False, allow_null=True, default=None)
    physical_name = serializers.CharField(
        required=False, max_length=2048, allow_null=True, default=None,
        help_text="import only: the existing resource's name in AWS, or its ARN")
    ttl = serializers.CharField(
        required=False, max_length=32, allow_null=True, default=None,
        help_text=f"create, import or update: how long the resource lives once this request "
                  f"succeeds, {DURATION_EXAMPLE}; at most the environment's max_ttl. Not "
                  "with expires_at")
    expires_at = AwareDateTimeField(
        required=False, allow_null=True, default=None,
        help_text="create, import or update: when the resource expires (then an ordinary "
                  "delete request is filed for it). Not with ttl")


class ExtendSerializer(StrictSerializer):
    """A resource's or a stack's new expiry: ttl from now, or a moment; within the
    environment's max_ttl from now."""

    ttl = serializers.CharField(required=False, max_length=32, allow_null=True, default=None,
                                help_text=DURATION_EXAMPLE)
    expires_at = AwareDateTimeField(required=False, allow_null=True, default=None)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable machine-readable code")
    message = serializers.CharField(help_text="what was wrong, in plain words")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="offending field (dotted path, e.g. spec.versioning) -> problems",
    )


class QuotaExcessSerializer(serializers.Serializer):
    team = serializers.CharField()
    environment = serializers.CharField(allow_null=True, help_text="null: any environment")
    resource_type = serializers.CharField(allow_null=True, help_text="null: any type")
    limit = serializers.ChoiceField(choices=["max_live", "max_in_flight"])
    max = serializers.IntegerField()
    live = serializers.IntegerField(help_text="resources not deleted")
    being_created = serializers.IntegerField(
        help_text="create and import requests in flight, and stack members yet to record")
    in_flight = serializers.IntegerField()
    adding = serializers.IntegerField(help_text="what the refused submission would add")
    members = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="a stack's members that do not fit")


class QuotaErrorDetailSerializer(ErrorDetailSerializer):
    quota = QuotaExcessSerializer(
        many=True, required=False,
        help_text="only with code quota_exceeded: each limit the submission would pass")


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers has this shape."""

    error = ErrorDetailSerializer()


class RequestErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class RequestEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RequestEvent
        fields = ["from_status", "to_status", "actor", "message", "created_at"]


class RequestSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")
    requested_by = serializers.CharField(source="requested_by.get_username")
    error = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    resource = serializers.UUIDField(source="resource_id", allow_null=True)
    stack = serializers.UUIDField(source="stack_id", allow_null=True,
                                  help_text="the stack it was made for, if any")
    stack_member = serializers.CharField(help_text="its member's key in that stack")
    ttl = serializers.SerializerMethodField(
        help_text="the lifetime it asked for, counted from when it succeeds (e.g. 7d)")

    class Meta:
        model = ResourceRequest
        fields = [
            "id", "url", "status", "environment", "resource_type", "name", "action", "spec",
            "tags", "team", "requested_by", "outputs", "error", "attempts", "task_id",
            "resource", "stack", "stack_member", "not_before", "deadline", "ttl",
            "expires_at", "created_at", "queued_at", "started_at", "finished_at",
        ]

    def get_ttl(self, request: ResourceRequest) -> str | None:
        return format_duration(request.ttl) if request.ttl is not None else None

    @extend_schema_field(RequestErrorSerializer(allow_null=True))
    def get_error(self, request: ResourceRequest) -> dict[str, str] | None:
        return request.error

    def get_url(self, request: ResourceRequest) -> str:
        return reverse("api:request-detail", args=[request.pk])


class PlanSerializer(serializers.Serializer):
    """What a request will change in the cloud, field by field."""

    action = serializers.CharField(allow_null=True)
    lines = serializers.ListField(child=serializers.CharField(),
                                  help_text="the plan as a person reads it")
    changes = serializers.ListField(
        child=serializers.DictField(),
        help_text='each change: {"path", "from"?, "to"?} (no "from": added; no "to": removed)')
    no_changes = serializers.BooleanField()
    missing = serializers.BooleanField(help_text="the resource is not in the cloud")
    planned_at = serializers.CharField()
    approved = serializers.BooleanField(
        required=False, help_text="an approver approved this plan")
    checked = serializers.BooleanField(
        required=False, help_text="a run found the cloud as planned and applied it")
    error = RequestErrorSerializer(required=False, help_text="why no plan could be made")


class RequestDetailSerializer(RequestSerializer):
    events = RequestEventSerializer(many=True, read_only=True)
    plan = serializers.SerializerMethodField(
        help_text="what it will change; null until a worker of its environment planned it")
    task_status = serializers.SerializerMethodField()
    # Physical names a failed create may have left in the cloud (reconcile reports them).
    left_behind = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(RequestSerializer.Meta):
        fields = [*RequestSerializer.Meta.fields, "task_status", "plan", "events",
                  "left_behind"]

    @extend_schema_field(PlanSerializer(allow_null=True))
    def get_plan(self, request: ResourceRequest) -> dict[str, Any] | None:
        return plans.public(request.plan)

    def get_task_status(self, request: ResourceRequest) -> str | None:
        """The latest run's state as django-celery-results recorded it (null before any)."""
        result = request.task_result
        return result.status if result else None


class ExpiryWarningSerializer(serializers.Serializer):
    before = serializers.CharField(help_text="the warning's threshold, e.g. 2h")
    left = serializers.CharField(help_text="the time left when it was sent")
    sent_at = serializers.DateTimeField()


class ResourceSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name")
    created_by_request = serializers.UUIDField(source="created_by_request_id")
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="when an ordinary delete request is filed for it; null: "
        "it lives until deleted. POST .../extend/ to change it")
    expiry_warnings = ExpiryWarningSerializer(
        many=True, help_text="the warnings sent to its owners for this expiry")
    expiry_problem = serializers.CharField(
        help_text="why its expiry delete could not be filed yet (tried again each sweep)")

    class Meta:
        model = Resource
        fields = [
            "id", "environment", "resource_type", "name", "physical_name", "physical_id",
            "arn", "status", "spec", "tags", "outputs", "team", "created_by_request",
            "expires_at", "expiry_warnings", "expiry_problem",
            "last_verified_at", "created_at", "updated_at", "deleted_at",
        ]


class EnvironmentSerializer(serializers.Serializer):
    name = serializers.CharField()
    account_id = serializers.CharField()
    region = serializers.CharField()
    requires_approval = serializers.BooleanField()
    auto_approve_within_quota = serializers.BooleanField(
        help_text="a create within its team's quota is queued at once; beyond it, it waits "
                  "for approval")
    max_ttl = serializers.SerializerMethodField(
        help_text="the longest ttl a resource may have there (null: unbounded)")
    requires_ttl = serializers.BooleanField(
        help_text="a create or import there must give a ttl or expires_at")

    def get_max_ttl(self, environment) -> str | None:
        return format_duration(environment.max_ttl) if environment.max_ttl else None


class QuotaSerializer(serializers.ModelSerializer):
    """A quota of a team, with what the team holds under it now."""

    team = serializers.CharField(source="team.name")
    environment = serializers.SerializerMethodField(help_text="null: any environment")
    resource_type = serializers.SerializerMethodField(help_text="null: any resource type")
    live = serializers.SerializerMethodField(
        help_text="what counts against max_live: resources not deleted, and those being "
                  "created")
    being_created = serializers.SerializerMethodField(
        help_text="of live: create and import requests in flight, stack members yet to "
                  "record")
    in_flight = serializers.SerializerMethodField(
        help_text="requests waiting, queued or running (any action)")

    class Meta:
        model = Quota
        fields = ["team", "environment", "resource_type", "max_live", "live",
                  "being_created", "max_in_flight", "in_flight"]

    def get_environment(self, quota: Quota) -> str | None:
        return quota.environment or None

    def get_resource_type(self, quota: Quota) -> str | None:
        return quota.resource_type or None

    def get_live(self, quota: Quota) -> int:
        return use_of(quota).held

    def get_being_created(self, quota: Quota) -> int:
        return use_of(quota).being_created

    def get_in_flight(self, quota: Quota) -> int:
        return use_of(quota).in_flight


class ResourceTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    max_name_length = serializers.IntegerField()
    spec_schema = serializers.DictField(help_text="JSON Schema of the spec")
    outputs = serializers.DictField(
        child=serializers.CharField(),
        help_text='what a create records, by name: a stack member refers to one with '
                  '{"ref": "<member>.<output>"}')


# Stacks ---------------------------------------------------------------------------------


class StackMemberSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="waiting, cancelled or refused before it has a request; then its create "
                  "request's status; once it is being deleted: deleting, deleted or "
                  "delete_failed")
    spec = serializers.JSONField(help_text='as written: references ({"ref": ...}) unresolved')
    resolved_spec = serializers.SerializerMethodField(
        help_text="what its create request recorded, references resolved (null before)")
    request = serializers.UUIDField(source="request_id", allow_null=True)
    delete_request = serializers.UUIDField(source="delete_request_id", allow_null=True)
    resource = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = StackMember
        fields = ["key", "resource_type", "name", "status", "depends_on", "spec",
                  "resolved_spec", "tags", "request", "delete_request", "resource", "outputs",
                  "error"]

    def get_status(self, member: StackMember) -> str:
        return selectors.member_status(member)

    def get_resolved_spec(self, member: StackMember) -> dict[str, Any] | None:
        return member.request.spec if member.request is not None else None

    def get_resource(self, member: StackMember) -> str | None:
        resource_id = member.request.resource_id if member.request is not None else None
        return str(resource_id) if resource_id else None

    def get_outputs(self, member: StackMember) -> dict[str, Any]:
        return member.request.outputs if member.request is not None else {}

    @extend_schema_field(RequestErrorSerializer(allow_null=True))
    def get_error(self, member: StackMember) -> dict[str, str] | None:
        if member.error_code:
            return {"code": member.error_code, "message": member.error_message}
        for request in (member.delete_request, member.request):
            if request is not None and request.error_code and request.status != "succeeded":
                return request.error
        return None


class StackEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = StackEvent
        fields = ["from_status", "to_status", "actor", "message", "created_at"]


class StackSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    team = serializers.CharField(source="team.name")
    requested_by = serializers.CharField(source="requested_by.get_username")
    approved_by = serializers.SerializerMethodField()
    blueprint = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    ttl = serializers.SerializerMethodField(
        help_text="the time to live it asked for, counted from when it succeeded")
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="when the stack is deleted as a whole (its members have "
        "no expiry of their own); null: it lives until deleted (or its ttl has not started). "
        "POST .../extend/ to change it")
    expiry_warnings = ExpiryWarningSerializer(
        many=True, help_text="the warnings sent to its team for this expiry")
    expiry_problem = serializers.CharField(
        help_text="why its expiry deletion could not be asked for yet (tried each sweep)")

    class Meta:
        model = Stack
        fields = ["id", "url", "status", "action", "environment", "name", "rollback", "team",
                  "requested_by", "approved_by", "blueprint", "parameters", "error",
                  "ttl", "expires_at", "expiry_warnings", "expiry_problem",
                  "created_at", "started_at", "finished_at"]

    def get_ttl(self, stack: Stack) -> str | None:
        return format_duration(stack.ttl) if stack.ttl is not None else None

    def get_url(self, stack: Stack) -> str:
        return reverse("api:stack-detail", args=[stack.pk])

    def get_approved_by(self, stack: Stack) -> str | None:
        return stack.approved_by.get_username() if stack.approved_by else None

    @extend_schema_field({"type": "object", "nullable": True, "properties": {
        "name": {"type": "string"}, "version": {"type": "integer"}}})
    def get_blueprint(self, stack: Stack) -> dict[str, Any] | None:
        version = stack.blueprint
        return {"name": version.blueprint.name, "version": version.version} if version else None

    @extend_schema_field(RequestErrorSerializer(allow_null=True))
    def get_error(self, stack: Stack) -> dict[str, str] | None:
        return stack.error


class StackDetailSerializer(StackSerializer):
    members = StackMemberSerializer(many=True, read_only=True)
    events = StackEventSerializer(many=True, read_only=True)
    document = serializers.JSONField(help_text="the stack document as submitted")

    class Meta(StackSerializer.Meta):
        fields = [*StackSerializer.Meta.fields, "document", "members", "events"]


class StackMemberInputSerializer(serializers.Serializer):
    resource_type = serializers.CharField(help_text="a type of GET /api/v1/resource-types/")
    name = serializers.CharField(required=False,
                                 help_text="its KRP name; default <stack name>-<member key>")
    spec = serializers.DictField(
        required=False, help_text='its type\'s spec; {"ref": "<member>.<output>"} wherever a '
        "string goes takes another member's output once that member has succeeded")
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=256),
                                 required=False)


STACK_TTL = (f"how long the stack lives once it succeeds, {DURATION_EXAMPLE}; at most the "
             "environment's max_ttl (required where it requires a ttl). Not with expires_at")
STACK_EXPIRES_AT = ("when the stack expires (then it is deleted as a whole, as "
                    "krp-expiry). Not with ttl")


class StackDocumentSerializer(serializers.Serializer):
    """A stack: its members by key (at most 25), created in dependency order."""

    environment = serializers.CharField()
    name = serializers.CharField(help_text="3 to 30 characters: lowercase letters, digits "
                                 "and dashes")
    members = serializers.DictField(child=StackMemberInputSerializer())
    rollback = serializers.BooleanField(
        required=False, default=True,
        help_text="when a member fails for good, delete the members already created")
    team = serializers.CharField(required=False, help_text="needed if you are in several")
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=256),
                                 required=False, help_text="tags for every member")
    ttl = serializers.CharField(required=False, help_text=STACK_TTL)
    expires_at = serializers.DateTimeField(required=False, help_text=STACK_EXPIRES_AT)


class BlueprintInstanceSerializer(serializers.Serializer):
    """A stack made from a published blueprint (GET /api/v1/blueprints/)."""

    blueprint = serializers.CharField()
    version = serializers.IntegerField(required=False, help_text="default: the latest")
    environment = serializers.CharField()
    name = serializers.CharField()
    parameters = serializers.DictField(required=False,
                                       help_text="checked against the version's schema")
    team = serializers.CharField(required=False)
    ttl = serializers.CharField(required=False, help_text=STACK_TTL)
    expires_at = serializers.DateTimeField(required=False, help_text=STACK_EXPIRES_AT)


class BlueprintVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    parameters_schema = serializers.DictField(help_text="JSON Schema of its parameters")
    members = serializers.DictField(child=serializers.CharField(),
                                    help_text="member key -> resource type")
    document = serializers.DictField(help_text='its members, with {"param": ...} placeholders')
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()


class BlueprintSerializer(serializers.ModelSerializer):
    latest_version = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    class Meta:
        model = Blueprint
        fields = ["name", "title", "description", "latest_version", "versions"]

    def get_latest_version(self, blueprint: Blueprint) -> int | None:
        versions = list(blueprint.versions.all())
        return versions[0].version if versions else None

    @extend_schema_field(BlueprintVersionSerializer(many=True))
    def get_versions(self, blueprint: Blueprint) -> list[dict[str, Any]]:
        return [
            {"version": v.version, "parameters_schema": v.parameters_schema,
             "members": {key: member.get("resource_type")
                         for key, member in (v.document.get("members") or {}).items()},
             "document": v.document, "notes": v.notes, "created_at": v.created_at}
            for v in blueprint.versions.all()
        ]


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    # database and broker: "ok" or "down: <why>"; sweep: {last_run, age_seconds,
    # interval_seconds, ok, status}
    checks = serializers.DictField(child=serializers.JSONField(), required=False)


class RequestDryRunSerializer(serializers.Serializer):
    """What a request would change; nothing was recorded."""

    dry_run = serializers.BooleanField()
    environment = serializers.CharField()
    resource_type = serializers.CharField()
    name = serializers.CharField()
    action = serializers.CharField()
    team = serializers.CharField()
    plan = PlanSerializer()


class StackMemberDryRunSerializer(serializers.Serializer):
    key = serializers.CharField()
    resource_type = serializers.CharField()
    name = serializers.CharField()
    depends_on = serializers.ListField(child=serializers.CharField())
    plan = PlanSerializer()


class StackDryRunSerializer(serializers.Serializer):
    """What a stack's members would make, in the order they would run; nothing recorded."""

    dry_run = serializers.BooleanField()
    environment = serializers.CharField()
    name = serializers.CharField()
    team = serializers.CharField()
    members = StackMemberDryRunSerializer(many=True)
