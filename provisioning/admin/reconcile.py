"""Reconcile runs and their findings, scoped to the user's teams.

Findings by their resource's team (an orphan, which has none, by its krp:team tag);
reconcile runs by environment, to users whose teams have asked for something there.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils.html import format_html

from provisioning.admin.base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ResourceTypeFilter,
    RunEnvironmentFilter,
)
from provisioning.admin.display import NOTHING, arn, error_summary, link, status_badge
from provisioning.models import Finding, ReconcileRun, ResourceRequest
from provisioning.resources.base import TEAM


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


class FindingLinks:
    """A finding's ARN in full, and links to its resource and to the stack whose member
    made it."""

    @admin.display(description="ARN", ordering="arn")
    def arn_text(self, finding: Finding):
        return arn(finding.arn)

    @admin.display(description="resource")
    def resource_link(self, finding: Finding):
        return link(finding.resource)

    @admin.display(description="stack")
    def stack_link(self, finding: Finding):
        # From the details, as reconcile recorded them: the stack row is not loaded.
        stack = finding.details.get("stack")
        if not stack:
            return NOTHING
        url = reverse("admin:provisioning_stack_change", args=[stack["id"]])
        return format_html('<a href="{}">{}</a>, member {}', url, stack["name"],
                           finding.details.get("member"))


class FindingInline(FindingLinks, ReadOnlyInline):
    model = Finding
    fields = ["kind", "resource_type", "arn_text", "resource_link", "stack_link", "details",
              "action_taken"]
    view_permission = "provisioning.view_reconcilerun"

    def get_queryset(self, request):
        findings = super().get_queryset(request).select_related("resource")
        if request.user.is_superuser:
            return findings
        return findings.filter(_findings_visible_to(request.user))


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    """Findings of each reconcile (beat's hourly ones and operators' `krp reconcile`)."""

    list_display = ["started_at", "environment", "status_badge", "failure", "checked",
                    "deep_checked", "finding_total_count", "duration", "calls", "fix",
                    "triggered_by"]
    list_filter = ["status", "environment", "fix", "started_at"]
    inlines = [FindingInline]
    fields = ["id", "environment", "status_badge", "checked", "deep_checked", "duration",
              "calls", "fix", "delete_orphans", "triggered_by", "error", "started_at",
              "finished_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        runs = _runs_visible_to(super().get_queryset(request), request.user)
        # Count only the findings the user may see: other teams' are not theirs to count.
        counted = (Q() if request.user.is_superuser
                   else Q(findings__in=Finding.objects.filter(_findings_visible_to(request.user))))
        return runs.annotate(finding_total=Count("findings", filter=counted))

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ReconcileRun):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="why it failed")
    def failure(self, obj: ReconcileRun):
        return error_summary("", obj.error)

    @admin.display(description="findings", ordering="finding_total")
    def finding_total_count(self, obj: ReconcileRun) -> int:
        return obj.finding_total

    @admin.display(description="described", ordering="deep_checked")
    def deep_checked(self, obj: ReconcileRun) -> int:
        return obj.deep_checked

    @admin.display(description="seconds", ordering="duration_seconds")
    def duration(self, obj: ReconcileRun) -> str:
        return "" if obj.duration_seconds is None else f"{obj.duration_seconds:.1f}"

    @admin.display(description="AWS calls")
    def calls(self, obj: ReconcileRun) -> str:
        """The total, then each service's share: 'total 412 (s3 400, ...)'."""
        if not obj.aws_calls:
            return ""
        shares = ", ".join(f"{service} {count}" for service, count in obj.aws_calls.items())
        return f"{sum(obj.aws_calls.values())} ({shares})"


@admin.register(Finding)
class FindingAdmin(FindingLinks, ReadOnlyAdmin):
    list_display = ["created_at", "kind", "environment", "resource_type", "arn_text",
                    "resource_link", "stack_link", "run_link", "action_taken"]
    list_filter = ["kind", RunEnvironmentFilter, ResourceTypeFilter, "created_at"]
    search_fields = ["arn"]
    list_select_related = ["run", "resource"]
    fields = ["run", "kind", "resource", "stack_link", "resource_type", "arn_text", "details",
              "action_taken", "created_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        findings = super().get_queryset(request)
        if request.user.is_superuser:
            return findings
        return findings.filter(_findings_visible_to(request.user))

    @admin.display(description="environment", ordering="run__environment")
    def environment(self, obj: Finding) -> str:
        return obj.run.environment

    @admin.display(description="run", ordering="run__started_at")
    def run_link(self, obj: Finding):
        return link(obj.run)
