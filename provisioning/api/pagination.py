"""Pages of a list, by cursor: a page's `next` and `previous` links carry `?cursor=`, and
`?page_size=N` takes 1 to MAX_PAGE_SIZE. A page size out of range is refused rather than
quietly changed; a cursor KRP did not make (edited, cut short, from another list) is a 400.

A cursor is the sort key of the row a page ends at, so the next page is `WHERE (created_at,
id) < (x, y) ORDER BY created_at DESC, id DESC LIMIT n + 1`: an index on those columns
answers it at the same cost at any depth, where `OFFSET` reads and throws away every row
before the page. Each list's ordering (the view's `ordering`) ends with the primary key, so
no two rows share a key and no row is skipped or shown twice, even while rows are added.
DRF's own CursorPagination keys on the first ordering field alone and breaks ties with an
offset; this one keys on all of them. There is no count: counting every row is what a
list costs at 100,000 rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import F, Field, Func, Lookup, Model, QuerySet, Value
from django.db.models.lookups import (
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
)
from rest_framework.pagination import CursorPagination, _reverse_ordering
from rest_framework.utils.urls import remove_query_param, replace_query_param

from provisioning.errors import InvalidRequest

MAX_PAGE_SIZE = 200
INVALID_CURSOR = ("is not a cursor of this list: use the `next` or `previous` link of a page "
                  "as it was given, or leave it out for the first page")


class KeysetCursor(NamedTuple):
    """Where a page starts: after (or, with `reverse`, before) the row whose sort key is
    `position`, or at it too with `inclusive`."""

    position: list[str]
    reverse: bool = False
    inclusive: bool = False


class Row(Func):
    """A row value, `(a, b, c)`: PostgreSQL compares two of them column by column, in one
    index range condition."""

    template = "(%(expressions)s)"
    output_field = Field()


def after(ordering: Sequence[str], position: Sequence[Any], *, inclusive: bool = False,
          ) -> Lookup:
    """The rows that come after `position` in `ordering` (every field one direction)."""
    descending = {field.startswith("-") for field in ordering}
    if len(descending) != 1:
        raise ImproperlyConfigured(f"a keyset ordering sorts every field one way: {ordering}")
    columns = Row(*(F(field.lstrip("-")) for field in ordering))
    values = Row(*(Value(value) for value in position))
    if descending.pop():
        return (LessThanOrEqual if inclusive else LessThan)(columns, values)
    return (GreaterThanOrEqual if inclusive else GreaterThan)(columns, values)


def _fields(model: type[Model], ordering: Sequence[str]) -> list[Field]:
    return [model._meta.get_field(name.lstrip("-")) for name in ordering]


def position_of(row: Model, ordering: Sequence[str]) -> list[str]:
    """The row's sort key, as text a cursor carries."""
    return [field.value_to_string(row) for field in _fields(type(row), ordering)]


