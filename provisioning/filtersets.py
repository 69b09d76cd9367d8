"""The list filters of requests and resources, shared by the API and `manage.py krp status`
(and any selector given `filters`), so a filter means the same wherever it is used.

A filter with a known set of values (environment, resource_type, status, action) refuses
any other, naming the known ones: `?environment=staging` is an error, not an empty list.
"""

from __future__ import annotations

import django_filters
from dependency_injector.wiring import Provide, inject
from django import forms
from django_filters.fields import ChoiceField

from containers.core import CoreContainer
from containers.settings import KrpSettings
from provisioning.models import (
    Quota,
    RequestAction,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
    Stack,
    StackStatus,
)
from provisioning.resources import REGISTRY


class KnownValueField(ChoiceField):
    """A choice whose refusal lists the values it knows."""

    def validate(self, value):
        try:
            super().validate(value)
        except forms.ValidationError:
            known = ", ".join(str(key) for key, _ in self.choices if key not in ("", None))
            raise forms.ValidationError(
                "%(value)s is not one of the known values: %(known)s",
                code="invalid_choice", params={"value": repr(value), "known": known},
            ) from None


class KnownValueFilter(django_filters.ChoiceFilter):
    field_class = KnownValueField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("help_text", "only these values; any other is a 400 naming them")
        super().__init__(*args, **kwargs)


@inject
def environment_choices(
    settings: KrpSettings = Provide[CoreContainer.settings],
) -> list[tuple[str, str]]:
    """The environments of this process's settings (read per use: tests override them)."""
    return [(name, name) for name in settings.environment_names]


RESOURCE_TYPES = [(name, name) for name in sorted(REGISTRY)]
ENVIRONMENT_HELP = ("an environment of GET /api/v1/environments/; any other is a 400 naming "
                    "them")


# What expires soon: the resources (or stacks) whose expiry is at or before this time,
# those already past it included.
EXPIRES_BEFORE_HELP = ("ISO 8601 time with a zone: only those that expire at or before it "
                       "(already expired ones included)")
EXPIRES_BEFORE_ERRORS = {"invalid": "give an ISO 8601 time, e.g. 2026-12-01T09:00:00Z"}


class RequestFilterSet(django_filters.FilterSet):
    environment = KnownValueFilter(choices=environment_choices, help_text=ENVIRONMENT_HELP)
    resource_type = KnownValueFilter(choices=RESOURCE_TYPES)
    name = django_filters.CharFilter()
    status = KnownValueFilter(choices=RequestStatus.choices)
    action = KnownValueFilter(choices=RequestAction.choices)
    team = django_filters.CharFilter(field_name="team__name")

    class Meta:
        model = ResourceRequest
        fields = ["environment", "resource_type", "name", "status", "action", "team"]


class ResourceFilterSet(django_filters.FilterSet):
    environment = KnownValueFilter(choices=environment_choices, help_text=ENVIRONMENT_HELP)
    resource_type = KnownValueFilter(choices=RESOURCE_TYPES)
    name = django_filters.CharFilter()
    status = KnownValueFilter(choices=ResourceStatus.choices)
    team = django_filters.CharFilter(field_name="team__name")
    expires_before = django_filters.IsoDateTimeFilter(
        field_name="expires_at", lookup_expr="lte", help_text=EXPIRES_BEFORE_HELP,
        error_messages=EXPIRES_BEFORE_ERRORS)

    class Meta:
        model = Resource
        fields = ["environment", "resource_type", "name", "status", "team", "expires_before"]


class StackFilterSet(django_filters.FilterSet):
    environment = KnownValueFilter(choices=environment_choices, help_text=ENVIRONMENT_HELP)
    name = django_filters.CharFilter()
    status = KnownValueFilter(choices=StackStatus.choices)
    team = django_filters.CharFilter(field_name="team__name")
    expires_before = django_filters.IsoDateTimeFilter(
        field_name="expires_at", lookup_expr="lte", help_text=EXPIRES_BEFORE_HELP,
        error_messages=EXPIRES_BEFORE_ERRORS)

    class Meta:
        model = Stack
        fields = ["environment", "name", "status", "team", "expires_before"]


class QuotaFilterSet(django_filters.FilterSet):
    """A quota for any environment (or type) is listed under every one it covers."""

    environment = KnownValueFilter(choices=environment_choices, help_text=ENVIRONMENT_HELP,
                                   method="_covers")
    resource_type = KnownValueFilter(choices=RESOURCE_TYPES, method="_covers")
    team = django_filters.CharFilter(field_name="team__name")

    class Meta:
        model = Quota
        fields = ["environment", "resource_type", "team"]

    def _covers(self, queryset, name, value):
        return queryset.filter(**{f"{name}__in": [value, ""]})
