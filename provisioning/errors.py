"""KRP's one error hierarchy. Each error has a stable `code` and a plain message.

Where they become HTTP statuses and request error fields is decided in one place each
(the API's exception handler, the request services); everything else just raises.
The constructor keeps positional arguments only, so Celery can rebuild an error it
stored in a task result.
"""


class KrpError(Exception):
    code = "krp_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(*((message,) if code is None else (message, code)))
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidRequest(KrpError):
    code = "invalid_request"


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
