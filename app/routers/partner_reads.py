"""Routes that read a partner while the request waits (listings, previews): its failures in plain words."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.clients.http import PartnerRejected, PartnerUnavailable
from app.errors import DomainError, answers
from app.services.run_log import sentence


class PartnerRefused(DomainError):
    status_code = 502


class PartnerDown(DomainError):
    status_code = 503


def lucca_read_answers(kind: str) -> dict[int | str, dict[str, Any]]:
    """The statuses of a route that needs the `kind` connector and reads Lucca before answering."""
    return answers(
        401,
        404,
        409,
        422,
        502,
        503,
        described={
            409: f"The {kind} connector is missing or disabled.",
            502: "Lucca refused the request (its words in `detail`): check the tenant's Lucca key.",
            503: "Lucca did not answer in time, or is limiting requests: try again later.",
        },
    )


@contextmanager
def partner_answers() -> Iterator[None]:
    """A partner's failure during a request, answered in its plain words (never a 500)."""
    try:
        yield
    except PartnerUnavailable as outage:
        advice = "" if "try again" in outage.message else "; try again later"
        raise PartnerDown(f"{outage.message}{advice}.") from None
    except PartnerRejected as refusal:
        raise PartnerRefused(sentence(refusal.message)) from None
