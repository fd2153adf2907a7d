"""Runs and their events, as the API shows them."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

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


class RunAccepted(BaseModel):
    run_id: uuid.UUID


class WebhookAccepted(BaseModel):
    run_id: uuid.UUID
    duplicate: bool = Field(description="True when this delivery was seen before; run_id is then the first run.")
