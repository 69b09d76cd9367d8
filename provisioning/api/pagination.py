"""Pages of a list: `?page=N` and `?page_size=N` (1 to MAX_PAGE_SIZE). A page size out of
range is refused rather than quietly changed, and a page past the end is a 404 that says
how many pages there are, in the API's error shape."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import NotFound as DrfNotFound
from rest_framework.pagination import PageNumberPagination

from provisioning.errors import InvalidRequest, NotFound

MAX_PAGE_SIZE = 200


class KrpPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_query_description = "the page to answer, from 1; past the last page is a 404"

    @property
    def page_size_query_description(self) -> str:  # read by the OpenAPI schema
        return (f"results per page, 1 to {MAX_PAGE_SIZE} (default "
                f"{settings.REST_FRAMEWORK['PAGE_SIZE']}); any other value is a 400")

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        size = int(raw) if raw.isdigit() else 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequest.about(
                self.page_size_query_param, f"{raw!r} is not a page size: use a whole number "
                f"from 1 to {MAX_PAGE_SIZE}", "invalid_page_size")
        return size

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except DrfNotFound:
            page = request.query_params.get(self.page_query_param)
            pages = self.django_paginator_class(queryset, self.get_page_size(request)).num_pages
            raise NotFound(
                f"page {page!r} does not exist: there are {pages} pages of "
                f"{self.get_page_size(request)}, numbered from 1", NotFound.code,
                {self.page_query_param: [f"must be a page number from 1 to {pages}"]},
            ) from None
