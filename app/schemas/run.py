"""Runs and their events, as the API shows them."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StrictStr,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.schemas.common import RequestBody
from app.schemas.connector import KINDS

RunStatus = Literal["queued", "running", "succeeded", "partial", "failed"]
COUNT_KEYS = ("total", "created", "linked", "updated", "skipped", "suspended", "failed")


class RunCounts(BaseModel):
    total: int = 0
    created: int = 0
    linked: int = 0
    updated: int = 0
    skipped: int = 0
    suspended: int = 0
    failed: int = 0
    # Only the directory's full sync (`directory_sync`) has these; other runs' counts keep their shape.
    added: int | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="directory_sync only: people new to the copy (`updated`: people changed in it).",
    )
    gone: int | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="directory_sync only: people no longer in Lucca, marked gone after a complete read.",
    )


class RunRead(BaseModel):
    id: uuid.UUID
    connector: str
    operation: str
    trigger: str
    status: RunStatus
    counts: RunCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    retry_of: uuid.UUID | None = Field(description="The run this one retries, if it is a retry.")
    retried_by: uuid.UUID | None = Field(
        description="The latest run that redid this run's work (a retry of it or of its retries), if any."
    )


class RunList(BaseModel):
    items: list[RunRead]


class RunEventRead(BaseModel):
    at: datetime
    level: Literal["info", "warning", "error"]
    subject: str
    action: Literal["create", "link", "update", "skip", "suspend", "fail", "note"]
    message: str


class RunEventList(BaseModel):
    items: list[RunEventRead]
    next: str | None = Field(
        description="Pass it as `after` for the next page; null once the run is finished and every event was given "
        "(while it runs, the next page may be empty: ask again later)."
    )


class FailureCounts(BaseModel):
    since: datetime = Field(description="Seven days before the answer.")
    connectors: dict[str, int] = Field(
        description="Runs created since then that failed, per connector (every connector named, 0 included)."
    )


class RunAccepted(BaseModel):
    run_id: uuid.UUID


class WebhookAccepted(BaseModel):
    run_id: uuid.UUID
    duplicate: bool = Field(description="True when this delivery was seen before; run_id is then the first run.")


def iso_text(value: Any) -> Any:
    """A moment is an ISO 8601 string (pydantic alone would also take a number of seconds)."""
    if not isinstance(value, str):
        raise ValueError("write the moment as an ISO 8601 string with its time zone, e.g. 2026-12-01T08:00:00+01:00")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(iso_text)]


# Runs' connectors: the connector kinds, and `lucca` for the work of the tenant's Lucca account (the directory).
RUN_CONNECTORS = (*KINDS, "lucca")


def known_kind(value: str) -> str:
    if value not in RUN_CONNECTORS:
        raise ValueError(f"must be one of {', '.join(RUN_CONNECTORS)}")
    return value


ConnectorName = Annotated[
    StrictStr, AfterValidator(known_kind), Field(json_schema_extra={"enum": list(RUN_CONNECTORS)})
]


class RetryFailed(RequestBody):
    since: Moment = Field(description="Retry the runs created from this moment on (ISO 8601, with its time zone).")
    until: Moment | None = Field(default=None, description="…and before this one (after `since`); default: now.")
    connector: ConnectorName | None = Field(default=None, description="Only this connector's runs.")

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if until is not None and since is not None and until <= since:
            raise ValueError("must be after since")
        return until


RETRY_FAILED_EXAMPLES = {
    "a day": {"since": "2026-12-01T00:00:00+01:00"},
    "a window of one connector": {
        "since": "2026-12-01T08:00:00+01:00",
        "until": "2026-12-01T12:00:00+01:00",
        "connector": "softgarden",
    },
}


class RunsAccepted(BaseModel):
    run_ids: list[uuid.UUID] = Field(description="The new runs, one per run retried, oldest first.")
