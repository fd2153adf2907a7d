"""The tenant's copy of its Lucca directory, as the API shows it (CONTRACT section 13)."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WebhookStatus = Literal["active", "pending", "failed", "none"]
SyncStatus = Literal["loading", "ready", "failed", "none"]

DIRECTORY_EXAMPLE: dict[str, Any] = {
    "employees": 2483,
    "departments": 41,
    "mode": "polling",
    "last_full_sync_at": "2026-12-06T00:00:41Z",
    "last_change_at": "2026-12-06T09:12:03Z",
    "lag_seconds": 37,
    "webhook": {"status": "none", "message": None},
    "message": None,
    "notices": [],
    "sync": {"status": "ready", "progress": 2517, "run_id": "5b0c1f7e-2d1a-4c7e-9a51-0f3f6f1e2a10"},
}


class DirectoryWebhook(BaseModel):
    status: WebhookStatus = Field(description="Lucca's webhook endpoint for this tenant: `none` without one.")
    message: str | None = Field(description="Why it is pending or failed, in plain words.")


class DirectorySync(BaseModel):
    status: SyncStatus = Field(
        description="The latest full sync: `loading` while it is queued or reading, `ready` once it completed, "
        "`failed` when it ended without completing (the copy keeps what it had), `none` before any."
    )
    progress: int = Field(description="People the latest full sync has read so far.")
    run_id: uuid.UUID | None = Field(description="The latest full sync's run.")


class DirectoryRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [DIRECTORY_EXAMPLE]})

    employees: int = Field(description="People in the copy not gone from Lucca (former employees included).")
    departments: int = Field(description="Departments in the copy not gone from Lucca (archived ones included).")
    mode: Literal["webhooks", "polling"] = Field(
        description="`webhooks` while Lucca's webhook endpoint is active, else `polling`."
    )
    last_full_sync_at: datetime | None = Field(description="When the last full sync completed.")
    last_change_at: datetime | None = Field(description="When a person or department last changed in the copy.")
    lag_seconds: int | None = Field(
        description="Seconds since the copy was last known to be in line with Lucca; null before the first full sync."
    )
    webhook: DirectoryWebhook
    message: str | None = Field(
        default=None,
        description="Why the copy could not be kept fresh lately (the last poll or batch of webhook events failed), "
        "in plain words; null once the next one succeeds.",
    )
    notices: list[str] = Field(
        description="What Lucca announced about the paths the service reads (Sunset, Deprecation, 410), in plain words."
    )
    sync: DirectorySync
