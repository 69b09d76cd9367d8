"""Stacks: find them, read their members and their story; approve, cancel, retry, delete.

A stack's page is read-only, as a request's: its document as submitted, its expiry (its
members have none of their own: `krp stack extend` or the API changes it), its members in
dependency order (each with its status, what it depends on, and links to the requests
that made and deleted it and to its resource), and its events. The buttons call the
stack services, under the same rules as the API; a refusal comes back as a message.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from provisioning import selectors
from provisioning.admin.base import (
    EnvironmentFilter,
    EventInline,
    ReadOnlyAdmin,
    ReadOnlyInline,
    SearchById,
)
from provisioning.admin.buttons import OperatorAction, OperatorButtons
from provisioning.admin.display import (
    NOTHING,
    changelist_link,
    error_summary,
    link,
    status_badge,
    warnings_sent,
)
from provisioning.admin.inventory import ExpiryFilter
from provisioning.models import (
    RequestStatus,
    ResourceRequest,
    Stack,
    StackEvent,
    StackMember,
    StackStatus,
)
from provisioning.selectors import visible_to
from provisioning.services import stack_approve, stack_cancel, stack_delete, stack_retry

STACK_ACTIONS = {
    action.name: action
    for action in (
        OperatorAction("approve", stack_approve, "approved", (StackStatus.PENDING_APPROVAL,)),
        OperatorAction("cancel", stack_cancel, "cancelled", (StackStatus.PENDING_APPROVAL,)),
        OperatorAction("retry", stack_retry, "retried",
                       (StackStatus.FAILED, StackStatus.ROLLED_BACK)),
        OperatorAction("delete", stack_delete, "sent for deletion",
                       (StackStatus.SUCCEEDED, StackStatus.FAILED)),
    )
}

# What a member's status may be beyond a request's and its own states: where its delete
# request has gone.
DELETING, DELETED, DELETE_FAILED = "deleting", "deleted", "delete_failed"
MEMBER_LABELS = {
    **dict(RequestStatus.choices), **dict(StackMember.State.choices),
    DELETING: "Deleting", DELETED: "Deleted", DELETE_FAILED: "Delete Failed",
}


def _request_link(request: ResourceRequest | None):
    if request is None:
        return link(None)
    return link(request, f"{str(request.pk)[:8]} ({request.get_status_display()})")


class StackMemberInline(ReadOnlyInline):
    model = StackMember
    fields = ["key", "resource_type", "name", "status", "depends", "error",
              "create_request", "delete_request_link", "resource"]
    ordering = ["position", "key"]
    view_permission = "provisioning.view_stack"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("request__resource",
                                                            "delete_request")

    @admin.display(description="status")
    def status(self, member: StackMember):
        value = selectors.member_status(member)
        return status_badge(value, MEMBER_LABELS.get(value, value))

    @admin.display(description="depends on")
    def depends(self, member: StackMember) -> str:
        return ", ".join(member.depends_on) or NOTHING

    @admin.display(description="error")
    def error(self, member: StackMember):
        # Refused before it had a request, or its request's failure.
        if member.error_code or member.request is None:
            return error_summary(member.error_code, member.error_message)
        return error_summary(member.request.error_code, member.request.error_message)

    @admin.display(description="create request")
    def create_request(self, member: StackMember):
        return _request_link(member.request)

    @admin.display(description="delete request")
    def delete_request_link(self, member: StackMember):
        return _request_link(member.delete_request)

    @admin.display(description="resource")
    def resource(self, member: StackMember):
        return link(member.request.resource if member.request is not None else None)


class StackEventInline(EventInline):
    model = StackEvent
    statuses = StackStatus
    view_permission = "provisioning.view_stack"


@admin.register(Stack)
class StackAdmin(SearchById, OperatorButtons, ReadOnlyAdmin):
    list_display = ["stack", "status_badge", "error", "team", "requested_by", "member_count",
                    "expires_at", "created_at"]
    list_filter = ["status", EnvironmentFilter, "action", ExpiryFilter, "team", "created_at"]
    search_fields = ["name"]
    list_select_related = ["team", "requested_by"]
    ordering = ["-created_at", "-id"]  # newest first, from the stack_newest index
    inlines = [StackMemberInline, StackEventInline]
    fieldsets = [
        (None, {"fields": ["id", "status_badge", "environment", "name", "action", "team",
                           "requested_by", "approved_by"]}),
        ("Links", {"fields": ["requests_link", "blueprint_link"]}),
        ("What was asked", {"fields": ["document", "parameters", "rollback",
                                       "idempotency_key"]}),
        ("Outcome", {"fields": ["error_code", "error_message"]}),
        # Its members have none of their own: the stack expires as a whole.
        ("Expiry", {"fields": ["ttl", "expires_at", "warnings_sent", "expiry_problem"]}),
        ("Times", {"fields": ["created_at", "started_at", "finished_at", "updated_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    operator_actions = STACK_ACTIONS
    service_id_argument = "stack_id"

    def get_queryset(self, request):
        stacks = visible_to(super().get_queryset(request), user=request.user)
        return stacks.annotate(member_total=Count("members"))

    def described(self, obj: Stack) -> str:
        return f"Stack {obj.environment}/{obj.name}"

    @admin.display(description="stack", ordering="name")
    def stack(self, obj: Stack) -> str:
        return f"{obj.environment}/{obj.name}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Stack):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="error", ordering="error_code")
    def error(self, obj: Stack):
        return error_summary(obj.error_code, obj.error_message)

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: Stack) -> int:
        return obj.member_total

    @admin.display(description="requests")
    def requests_link(self, obj: Stack):
        return changelist_link(ResourceRequest, "every request of its members",
                               stack__id__exact=obj.pk)

    @admin.display(description="warnings sent")
    def warnings_sent(self, obj: Stack):
        return warnings_sent(obj.expiry_warnings)

    @admin.display(description="blueprint")
    def blueprint_link(self, obj: Stack):
        return link(obj.blueprint)
