"""EnvironmentSettings: where one environment's changes land, parsed from KRP_ENVIRONMENTS.

The embedded default (no KRP_ENVIRONMENTS) is two accounts in the local sandbox AWS.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from containers.durations import format_duration, ordered, parse_duration
from containers.errors import explain

DEFAULT_SANDBOX_URL = "http://127.0.0.1:4566"
DEFAULT_REGION = "ap-northeast-2"
# The keys an environment with `credentials: sandbox` signs with. Not a secret: the sandbox
# accepts any key; what matters is that no real credential of the shell is ever sent there.
SANDBOX_ACCESS_KEY_ID = "sandbox"
SANDBOX_SECRET_ACCESS_KEY = "sandbox"


class EnvironmentSettings(BaseModel):
    """Where one environment's changes land: an AWS account in one region."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/.*)?$")
    requires_approval: bool = False
    # Where a team has a quota for what a create (or import) makes, a request that stays
    # within every quota covering it is queued at once, and one beyond a quota waits for
    # approval instead of being refused: the quota is where approval starts. Requests no
    # quota covers, updates and deletes follow requires_approval.
    auto_approve_within_quota: bool = False
    queue: str = Field(default="", pattern=r"^([a-z][a-z0-9._-]{0,63})?$")
    # The AWS call budget every process shares for this environment (provisioning.budget).
    # Not a fact of where a change lands, so not in the settings fingerprint.
    api_calls_per_second: int = Field(default=20, ge=1, le=10_000)
    # Where its base credentials come from: "chain" is boto3's own chain (AWS_* variables,
    # profiles, instance and task roles); "sandbox" is the sandbox's fixed keys, whatever
    # this process's environment holds, so every process of the embedded default reaches
    # the sandbox alike and none sends a real credential to it. Not in the fingerprint:
    # credentials never are (the identity guard checks what they resolve to).
    credentials: Literal["chain", "sandbox"] = "chain"
    # How long a resource may live (its ttl or expires_at, counted from when it is asked
    # for or extended); None: as long as its owners like. `requires_ttl`: a create or an
    # import must say. `expiry_warnings`: when owners are warned before a resource expires,
    # instead of KRP_EXPIRY_WARNINGS. None of these decides where a change lands.
    max_ttl: timedelta | None = None
    requires_ttl: bool = False
    expiry_warnings: tuple[timedelta, ...] | None = None

    @field_validator("max_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("expiry_warnings", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise ValueError('must be a list of durations such as ["2d", "2h", "30m"]')
        return ordered(parse_duration(item) for item in value)

    @field_validator("requires_approval", "auto_approve_within_quota", "requires_ttl",
                     mode="before")
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    @field_validator("api_calls_per_second", mode="before")
    @classmethod
    def _strict_int(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number of calls per second")
        return value

    @model_validator(mode="after")
    def _check(self) -> EnvironmentSettings:
        if self.role_arn and self.role_arn.split(":")[4] != self.account_id:
            raise ValueError(
                f"role_arn {self.role_arn} is in account {self.role_arn.split(':')[4]}, "
                f"not in this environment's account {self.account_id}"
            )
        if self.credentials == "sandbox" and not self.endpoint_url:
            raise ValueError("credentials 'sandbox' needs the sandbox's endpoint_url")
        if not self.queue:
            object.__setattr__(self, "queue", self.name)
        return self

    def lifetime(self) -> dict[str, Any]:
        """The bounds of its resources' lifetimes, as an operator writes them."""
        return {
            "max_ttl": format_duration(self.max_ttl) if self.max_ttl else None,
            "requires_ttl": self.requires_ttl,
            "expiry_warnings": (None if self.expiry_warnings is None
                                else [format_duration(d) for d in self.expiry_warnings]),
        }

    def where(self) -> dict[str, str | None]:
        """The facts that decide where a change lands (what the fingerprint covers)."""
        return {
            "account_id": self.account_id,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "role_arn": self.role_arn,
            "queue": self.queue,
        }


def parse_environments(raw: str) -> tuple[EnvironmentSettings, ...]:
    """KRP_ENVIRONMENTS: a JSON object of name -> environment; every bad entry reported."""
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(document, dict) or not document:
        raise ValueError(
            'must be a non-empty JSON object: {"alpha": {"account_id": "...", "region": "..."}}'
        )
    environments, problems = [], []
    for name, entry in document.items():
        if not isinstance(entry, dict):
            problems.append(f"{name}: must be a JSON object")
            continue
        if "name" in entry:
            problems.append(f"{name}.name: give the name as the key only")
            continue
        try:
            environments.append(EnvironmentSettings(name=name, **entry))
        except ValidationError as exc:
            problems.extend(explain(exc, {}, prefix=f"{name}."))
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(environments)


def sandbox_environments(endpoint_url: str) -> tuple[EnvironmentSettings, ...]:
    """The embedded default: two accounts in the local sandbox AWS, reached by role from
    the sandbox's own keys (so a process needs no AWS_* variables to use them)."""
    return (
        EnvironmentSettings(
            name="alpha",
            account_id="111111111111",
            region=DEFAULT_REGION,
            role_arn="arn:aws:iam::111111111111:role/krp-provisioner",
            endpoint_url=endpoint_url,
            credentials="sandbox",
        ),
        EnvironmentSettings(
            name="prod",
            account_id="222222222222",
            region=DEFAULT_REGION,
            role_arn="arn:aws:iam::222222222222:role/krp-provisioner",
            endpoint_url=endpoint_url,
            requires_approval=True,
            credentials="sandbox",
        ),
    )
