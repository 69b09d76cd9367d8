"""The inventory: what KRP manages, its status, its expiry, and the requests that made and
changed it."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.utils import timezone

from provisioning.admin.base import (
    EnvironmentFilter,
    EventInline,
    ReadOnlyAdmin,
    ResourceTypeFilter,
    SearchById,
)
from provisioning.admin.display import (
    arn,
    changelist_link,
    link,
    status_badge,
    warnings_sent,
)
from provisioning.errors import KrpError
from provisioning.models import Resource, ResourceEvent, ResourceRequest, ResourceStatus
from provisioning.selectors import visible_to
from provisioning.services import resource_forget


class ExpiryFilter(admin.SimpleListFilter):
    """Resources (or stacks) by expiry, through the resource_expires (stack_expires)
    index."""

    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("soon", "expiring within 7 days"), ("expired", "expired"),
                ("any", "has an expiry"), ("none", "no expiry")]

    def queryset(self, request, queryset):
        now = timezone.now()
        return {
            "soon": lambda: queryset.filter(expires_at__gt=now,
                                            expires_at__lte=now + timedelta(days=7)),
            "expired": lambda: queryset.filter(expires_at__lte=now),
            "any": lambda: queryset.filter(expires_at__isnull=False),
            "none": lambda: queryset.filter(expires_at__isnull=True),
        }.get(self.value(), lambda: queryset)()


class ResourceEventInline(EventInline):
    """Its lifetime's story: extensions, expiry warnings, an expiry delete refused."""

    model = ResourceEvent
    statuses = ResourceStatus
    view_permission = "provisioning.view_resource"


@admin.register(Resource)
class ResourceAdmin(SearchById, ReadOnlyAdmin):
    """Read-only: a resource changes through requests (an update or a delete, carried out
    by a worker), never by hand; its expiry through `extend` (API, `krp extend`)."""

    list_display = ["name", "environment", "resource_type", "status_badge", "team", "arn_text",
                    "expires_at", "last_verified_at"]
    list_filter = ["status", EnvironmentFilter, ResourceTypeFilter, ExpiryFilter, "team"]
    search_fields = ["name", "arn", "physical_id", "physical_name"]
    list_select_related = ["team"]
    fieldsets = [
        (None, {"fields": ["id", "status_badge", "environment", "resource_type", "name",
                           "team", "arn_text"]}),
        ("Links", {"fields": ["last_request_link", "requests_link", "created_by_request"]}),
        ("In the cloud", {"fields": ["physical_name", "physical_id", "spec", "tags",
                                     "outputs"]}),
        ("Expiry", {"fields": ["expires_at", "warnings_sent", "expiry_problem"]}),
        ("Times", {"fields": ["last_verified_at", "created_at", "updated_at", "deleted_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    actions = ["forget_missing_resources"]
    inlines = [ResourceEventInline]

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), user=request.user)

    @admin.action(description="Forget selected missing resources")
    def forget_missing_resources(self, request, queryset) -> None:
        """resource_forget (as the API and `krp forget`) for each selected resource; each
        refusal is shown with its reason."""
        for resource in queryset:
            try:
                resource_forget(resource_id=resource.pk, user=request.user)
                self.message_user(request, f"Forgot {resource}.", messages.SUCCESS)
            except KrpError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Resource):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="ARN", ordering="arn")
    def arn_text(self, obj: Resource):
        return arn(obj.arn)

    @admin.display(description="last request")
    def last_request_link(self, obj: Resource):
        last = obj.requests.order_by("-created_at").first()
        if last is None:
            return link(None)
        return link(last, f"{str(last.pk)[:8]}: {last.action} ({last.get_status_display()})")

    @admin.display(description="requests")
    def requests_link(self, obj: Resource):
        return changelist_link(ResourceRequest, "every request for this resource",
                               resource__id__exact=obj.pk)

    @admin.display(description="warnings sent")
    def warnings_sent(self, obj: Resource):
        return warnings_sent(obj.expiry_warnings)
