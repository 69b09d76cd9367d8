"""What every KRP admin page shares: the stylesheet, read-only records, search by id, and
lists that cost the same however many rows the table holds."""

from __future__ import annotations

import uuid
from functools import cached_property

from django.contrib import admin
from django.core.paginator import EmptyPage, Paginator
from django.db.models import Q, QuerySet

from provisioning.admin.display import EventBadges
from provisioning.filtersets import RESOURCE_TYPES, environment_choices


class BoundedCountPaginator(Paginator):
    """Counts the rows of a list up to `count_cap` + 1 and no further: past the cap the
    list says "10,000+" and its pages stop at the cap's row.

    Django's admin counts the (filtered) list on every page view, and a COUNT reads every
    row it counts, so its cost grows with the table; counting a LIMITed subquery bounds
    it. Pages are still OFFSET pages (the admin has no cursor), so the deepest reads at
    most `count_cap` rows before its own, at any table size. A page number past the last
    answers the last page rather than an error.
    """

    count_cap = 10_000

    @cached_property
    def counted(self) -> int:
        """The rows, counted up to one past the cap."""
        return self.object_list.order_by().values("pk")[:self.count_cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.count_cap)

    @property
    def capped(self) -> bool:
        return self.counted > self.count_cap

    @property
    def count_label(self) -> str:
        """The count as a list shows it: "1,234", or "10,000+" past the cap."""
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"

    def validate_number(self, number) -> int:
        try:
            return super().validate_number(number)
        except EmptyPage:
            return self.num_pages if int(number) > 1 else 1


class KnownValuesFilter(admin.SimpleListFilter):
    """A list filter whose values are known without reading the table. Django's filter on
    a plain field (AllValuesFieldListFilter) selects the DISTINCT values of every row on
    every view of the list: at 100,000 requests, two such filters cost more than the rest
    of the page together. The query parameter is the field's, as with Django's own."""

    def known_values(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return self.known_values()

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class EnvironmentFilter(KnownValuesFilter):
    """By environment: those of the settings."""

    title = "environment"
    parameter_name = "environment"

    def known_values(self) -> list[tuple[str, str]]:
        return environment_choices()


class RunEnvironmentFilter(EnvironmentFilter):
    parameter_name = "run__environment"


class ResourceTypeFilter(KnownValuesFilter):
    """By resource type: those of the registry."""

    title = "resource type"
    parameter_name = "resource_type"

    def known_values(self) -> list[tuple[str, str]]:
        return RESOURCE_TYPES


class KrpAdmin(admin.ModelAdmin):
    """Lists of up to 100 rows, counted only up to a bound (BoundedCountPaginator) and
    without the full count (a second COUNT, of the unfiltered table), styled with KRP's
    badges."""

    list_per_page = 100
    show_full_result_count = False
    paginator = BoundedCountPaginator

    class Media:
        css = {"all": ["provisioning/admin.css"]}


class SearchById:
    """For a ModelAdmin: a search term that is a UUID finds the record by id (and by the
    other UUID fields of `search_id_fields`), not by the text fields."""

    search_id_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        by_id = search_by_id(queryset, search_term, *self.search_id_fields)
        if by_id is not None:
            return by_id, False
        return super().get_search_results(request, queryset, search_term)


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


class ReadOnlyInline(admin.TabularInline):
    """The rows a read-only record's page shows of its parts (a request's events, a stack's
    members, a run's findings): every field read-only, none added or removed. Whoever may
    see the record sees all of it, so the rows need the record's view permission
    (`view_permission`), not one of their own."""

    extra = 0
    can_delete = False
    view_permission: str

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(self.view_permission)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EventInline(EventBadges, ReadOnlyInline):
    """A record's story on its page (a request's events, a stack's), oldest first, each
    event as one row in the same columns on every page."""

    fields = ["created_at", "from_badge", "to_badge", "actor", "message"]
    ordering = ["created_at", "id"]


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
