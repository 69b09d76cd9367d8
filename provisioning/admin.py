"""The operators' admin: watch requests and the inventory; approve, cancel, retry.

Actions go through the same services as the API (same rules, same audit events). What
only the system may change (status, outputs, task id, physical ids) is read-only here.

Every list is scoped to the user's teams as the API is (superusers see all): requests,
resources and events by their team; task results by the request whose task id they carry;
findings by their resource's team (an orphan, which has none, by its krp:team tag);
reconcile runs by environment, to users whose teams have asked for something there.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils.html import format_html
from django_celery_results.admin import GroupResultAdmin, TaskResultAdmin
from django_celery_results.models import GroupResult, TaskResult

from provisioning.errors import KrpError
from provisioning.models import Finding, ReconcileRun, RequestEvent, Resource, ResourceRequest
from provisioning.resources.base import TEAM
from provisioning.selectors import visible_to
from provisioning.services import request_approve, request_cancel, request_retry
from provisioning.services.requests import APPROVE_PERMISSION


def _search_by_id(queryset: QuerySet, term: str, *also: str) -> QuerySet | None:
    """A search term that is a UUID finds by id (and the other UUID fields named)."""
    try:
        wanted = uuid.UUID(term.strip())
    except ValueError:
        return None
    condition = Q(pk=wanted)
    for field in also:
        condition |= Q(**{field: str(wanted)})
    return queryset.filter(condition)


class RequestEventInline(admin.TabularInline):
    model = RequestEvent
    fields = ["created_at", "from_status", "to_status", "actor", "message"]
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
class ResourceRequestAdmin(admin.ModelAdmin):
    list_display = [
        "short_id", "environment", "resource_type", "name", "action", "status", "team",
        "requested_by", "attempts", "created_at",
    ]
    list_filter = ["status", "environment", "resource_type", "action", "team", "created_at"]
    search_fields = ["name", "physical_name", "task_id", "resource__arn", "outputs__arn"]
    list_select_related = ["team", "requested_by"]
    list_per_page = 100
    show_full_result_count = False
    ordering = ["-created_at"]
    actions = ["approve_selected", "cancel_selected", "retry_selected"]
    inlines = [RequestEventInline]
    fieldsets = [
        (None, {"fields": ["id", "status", "environment", "resource_type", "name", "action",
                           "team", "requested_by"]}),
        ("What was asked", {"fields": ["spec", "tags", "not_before", "deadline",
                                       "idempotency_key"]}),
        ("Outcome", {"fields": ["outputs", "error_code", "error_message", "attempts",
                                "resource_link", "physical_name", "left_behind"]}),
        ("Run", {"fields": ["task_id", "task_result_link", "published_at", "next_attempt_at",
                            "lease_owner", "lease_expires_at"]}),
        ("Times", {"fields": ["created_at", "queued_at", "started_at", "finished_at"]}),
    ]
    readonly_fields = [
        "id", "status", "environment", "resource_type", "name", "action", "team",
        "requested_by", "spec", "tags", "not_before", "deadline", "idempotency_key",
        "outputs", "error_code", "error_message", "attempts", "resource_link",
        "physical_name", "task_id", "task_result_link", "published_at", "next_attempt_at",
        "lease_owner", "lease_expires_at", "created_at", "queued_at", "started_at",
        "finished_at", "left_behind",
    ]

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    def get_search_results(self, request, queryset, search_term):
        by_id = _search_by_id(queryset, search_term, "task_id")
        if by_id is not None:
            return by_id, False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request) -> bool:
        return False  # requests are submitted through the API or `manage.py krp submit`

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit trail keeps every request

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    @admin.display(description="id")
    def short_id(self, obj: ResourceRequest) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="resource")
    def resource_link(self, obj: ResourceRequest) -> str:
        if not obj.resource_id:
            return "-"
        url = reverse("admin:provisioning_resource_change", args=[obj.resource_id])
        return format_html('<a href="{}">{}</a>', url, obj.resource)

    @admin.display(description="task result")
    def task_result_link(self, obj: ResourceRequest) -> str:
        result = obj.task_result
        if result is None:
            return "- (not run yet)"
        url = reverse("admin:django_celery_results_taskresult_change", args=[result.pk])
        return format_html('<a href="{}">{} ({})</a>', url, result.task_id, result.status)

    @admin.action(description="Approve selected requests", permissions=["approve"])
    def approve_selected(self, request, queryset):
        self._apply(request, queryset, request_approve, "approved")

    @admin.action(description="Cancel selected requests")
    def cancel_selected(self, request, queryset):
        self._apply(request, queryset, request_cancel, "cancelled")

    @admin.action(description="Retry selected requests")
    def retry_selected(self, request, queryset):
        self._apply(request, queryset, request_retry, "queued again")

    def _apply(self, request, queryset, service, done: str) -> None:
        succeeded, refused = 0, []
        for pk in queryset.values_list("pk", flat=True):
            try:
                service(request_id=pk, user=request.user)
                succeeded += 1
            except KrpError as exc:
                refused.append(f"{str(pk)[:8]}: {exc.message}")
        if succeeded:
            self.message_user(request, f"{succeeded} request(s) {done}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)


@admin.action(description="Forget selected missing resources")
def forget_missing_resources(modeladmin, request, queryset) -> None:
    """resource_forget for each selected resource; each refusal is shown with its reason."""
    from provisioning.services import resource_forget

    for resource in queryset:
        try:
            resource_forget(resource_id=resource.pk, user=request.user)
            modeladmin.message_user(request, f"Forgot {resource}.", messages.SUCCESS)
        except KrpError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    actions = [forget_missing_resources]
    list_display = ["name", "environment", "resource_type", "status", "team", "arn",
                    "last_verified_at"]
    list_filter = ["status", "environment", "resource_type", "team"]
    search_fields = ["name", "arn", "physical_id", "physical_name"]
    list_select_related = ["team"]
    list_per_page = 100
    show_full_result_count = False
    readonly_fields = [
        "id", "environment", "resource_type", "name", "physical_name", "physical_id", "arn",
        "status", "spec", "tags", "outputs", "team", "created_by_request",
        "last_verified_at", "created_at", "updated_at", "deleted_at",
    ]

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    def get_search_results(self, request, queryset, search_term):
        by_id = _search_by_id(queryset, search_term)
        if by_id is not None:
            return by_id, False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting a resource is a delete request, carried out by a worker


@admin.register(RequestEvent)
class RequestEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "request", "from_status", "to_status", "actor", "message"]
    list_filter = ["to_status", "actor", "created_at"]
    search_fields = ["actor", "message"]
    list_select_related = ["request"]
    list_per_page = 100
    show_full_result_count = False

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user, team="request__team")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _findings_visible_to(user) -> Q:
    """Findings of the user's teams' resources, and orphans tagged with one of their teams
    (an orphan has no inventory row, so its krp:team tag is all that says whose it is)."""
    teams = user.groups.all()
    return Q(resource__team__in=teams) | Q(
        resource__isnull=True, **{f"details__tags__{TEAM}__in": [g.name for g in teams]}
    )


def _runs_visible_to(queryset: QuerySet, user) -> QuerySet:
    """Reconcile runs of environments where one of the user's teams has asked for something.

    A run reports on a whole environment; its counts and error concern every team there,
    and the environments are no secret (GET /environments/). Its findings are scoped
    separately, so a run shows a team only its own.
    """
    if user.is_superuser:
        return queryset
    return queryset.filter(Exists(ResourceRequest.objects.filter(
        environment=OuterRef("environment"), team__in=user.groups.all())))


class FindingInline(admin.TabularInline):
    model = Finding
    fields = ["kind", "resource_type", "arn", "resource", "details", "action_taken"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        findings = super().get_queryset(request)
        if request.user.is_superuser:
            return findings
        return findings.filter(_findings_visible_to(request.user))

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("provisioning.view_reconcilerun")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReconcileRun)
class ReconcileRunAdmin(admin.ModelAdmin):
    """Findings of each reconcile (beat's hourly ones and operators' `krp reconcile`)."""

    list_display = ["started_at", "environment", "status", "checked", "finding_count",
                    "fix", "triggered_by"]
    list_filter = ["status", "environment", "fix", "started_at"]
    inlines = [FindingInline]
    readonly_fields = ["id", "environment", "status", "checked", "fix", "delete_orphans",
                       "triggered_by", "error", "started_at", "finished_at"]
    list_per_page = 100

    def get_queryset(self, request):
        runs = _runs_visible_to(super().get_queryset(request), request.user)
        # Count only the findings the user may see: other teams' are not theirs to count.
        counted = (Q() if request.user.is_superuser
                   else Q(findings__in=Finding.objects.filter(_findings_visible_to(request.user))))
        return runs.annotate(finding_total=Count("findings", filter=counted))

    @admin.display(description="findings", ordering="finding_total")
    def finding_count(self, obj: ReconcileRun) -> int:
        return obj.finding_total

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Finding)
class FindingAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "environment", "resource_type", "arn", "resource",
                    "action_taken"]
    list_filter = ["kind", "run__environment", "resource_type", "created_at"]
    search_fields = ["arn"]
    list_select_related = ["run", "resource"]
    readonly_fields = ["run", "kind", "resource", "resource_type", "arn", "details",
                       "action_taken", "created_at"]
    list_per_page = 100

    def get_queryset(self, request):
        findings = super().get_queryset(request)
        if request.user.is_superuser:
            return findings
        return findings.filter(_findings_visible_to(request.user))

    @admin.display(description="environment", ordering="run__environment")
    def environment(self, obj: Finding) -> str:
        return obj.run.environment

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# django-celery-results' own admin lists every task result to anyone with the view
# permission; KRP's lists a non-superuser only the runs of their teams' requests. A task
# result is linked by the task id the request row holds, which is its latest run's: the
# results of earlier runs (before a retry or a takeover) and of tasks that belong to no
# request (the sweep, reconcile) are for superusers.
admin.site.unregister(TaskResult)
admin.site.unregister(GroupResult)


@admin.register(TaskResult)
class ScopedTaskResultAdmin(TaskResultAdmin):
    def get_queryset(self, request):
        results = super().get_queryset(request)
        if request.user.is_superuser:
            return results
        return results.filter(Exists(ResourceRequest.objects.filter(
            task_id=OuterRef("task_id"), team__in=request.user.groups.all())))


@admin.register(GroupResult)
class ScopedGroupResultAdmin(GroupResultAdmin):
    """KRP publishes no groups; any there are belong to no team."""

    def get_queryset(self, request):
        results = super().get_queryset(request)
        return results if request.user.is_superuser else results.none()
