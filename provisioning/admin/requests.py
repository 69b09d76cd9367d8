"""Requests and their audit events: find them, read their story, approve / cancel / retry.

A request's page offers the approve, cancel and retry its status allows, as buttons; the
list offers them as bulk actions. Both call the same services as the API, so the rules
(team scope, the approve permission, no self-approval, what a status allows) and the audit
events are the API's; a refusal is shown as a message, never an error page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from provisioning.admin.base import (
    EnvironmentFilter,
    EventInline,
    ReadOnlyAdmin,
    ResourceTypeFilter,
    SearchById,
)
from provisioning.admin.buttons import OperatorAction, OperatorButtons
from provisioning.admin.display import (
    EventBadges,
    changelist_link,
    error_summary,
    link,
    status_badge,
)
from provisioning.errors import KrpError
from provisioning.models import RequestEvent, RequestStatus, ResourceRequest
from provisioning.selectors import REQUEST_ORDERING, visible_to
from provisioning.services import request_approve, request_cancel, request_retry
from provisioning.services.transitions import APPROVABLE, CANCELLABLE, RETRYABLE

OPERATOR_ACTIONS = {
    action.name: action
    for action in (
        OperatorAction("approve", request_approve, "approved", APPROVABLE),
        OperatorAction("cancel", request_cancel, "cancelled", CANCELLABLE),
        OperatorAction("retry", request_retry, "retried", RETRYABLE),
    )
}


def _short(request_id: object) -> str:
    return str(request_id)[:8]


class RequestEventInline(EventInline):
    model = RequestEvent
    statuses = RequestStatus
    view_permission = "provisioning.view_resourcerequest"


@admin.register(ResourceRequest)
class ResourceRequestAdmin(SearchById, OperatorButtons, ReadOnlyAdmin):
    list_display = [
        "short_id", "change", "status_badge", "error", "team", "requested_by", "attempts",
        "created_at",
    ]
    list_filter = ["status", EnvironmentFilter, ResourceTypeFilter, "action", "team",
                   "created_at"]
    search_fields = ["name", "physical_name", "task_id", "resource__arn", "outputs__arn"]
    list_select_related = ["team", "requested_by"]
    ordering = list(REQUEST_ORDERING)
    actions = ["approve_selected", "cancel_selected", "retry_selected"]
    inlines = [RequestEventInline]
    fieldsets = [
        (None, {"fields": ["id", "status_badge", "environment", "resource_type", "name",
                           "action", "team", "requested_by"]}),
        ("Links", {"fields": ["stack_link", "resource_link", "last_request_link",
                              "events_link", "task_result_link"]}),
        ("What was asked", {"fields": ["spec", "tags", "not_before", "deadline",
                                       "idempotency_key"]}),
        ("Plan", {"fields": ["plan_lines"]}),
        ("Outcome", {"fields": ["outputs", "error_code", "error_message", "attempts",
                                "physical_name", "left_behind"]}),
        ("Run", {"fields": ["task_id", "published_at", "next_attempt_at", "lease_owner",
                            "lease_expires_at"]}),
        ("Times", {"fields": ["created_at", "queued_at", "started_at", "finished_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    operator_actions = OPERATOR_ACTIONS
    service_id_argument = "request_id"
    search_id_fields = ("task_id",)

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    def described(self, obj: ResourceRequest) -> str:
        return f"Request {_short(obj.pk)}"

    # Columns and fields ---------------------------------------------------------------

    @admin.display(description="id")
    def short_id(self, obj: ResourceRequest) -> str:
        return _short(obj.pk)

    @admin.display(description="change asked for", ordering="name")
    def change(self, obj: ResourceRequest) -> str:
        # One column, as the request names itself: "create s3_bucket alpha/orders".
        return str(obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ResourceRequest):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="error", ordering="error_code")
    def error(self, obj: ResourceRequest):
        return error_summary(obj.error_code, obj.error_message)

    @admin.display(description="what it will change")
    def plan_lines(self, obj: ResourceRequest):
        """The plan as a diff a person reads: a line per change, or why there is none."""
        if obj.plan is None:
            return ("not planned yet: a worker of its environment plans it before it waits "
                    "for approval, or as it runs")
        return format_html('<pre class="krp-plan">{}</pre>', "\n".join(obj.plan["lines"]))

    @admin.display(description="stack")
    def stack_link(self, obj: ResourceRequest):
        if obj.stack_id is None:
            return link(None)
        return link(obj.stack, f"{obj.stack.environment}/{obj.stack.name}, "
                               f"member {obj.stack_member}")

    @admin.display(description="resource")
    def resource_link(self, obj: ResourceRequest):
        return link(obj.resource)

    @admin.display(description="resource's last request")
    def last_request_link(self, obj: ResourceRequest):
        if obj.resource_id is None:
            return link(None)
        last = obj.resource.requests.order_by("-created_at").first()
        if last is None or last.pk == obj.pk:
            return "this request"
        return link(last, f"{_short(last.pk)}: {last} ({last.get_status_display()})")

    @admin.display(description="events")
    def events_link(self, obj: ResourceRequest):
        return changelist_link(RequestEvent, "this request's events", request__id__exact=obj.pk)

    @admin.display(description="task result")
    def task_result_link(self, obj: ResourceRequest):
        result = obj.task_result
        if result is None:
            return "- (not run yet)"
        return link(result, f"{result.task_id} ({result.status})")

    # The list's bulk actions -------------------------------------------------------------

    @admin.action(description="Approve selected requests", permissions=["approve"])
    def approve_selected(self, request, queryset):
        self._apply(request, queryset, OPERATOR_ACTIONS["approve"])

    @admin.action(description="Cancel selected requests")
    def cancel_selected(self, request, queryset):
        self._apply(request, queryset, OPERATOR_ACTIONS["cancel"])

    @admin.action(description="Retry selected requests")
    def retry_selected(self, request, queryset):
        self._apply(request, queryset, OPERATOR_ACTIONS["retry"])

    def _apply(self, request, queryset, action: OperatorAction) -> None:
        succeeded, refused = 0, []
        for pk in queryset.values_list("pk", flat=True):
            try:
                action.service(request_id=pk, user=request.user)
                succeeded += 1
            except KrpError as exc:
                refused.append(f"{_short(pk)}: {exc.message}")
        if succeeded:
            self.message_user(request, f"{succeeded} request(s) {action.done}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)


@admin.register(RequestEvent)
class RequestEventAdmin(EventBadges, ReadOnlyAdmin):
    statuses = RequestStatus
    list_display = ["created_at", "request_link", "from_badge", "to_badge", "actor", "message"]
    list_filter = ["to_status", "actor", "created_at"]
    search_fields = ["actor", "message"]
    list_select_related = ["request"]
    ordering = ["-created_at", "-id"]
    fields = ["request", "created_at", "from_badge", "to_badge", "actor", "message"]
    readonly_fields = fields

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user, team="request__team")

    @admin.display(description="request", ordering="request__created_at")
    def request_link(self, event: RequestEvent):
        return link(event.request, f"{_short(event.request_id)}: {event.request}")
