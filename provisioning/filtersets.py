"""The list filters of requests and resources, shared by the API and `manage.py krp status`
(and any selector given `filters`), so a filter means the same wherever it is used."""

from __future__ import annotations

import django_filters

from provisioning.models import (
    RequestAction,
    RequestStatus,
    Resource,
    ResourceRequest,
    ResourceStatus,
)


class RequestFilterSet(django_filters.FilterSet):
    environment = django_filters.CharFilter()
    resource_type = django_filters.CharFilter()
    name = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=RequestStatus.choices)
    action = django_filters.ChoiceFilter(choices=RequestAction.choices)
    team = django_filters.CharFilter(field_name="team__name")

    class Meta:
        model = ResourceRequest
        fields = ["environment", "resource_type", "name", "status", "action", "team"]


class ResourceFilterSet(django_filters.FilterSet):
    environment = django_filters.CharFilter()
    resource_type = django_filters.CharFilter()
    name = django_filters.CharFilter()
    status = django_filters.ChoiceFilter(choices=ResourceStatus.choices)
    team = django_filters.CharFilter(field_name="team__name")

    class Meta:
        model = Resource
        fields = ["environment", "resource_type", "name", "status", "team"]
