"""Alert problems as the API shows them (contract 14): what is wrong, how often, and each alert sent about it."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ProblemStatus = Literal["open", "resolved"]

PROBLEMS_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "id": "0b7f9f5e-61c4-4a43-9d55-3d1f0f3a6c21",
            "kind": "runs",
            "key": "runs:softgarden:candidate_hired",
            "source": "softgarden",
            "operation": "candidate_hired",
            "status": "open",
            "title": "Softgarden hires are failing",
            "message": "Zoë Müller: Lucca refused the new employee: Department 10 does not exist.",
            "count": 3,
            "opened_at": "2026-12-06T09:12:03Z",
            "last_seen_at": "2026-12-06T09:40:11Z",
            "resolved_at": None,
            "run_ids": {
                "first": "5b0c1f7e-2d1a-4c7e-9a51-0f3f6f1e2a10",
                "last": "9a4e2c11-7d3b-4f0e-8c61-2b5d7e9f1a34",
                "resolved_by": None,
            },
            "console_url": "https://connectors.example.com/console#/tenants/acme/runs/9a4e2c11-7d3b-4f0e-8c61-2b5d7e9f1a34",
            "alerts": [
                {
                    "channel_id": "3f2a8d6c-1b4e-4c9a-a7d2-6e5f4b3c2d1a",
                    "channel_kind": "webhook",
                    "event": "opened",
                    "status": "sent",
                    "attempts": 4,
                    "error": None,
                    "created_at": "2026-12-06T09:12:03Z",
                    "sent_at": "2026-12-06T09:12:41Z",
                    "next_attempt_at": None,
                }
            ],
        }
    ]
}


class ProblemRuns(BaseModel):
    first: uuid.UUID | None = Field(description="The run that opened the problem (null once retention removed it).")
    last: uuid.UUID | None = Field(description="The latest run that reported it.")
    resolved_by: uuid.UUID | None = Field(description="The run whose success resolved it.")


class AlertRead(BaseModel):
    channel_id: uuid.UUID
    channel_kind: Literal["email", "webhook", "slack", "teams"]
    event: Literal["opened", "reminder", "resolved"]
    status: Literal["pending", "sent", "failed"] = Field(
        description="`pending` until it reaches the channel (retried meanwhile), `failed` once retrying gave up."
    )
    attempts: int = Field(description="Attempts made so far.")
    error: str | None = Field(description="Why the last attempt failed, in plain words.")
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending alert is tried next.")


class ProblemRead(BaseModel):
    id: uuid.UUID
    kind: Literal["runs", "credentials", "lucca_webhook", "lucca_notice", "directory_lag", "schedule"]
    key: str = Field(description="What makes two reports the same problem, e.g. `runs:softgarden:candidate_hired`.")
    source: str = Field(description="The connector or partner concerned.")
    operation: str | None
    status: ProblemStatus
    title: str = Field(description="What is wrong, in plain words (the alerts' subject line).")
    message: str = Field(description="The latest reason given, in plain words.")
    count: int = Field(description="How many times it was reported while open (failed runs, refused calls…).")
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    run_ids: ProblemRuns
    console_url: str | None = Field(
        description="The console's page of its latest run (without any token); null without PUBLIC_BASE_URL."
    )
    alerts: list[AlertRead] = Field(description="Each alert about it to each channel, oldest first.")


class ProblemList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PROBLEMS_EXAMPLE]})

    items: list[ProblemRead] = Field(description="Newest first.")
