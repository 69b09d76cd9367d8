"""KRP's one error hierarchy. Each error has a stable `code`, a plain message and, for bad
input, the offending fields as data.

Where they become HTTP statuses and request error fields is decided in one place each
(the API's exception handler maps by class; the request services record code and
message); everything else just raises. The constructor takes positional arguments, so
Celery can rebuild an error it stored in a task result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Fields = dict[str, list[str]]


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
