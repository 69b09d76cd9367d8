"""Quotas: what a team may hold in an environment, set here by operators.

Those who may change quotas see and set every team's; a team's members with the view
permission see their teams' (read-only), each with what the team holds under it now. The
environment and type are chosen from those KRP knows, or left blank for any.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from provisioning import selectors
from provisioning.admin.base import EnvironmentFilter, KrpAdmin, ResourceTypeFilter
from provisioning.filtersets import RESOURCE_TYPES, environment_choices
from provisioning.models import Quota
from provisioning.selectors import use_of

ANY_ENVIRONMENT = ("", "any environment")
ANY_TYPE = ("", "any type")


class CoversMixin:
    """A quota for any environment (or type) is listed under every one it covers, as
    GET /api/v1/quotas/ lists it."""

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{f"{self.parameter_name}__in": [value, ""]}) if value \
            else queryset


class CoveredEnvironmentFilter(CoversMixin, EnvironmentFilter):
    pass


class CoveredTypeFilter(CoversMixin, ResourceTypeFilter):
    pass


def _environments() -> list[tuple[str, str]]:
    return [ANY_ENVIRONMENT, *environment_choices()]


class QuotaForm(forms.ModelForm):
    # Known values only (read per form: tests override the settings); blank means any.
    environment = forms.ChoiceField(choices=_environments, required=False)
    resource_type = forms.ChoiceField(choices=[ANY_TYPE, *RESOURCE_TYPES], required=False)

    class Meta:
        model = Quota
        fields = ["team", "environment", "resource_type", "max_live", "max_in_flight", "note"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("max_live") is None and cleaned.get("max_in_flight") is None:
            raise forms.ValidationError("set max_live, max_in_flight or both: a quota "
                                        "without a limit limits nothing")
        return cleaned


@admin.register(Quota)
class QuotaAdmin(KrpAdmin):
    form = QuotaForm
    list_display = ["team", "environment_label", "resource_type_label", "max_live",
                    "live_use", "max_in_flight", "in_flight_use", "set_by", "updated_at"]
    list_filter = [CoveredEnvironmentFilter, CoveredTypeFilter, "team"]
    search_fields = ["team__name", "note"]
    fields = ["team", "environment", "resource_type", "max_live", "max_in_flight", "note",
              "use", "set_by", "updated_at"]
    readonly_fields = ["use", "set_by", "updated_at"]

    def get_queryset(self, request):
        # With each quota's use (one query for the page); scoped as GET /api/v1/quotas/.
        return selectors.quota_list(user=request.user)

    def save_model(self, request, obj: Quota, form, change) -> None:
        obj.set_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="environment", ordering="environment")
    def environment_label(self, quota: Quota) -> str:
        return quota.environment or ANY_ENVIRONMENT[1]

    @admin.display(description="resource type", ordering="resource_type")
    def resource_type_label(self, quota: Quota) -> str:
        return quota.resource_type or ANY_TYPE[1]

    @admin.display(description="live now")
    def live_use(self, quota: Quota) -> str:
        use = use_of(quota)
        return f"{use.held} ({use.live} live, {use.being_created} being created)"

    @admin.display(description="in flight now")
    def in_flight_use(self, quota: Quota) -> int:
        return use_of(quota).in_flight

    @admin.display(description="use now")
    def use(self, quota: Quota) -> str:
        if quota.pk is None:
            return "shown once saved"
        return f"{self.live_use(quota)}; {self.in_flight_use(quota)} in flight"