class KrpCursorPagination(CursorPagination):
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    cursor_query_description = (
        "where the page starts: the cursor in the `next` or `previous` link of the page "
        "before; leave it out for the first page. A cursor KRP did not give is a 400")

    @property
    def page_size_query_description(self) -> str:  # read by the OpenAPI schema
        return (f"results per page, 1 to {MAX_PAGE_SIZE} (default "
                f"{settings.REST_FRAMEWORK['PAGE_SIZE']}); any other value is a 400")

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return settings.REST_FRAMEWORK["PAGE_SIZE"]
        size = int(raw) if raw.isdigit() else 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequest.about(
                self.page_size_query_param, f"{raw!r} is not a page size: use a whole number "
                f"from 1 to {MAX_PAGE_SIZE}", "invalid_page_size")
        return size

    def get_ordering(self, request, queryset, view) -> tuple[str, ...]:
        ordering = tuple(view.ordering)
        if ordering[-1].lstrip("-") != "id":
            raise ImproperlyConfigured(f"{type(view).__name__}.ordering must end with the "
                                       "primary key, so that no two rows share a position")
        return ordering

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list[Model]:
        if "page" in request.query_params:
            # Before cursors, lists took ?page=N: a script stepping through pages by number
            # would otherwise get the first page over and over.
            raise InvalidRequest.about("page", "lists are paged by cursor: follow each "
                                       "page's `next` link", "invalid_page")
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.fields = _fields(queryset.model, self.ordering)
        self.cursor = self.decode_cursor(request)
        reverse = self.cursor is not None and self.cursor.reverse
        ordering = _reverse_ordering(self.ordering) if reverse else self.ordering
        queryset = queryset.order_by(*ordering)
        if self.cursor is not None:
            values = [field.to_python(text)
                      for field, text in zip(self.fields, self.cursor.position, strict=True)]
            queryset = queryset.filter(after(ordering, values,
                                             inclusive=self.cursor.inclusive))
        rows = list(queryset[:self.page_size + 1])
        self.page = rows[:self.page_size]
        more = len(rows) > self.page_size
        if reverse:
            self.page.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, self.cursor is not None
        self.display_page_controls = self.has_next or self.has_previous
        return self.page

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        if not self.page:
            # Walking back found nothing newer than the cursor: the first page is next.
            return remove_query_param(self.base_url, self.cursor_query_param)
        return self._link(KeysetCursor(position_of(self.page[-1], self.ordering)))

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        if not self.page:
            # Nothing after the cursor (the rows past it were removed since): the page
            # before ends with the row at the cursor.
            cursor = KeysetCursor(self.cursor.position, reverse=True, inclusive=True)
        else:
            cursor = KeysetCursor(position_of(self.page[0], self.ordering), reverse=True)
        return self._link(cursor)

    def _link(self, cursor: KeysetCursor) -> str:
        return replace_query_param(self.base_url, self.cursor_query_param,
                                   self.encode_cursor(cursor))

    def encode_cursor(self, cursor: KeysetCursor) -> str:
        document: dict[str, Any] = {"p": cursor.position}
        if cursor.reverse:
            document["r"] = 1
        if cursor.inclusive:
            document["i"] = 1
        raw = json.dumps(document, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def decode_cursor(self, request) -> KeysetCursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            document = json.loads(raw)
            texts = document["p"]
            reverse, inclusive = document.get("r", 0), document.get("i", 0)
            if (set(document) - {"p", "r", "i"} or reverse not in (0, 1)
                    or inclusive not in (0, 1)
                    or not isinstance(texts, list)
                    or not all(isinstance(text, str) and "\x00" not in text
                               for text in texts)):
                raise ValueError(document)
            for field, text in zip(self.fields, texts, strict=True):
                field.to_python(text)
        except (binascii.Error, ValueError, TypeError, KeyError, ValidationError,
                UnicodeDecodeError, AttributeError):
            raise InvalidRequest.about(self.cursor_query_param, INVALID_CURSOR,
                                       "invalid_cursor") from None
        return KeysetCursor(texts, reverse=bool(reverse), inclusive=bool(inclusive))

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=MAX_PAGE_SIZE)
        return parameters

    def get_paginated_response_schema(self, schema: dict) -> dict:
        answer = super().get_paginated_response_schema(schema)
        answer["description"] = (
            "One page of the list, in the list's order. No count: counting every row costs "
            "more than the page itself on a long list. Follow `next` until it is null; "
            "`previous` goes back.")
        answer["required"] = ["next", "previous", "results"]
        position = ["2026-03-04T05:06:07.123456+00:00", "8d7c5e1a-3b2f-4c6d-9e8f-0a1b2c3d4e5f"]
        for link, reverse in (("next", False), ("previous", True)):
            answer["properties"][link]["example"] = (
                "https://krp.example.com/api/v1/requests/?cursor="
                + self.encode_cursor(KeysetCursor(position, reverse=reverse)))
        return answer
