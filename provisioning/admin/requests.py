"""Requests and their audit events: find them, read their story, approve / cancel / retry.

A request's page offers the approve, cancel and retry its status allows, as buttons; the
list offers them as bulk actions. Both call the same services as the API, so the rules
(team scope, the approve permission, no self-approval, what a status allows) and the audit
events are the API's; a refusal is shown as a message, never an error page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from provisioning.admin.base import (
    EnvironmentFilter,
    ReadOnlyAdmin,
    ResourceTypeFilter,
    search_by_id,
)
from provisioning.admin.display import (
    change_url,
    changelist_link,
    error_summary,
    link,
    status_badge,
)
from provisioning.errors import KrpError
from provisioning.models import RequestEvent, RequestStatus, ResourceRequest
from provisioning.selectors import REQUEST_ORDERING, visible_to
from provisioning.services import request_approve, request_cancel, request_retry
from provisioning.services.requests import APPROVE_PERMISSION
from provisioning.services.transitions import APPROVABLE, CANCELLABLE, RETRYABLE


@dataclass(frozen=True)
class OperatorAction:
    """What an operator may do to a request: the service that does it, and the statuses
    from which the request's page offers it."""

    name: str
    service: Callable[..., ResourceRequest]
    done: str
    offered_from: tuple[str, ...]


OPERATOR_ACTIONS = {
    action.name: action
    for action in (
        OperatorAction("approve", request_approve, "approved", APPROVABLE),
        OperatorAction("cancel", request_cancel, "cancelled", CANCELLABLE),
        OperatorAction("retry", request_retry, "retried", RETRYABLE),
    )
}


def _status_label(value: str) -> str:
    return RequestStatus(value).label if value in RequestStatus.values else value


def _short(request_id: object) -> str:
    return str(request_id)[:8]


class EventBadges:
    """An event's from and to statuses as badges, in the events list and a request's page."""

    @admin.display(description="from", ordering="from_status")
    def from_badge(self, event: RequestEvent):
        return status_badge(event.from_status, _status_label(event.from_status))

    @admin.display(description="to", ordering="to_status")
    def to_badge(self, event: RequestEvent):
        return status_badge(event.to_status, _status_label(event.to_status))


class RequestEventInline(EventBadges, admin.TabularInline):
    model = RequestEvent
    fields = ["created_at", "from_badge", "to_badge", "actor", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at", "id"]

    def has_view_permission(self, request, obj=None) -> bool:
        # Whoever may see a request sees its whole story.
        return request.user.has_perm("provisioning.view_resourcerequest")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ResourceRequest)
class ResourceRequestAdmin(ReadOnlyAdmin):
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
        ("Links", {"fields": ["resource_link", "last_request_link", "events_link",
                              "task_result_link"]}),
        ("What was asked", {"fields": ["spec", "tags", "not_before", "deadline",
                                       "idempotency_key"]}),
        ("Outcome", {"fields": ["outputs", "error_code", "error_message", "attempts",
                                "physical_name", "left_behind"]}),
        ("Run", {"fields": ["task_id", "published_at", "next_attempt_at", "lease_owner",
                            "lease_expires_at"]}),
        ("Times", {"fields": ["created_at", "queued_at", "started_at", "finished_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    def get_search_results(self, request, queryset, search_term):
        by_id = search_by_id(queryset, search_term, "task_id")
        if by_id is not None:
            return by_id, False
        return super().get_search_results(request, queryset, search_term)

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

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

    # The request page's buttons ----------------------------------------------------------

    def offered_actions(self, request: HttpRequest, obj: ResourceRequest) -> list[OperatorAction]:
        """The actions whose button the request's page shows to this user: those its status
        allows and the user may take (approving needs the permission and someone else's
        request). The service decides all the same when the button is pressed."""
        offered = [a for a in OPERATOR_ACTIONS.values() if obj.status in a.offered_from]
        if not self.has_approve_permission(request) or obj.requested_by_id == request.user.pk:
            offered = [a for a in offered if a.name != "approve"]
        return offered

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None:
            context["krp_actions"] = [
                (action.name, reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_"
                                      f"{action.name}", args=[obj.pk]))
                for action in self.offered_actions(request, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [
            path(f"<path:object_id>/{name}/",
                 self.admin_site.admin_view(require_POST(self.operator_action_view)),
                 {"action": name}, name=f"{info[0]}_{info[1]}_{name}")
            for name in OPERATOR_ACTIONS
        ]
        # Before the admin's own: its "<path:object_id>/" would take these paths too.
        return own + super().get_urls()

    def operator_action_view(self, request: HttpRequest, object_id: str,
                             action: str) -> HttpResponse:
        """A button on the request's page: call the action's service, say what came of it,
        and go back to the page."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        operator_action = OPERATOR_ACTIONS[action]
        try:
            changed = operator_action.service(request_id=obj.pk, user=request.user)
        except KrpError as exc:
            self.message_user(request, f"Request {_short(obj.pk)} was not {operator_action.done}: "
                              f"{exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"Request {_short(obj.pk)} {operator_action.done}; "
                              f"it is now {changed.get_status_display()}.", messages.SUCCESS)
        return redirect(change_url(obj))

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
