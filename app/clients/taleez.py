"""Taleez API client: reads a candidate (`GET /candidates/{id}`, header `X-taleez-api-secret`)."""

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.clients.http import (
    PartnerAuthFailed,
    PartnerError,
    PartnerErrorTypes,
    PartnerHTTP,
    PartnerRejected,
    PartnerUnavailable,
    RetryPolicy,
)

PARTNER = "taleez"


class TaleezError(PartnerError):
    """Any failure talking to Taleez."""


class TaleezUnavailable(TaleezError, PartnerUnavailable):
    """Taleez kept failing (timeouts, 5xx) for longer than this call's budget."""


class TaleezRejected(TaleezError, PartnerRejected):
    """Taleez refused the call for good (unknown candidate, ...)."""


class TaleezAuthFailed(TaleezRejected, PartnerAuthFailed):
    """Taleez refused the API secret."""


TALEEZ_ERRORS = PartnerErrorTypes(unavailable=TaleezUnavailable, rejected=TaleezRejected, auth_failed=TaleezAuthFailed)


class TaleezCandidate(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: int
    first_name: str = Field(alias="firstName")
    last_name: str = Field(alias="lastName")
    mail: str | None = None
    phone: str | None = None


class TaleezClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_secret: str, *, retry: RetryPolicy) -> None:
        self._http = PartnerHTTP(
            http,
            partner=PARTNER,
            base_url=base_url,
            headers={"X-taleez-api-secret": api_secret, "Accept": "application/json"},
            retry=retry,
            errors=TALEEZ_ERRORS,
        )

    async def check_access(self) -> None:
        """The cheapest call that needs the secret accepted: one page of one candidate."""
        await self._http.request("GET", "/candidates", params={"page": "0", "pageSize": "1"})

    async def get_candidate(self, candidate_id: int) -> TaleezCandidate:
        """One candidate; an unknown id is a final TaleezRejected saying so in plain words."""
        path = f"/candidates/{candidate_id}"
        try:
            response = await self._http.request("GET", path)
        except TaleezRejected as refused:
            if refused.status == 404:
                raise TaleezRejected(PARTNER, 404, f"Taleez has no candidate {candidate_id}.") from None
            raise
        try:
            return TaleezCandidate.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            message = f"Taleez answered {path} with data this service could not read ({type(exc).__name__})"
            raise TaleezRejected(PARTNER, 502, message) from exc
