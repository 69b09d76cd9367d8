"""What every KRP admin page shares: the stylesheet, read-only records, search by id."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.db.models import Q, QuerySet


class KrpAdmin(admin.ModelAdmin):
    """Lists of up to 100 rows, without the full count (a COUNT over every row per page),
    styled with KRP's badges."""

    list_per_page = 100
    show_full_result_count = False

    class Media:
        css = {"all": ["provisioning/admin.css"]}


class ReadOnlyAdmin(KrpAdmin):
    """A record the system writes and people only read (a request, an event, a finding, a
    task result): its page is viewable with the view (or change) permission, and has no
    Save, Delete or Add, since nothing here may be changed by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def search_by_id(queryset: QuerySet, term: str, *also: str) -> QuerySet | None:
    """A search term that is a UUID finds by id (and the other UUID fields named)."""
    try:
        wanted = uuid.UUID(term.strip())
    except ValueError:
        return None
    condition = Q(pk=wanted)
    for field in also:
        condition |= Q(**{field: str(wanted)})
    return queryset.filter(condition)
