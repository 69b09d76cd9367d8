"""The API's one error shape, and where KRP's errors become HTTP statuses.

    {"error": {"code": "invalid_request", "message": "spec.versioning: ...",
               "fields": {"spec.versioning": ["Input should be a valid boolean"]}}}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from provisioning.errors import Conflict, InvalidRequest, KrpError, NotAllowed, NotFound

# By class, most specific first; any other KrpError (a cloud or settings failure that
# reached the API) is the service being unavailable, not the caller's fault.
STATUS_OF = ((NotFound, status.HTTP_404_NOT_FOUND),
             (InvalidRequest, status.HTTP_400_BAD_REQUEST),
             (Conflict, status.HTTP_409_CONFLICT),
             (NotAllowed, status.HTTP_403_FORBIDDEN))


def krp_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, KrpError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=_status_of(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling (and logging) takes over
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in fields.items())
        response.data = error_body("invalid_request", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail), {})
    return response


def error_body(code: str, message: str, fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields}}


def _status_of(exc: KrpError) -> int:
    for kind, code in STATUS_OF:
        if isinstance(exc, kind):
            return code
    return status.HTTP_503_SERVICE_UNAVAILABLE


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" and not prefix else str(key)
            flat.update(_flatten(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}"))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "body": [str(detail)]}
