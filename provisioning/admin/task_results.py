"""django-celery-results' task results, scoped to the user's teams and linked to requests.

Its own admin lists every task result to anyone with the view permission; KRP's lists a
non-superuser only the runs of their teams' requests. A task result is linked by the task
id the request row holds, which is its latest run's: the results of earlier runs (before a
retry or a takeover) and of tasks that belong to no request (the sweep, reconcile) are for
superusers. A task result is a record of a run: read-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django_celery_results.admin import GroupResultAdmin, TaskResultAdmin
from django_celery_results.models import GroupResult, TaskResult

from provisioning.admin.base import ReadOnlyAdmin
from provisioning.admin.display import link, status_badge
from provisioning.models import ResourceRequest

admin.site.unregister(TaskResult)
admin.site.unregister(GroupResult)


@admin.register(TaskResult)
class ScopedTaskResultAdmin(ReadOnlyAdmin, TaskResultAdmin):
    list_display = ["task_id", "task_name", "date_done", "status_badge", "worker"]

    def get_queryset(self, request):
        results = super().get_queryset(request)
        if request.user.is_superuser:
            return results
        return results.filter(Exists(ResourceRequest.objects.filter(
            task_id=OuterRef("task_id"), team__in=request.user.groups.all())))

    def get_fieldsets(self, request, obj=None):
        # The request first, and the status as a badge; the rest as django-celery-results
        # lays it out.
        (title, options), *rest = super().get_fieldsets(request, obj)
        fields = ["request_link",
                  *("status_badge" if field == "status" else field for field in options["fields"])]
        return [(title, {**options, "fields": fields}), *rest]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "request_link", "status_badge"]

    @admin.display(description="status", ordering="status")
    def status_badge(self, result: TaskResult):
        return status_badge(result.status, result.status)

    @admin.display(description="request")
    def request_link(self, result: TaskResult):
        # Only a superuser sees a result whose request is not their teams', so the request
        # holding its task id (if it still does) is the viewer's to see.
        request = ResourceRequest.objects.filter(task_id=result.task_id).first()
        if request is None:
            return "- (no request holds this task id: an earlier run, or not a request's)"
        return link(request, f"{str(request.pk)[:8]}: {request}")


@admin.register(GroupResult)
class ScopedGroupResultAdmin(ReadOnlyAdmin, GroupResultAdmin):
    """KRP publishes no groups; any there are belong to no team."""

    def get_queryset(self, request):
        results = super().get_queryset(request)
        return results if request.user.is_superuser else results.none()
