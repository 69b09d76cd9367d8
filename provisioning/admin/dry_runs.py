"""Dry runs in the admin: who asked what would change, and the plan they were shown."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from provisioning.admin.base import EnvironmentFilter, ReadOnlyAdmin
from provisioning.models import DryRun
from provisioning.selectors import visible_to


@admin.register(DryRun)
class DryRunAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "user", "team", "environment", "resource_type", "name",
                    "action"]
    list_filter = [EnvironmentFilter, "resource_type", "action", "team", "created_at"]
    search_fields = ["name", "user__username"]
    list_select_related = ["user", "team"]
    fields = ["created_at", "user", "team", "environment", "resource_type", "name", "action",
              "plan_lines"]
    readonly_fields = fields

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    @admin.display(description="what they were shown")
    def plan_lines(self, obj: DryRun):
        return format_html('<pre class="krp-plan">{}</pre>', "\n".join(obj.lines))
