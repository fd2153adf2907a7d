"""What an alert says, whatever the channel: every sender renders this and nothing else."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Event = Literal["opened", "reminder", "resolved", "test"]


@dataclass(frozen=True)
class AlertMessage:
    # The delivery's id: the webhook's `webhook-id`, the same on every retry (receivers deduplicate on it).
    id: uuid.UUID
    event: Event
    tenant_slug: str
    tenant_name: str
    problem_id: uuid.UUID | None  # None for a test
    kind: str  # the problem's kind: runs | credentials | lucca_webhook | lucca_notice | directory_lag | schedule | test
    source: str  # the connector or partner concerned
    # Plain words, no secret, no personal data beyond the name of the person a failure concerns.
    title: str  # "Softgarden hires are failing" (with the event, it makes the e-mail's subject line)
    message: str  # the latest reason, e.g. the run's error
    count: int
    opened_at: datetime
    resolved_at: datetime | None
    # The console's page of the run (or of the problem), without any token; None without PUBLIC_BASE_URL.
    console_url: str | None
