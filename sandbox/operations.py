"""Which AWS operation a sandbox call is, and AWS's own refusal of it, in each protocol.

The fault layer drops or denies calls by operation name (CreateBucket, DeleteTable,
DeleteRole): JSON protocols name it in X-Amz-Target, query protocols in the form's Action,
and S3's REST protocol only by method and sub-resource, which the table below maps for the
bucket-level calls KRP makes.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zlib
from typing import Any
from urllib.parse import parse_qs

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")

# (method, first sub-resource of the query string) of a bucket-level S3 call -> operation.
S3_BUCKET_OPERATIONS = {
    ("PUT", ""): "CreateBucket",
    ("DELETE", ""): "DeleteBucket",
    ("HEAD", ""): "HeadBucket",
    ("GET", "location"): "GetBucketLocation",
    ("PUT", "tagging"): "PutBucketTagging",
    ("GET", "tagging"): "GetBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "versioning"): "GetBucketVersioning",
    ("PUT", "encryption"): "PutBucketEncryption",
    ("GET", "encryption"): "GetBucketEncryption",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
}


def service_of(environ: dict[str, Any]) -> str:
    """The AWS service a call is for: the SigV4 credential scope names it."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "unknown"


def operation_of(environ: dict[str, Any]) -> str:
    """The operation a call names; reading a query-protocol form puts the body back."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    method = environ.get("REQUEST_METHOD", "")
    query = environ.get("QUERY_STRING", "")
    if service_of(environ) == "s3":
        parts = [part for part in environ.get("PATH_INFO", "").split("/") if part]
        if len(parts) != 1:
            return f"{method} object" if parts else "ListBuckets"
        sub_resource = query.split("&", 1)[0].split("=", 1)[0]
        return S3_BUCKET_OPERATIONS.get((method, sub_resource), f"{method} ?{sub_resource}")
    action = parse_qs(query).get("Action")
    if not action and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        body = drain(environ)
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads the form again
        action = parse_qs(body.decode(errors="replace")).get("Action")
    return action[0] if action else ""


def denied_response(environ: dict[str, Any],
                    operation: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """AWS's AccessDenied answer for `operation`, in the protocol of this call."""
    message = f"User is not authorized to perform: {operation}"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
        return "400 Bad Request", [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amz-crc32", str(zlib.crc32(body))),
        ], body
    request_id = str(uuid.uuid4())
    if service_of(environ) == "s3":
        body = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                f"<Message>{message}</Message><RequestId>{request_id}</RequestId>"
                "</Error>").encode()
    else:
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return "403 Forbidden", [("Content-Type", "text/xml")], body


def drain(environ: dict[str, Any]) -> bytes:
    """Read the request body, so the connection stays usable after an early answer."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length else b""
