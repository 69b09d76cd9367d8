"""KRP's one error hierarchy. Each error has a stable `code`, a plain message and, for bad
input, the offending fields as data.

Where they become HTTP statuses and request error fields is decided in one place each
(the API's exception handler maps by class; the request services record code and
message); everything else just raises. The constructor takes positional arguments, so
Celery can rebuild an error it stored in a task result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

Fields = dict[str, list[str]]
T = TypeVar("T")


class KrpError(Exception):
    code = "krp_error"

    def __init__(self, message: str, code: str | None = None,
                 fields: Mapping[str, Sequence[str]] | None = None):
        args: tuple = (message,) if code is None and not fields else (message, code)
        if fields:
            args = (*args, dict(fields))
        super().__init__(*args)
        self.message = message
        if code is not None:
            self.code = code
        # field path (`spec.versioning`, `deadline`, ...) -> what is wrong with it
        self.fields: Fields = {name: list(problems) for name, problems in (fields or {}).items()}

    def __str__(self) -> str:
        return self.message

    def details(self) -> dict[str, Any]:
        """Further facts of the error as data, for the API's error body beside code,
        message and fields (a quota exceeded names the quota and its use)."""
        return {}


class InvalidRequest(KrpError):
    """Bad input. Raised through `about`/`about_each` so each problem names its field."""

    code = "invalid_request"

    @classmethod
    def about(cls, field: str, problem: str, code: str | None = None) -> InvalidRequest:
        """One field is wrong: the message reads `field: problem`."""
        return cls.about_each({field: [problem]}, code)

    @classmethod
    def about_each(cls, fields: Mapping[str, Sequence[str]],
                   code: str | None = None) -> InvalidRequest:
        """Several problems, each with its field; the message lists them in order."""
        message = "; ".join(f"{field}: {problem}"
                            for field, problems in fields.items() for problem in problems)
        return cls(message, code, fields)


class NotFound(KrpError):
    """No such thing, or not one the caller may see (the API answers 404 for both)."""

    code = "not_found"


class Conflict(KrpError):
    code = "conflict"


class NotAllowed(KrpError):
    code = "not_allowed"


class TransientCloudError(KrpError):
    """AWS or the network failed in a way that a later attempt may not (throttling, 5xx)."""

    code = "transient_cloud_error"


class PermanentCloudError(KrpError):
    """AWS refused in a way that repeating will not change (AccessDenied, validation)."""

    code = "permanent_cloud_error"


class SettingsMismatch(KrpError):
    """The worker's settings fingerprint differs from the one the job was published with."""

    code = "settings_mismatch"


class WrongAccount(KrpError):
    """An environment's credentials resolve to an account other than the configured one."""

    code = "wrong_account"


class Problems:
    """The InvalidRequests of several independent checks, gathered so that one answer names
    every wrong field instead of stopping at the first.

        problems = Problems()
        env = problems.check(known_environment, settings=settings, name=environment)
        ...
        problems.raise_any()

    The error raised keeps the code of its problems when they share one, and is
    `invalid_request` when they differ."""

    def __init__(self, fields: Mapping[str, Sequence[str]] | None = None,
                 code: str = InvalidRequest.code):
        self.fields: Fields = {}
        self.codes: list[str] = []
        if fields:
            self.add(InvalidRequest.about_each(fields, code))

    def check(self, check: Callable[..., T], /, *args: Any, **kwargs: Any) -> T | None:
        """check(*args, **kwargs)'s answer, or None once its InvalidRequest is noted."""
        try:
            return check(*args, **kwargs)
        except InvalidRequest as exc:
            self.add(exc)
            return None

    def add(self, exc: InvalidRequest) -> None:
        for field, problems in (exc.fields or {"body": [exc.message]}).items():
            self.fields.setdefault(field, []).extend(problems)
        self.codes.append(exc.code)

    def names(self, field: str) -> bool:
        """Whether a problem was noted about `field` or anything inside it."""
        return any(name == field or name.startswith((f"{field}.", f"{field}["))
                   for name in self.fields)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def raise_any(self) -> None:
        if self.fields:
            codes = set(self.codes)
            raise InvalidRequest.about_each(
                self.fields, codes.pop() if len(codes) == 1 else InvalidRequest.code)
