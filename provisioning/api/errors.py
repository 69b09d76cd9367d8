"""The API's one error shape, and where KRP's errors become HTTP statuses.

    {"error": {"code": "invalid_request", "message": "spec.versioning: ...",
               "fields": {"spec.versioning": ["Input should be a valid boolean"]}}}

An error may carry further facts as data beside those three (KrpError.details): a
`quota_exceeded` has `quota`, a list of the limits exceeded with their use.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from provisioning.errors import Conflict, InvalidRequest, KrpError, NotAllowed, NotFound

logger = logging.getLogger("krp.api")

# By class, most specific first; any other KrpError (a cloud or settings failure that
# reached the API) is the service being unavailable, not the caller's fault.
STATUS_OF = ((NotFound, status.HTTP_404_NOT_FOUND),
             (InvalidRequest, status.HTTP_400_BAD_REQUEST),
             (Conflict, status.HTTP_409_CONFLICT),
             (NotAllowed, status.HTTP_403_FORBIDDEN))


def krp_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, KrpError):
        body = error_body(exc.code, exc.message, exc.fields)
        body["error"].update(exc.details())
        return Response(body, status=_status_of(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return internal_error(exc, context.get("request"))
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        message = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in fields.items())
        response.data = error_body("invalid_request", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail), {})
    return response


def internal_error(exc: BaseException, request: Any) -> Response:
    """A bug or an outage KRP did not foresee: the one error shape with status 500, and the
    traceback in the log under a reference the caller can quote. The body says nothing of
    the exception itself (its text may hold SQL, hosts or secrets)."""
    reference = uuid.uuid4().hex[:12]
    path = getattr(request, "path", "?")
    logger.error("Internal Server Error: %s (reference %s)", path, reference,
                 exc_info=(type(exc), exc, exc.__traceback__))
    set_rollback()
    response = Response(
        error_body("internal_error", f"the server failed to answer this request; it has been "
                   f"logged under reference {reference}", {}),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    response._has_been_logged = True  # Django would log it again, without the traceback
    return response


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Django's handler500: errors outside a DRF view (middleware, rendering). Under /api/
    the one JSON error shape, elsewhere (the admin) Django's own page. Django has logged the
    traceback already."""
    if not request.path.startswith("/api/"):
        return defaults.server_error(request, *args, **kwargs)
    return JsonResponse(
        error_body("internal_error", "the server failed to answer this request; it has "
                   "been logged", {}),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def error_body(code: str, message: str, fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields}}


def _status_of(exc: KrpError) -> int:
    for kind, code in STATUS_OF:
        if isinstance(exc, kind):
            return code
    return status.HTTP_503_SERVICE_UNAVAILABLE


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as the API's `fields`: one path per problem, dots for
    keys and [i] for list indexes (tags.owner, spec.subscriptions[0].queue); errors of the
    body as a whole under `body`."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" and not prefix else str(key)
            flat.update(flatten_errors(value, f"{prefix}.{name}" if prefix else name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(flatten_errors(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
        return flat
    return {prefix or "body": [str(detail)]}
