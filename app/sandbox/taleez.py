"""In-memory Taleez accounts and the router that answers like Taleez's API (`https://api.taleez.com/0`).

An account's base URL is `http://<sandbox>/taleez/{account}`. Only candidate reads are emulated.
"""

import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.sandbox.faults import ErrorStyle, PartnerError, RouteHandler, Traffic, gated_route_class

AUTH_HEADER = "X-taleez-api-secret"
# Taleez documents no default nor maximum page size; Pipedream asks for 1000 per page, so that must work.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class TaleezError(PartnerError):
    """A Taleez refusal: answered with `status` and `{"status": ..., "message": message}`."""


# ----------------------------------------------------------------------------------------------------
# Data model: Taleez objects are camelCase on the wire and snake_case here.


class TaleezModel(BaseModel):
    """Base of the Taleez objects an account holds."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Location(TaleezModel):
    """A candidate's address."""

    country: str | None = None
    lat: float | None = None
    lng: float | None = None
    city: str | None = None
    postal_code: str | None = None
    street: str | None = None
    street_number: str | None = None


class Candidate(TaleezModel):
    """A Taleez candidate; `properties` are the company's custom fields (`{id, internal, apiKey, value(s)}`)."""

    id: int
    date_creation: int = Field(default_factory=lambda: int(time.time()))  # epoch seconds
    first_name: str
    last_name: str
    mail: str | None = None
    phone: str | None = None
    cv: str | None = None
    lang: str | None = None
    social_links: list[dict[str, Any]] = []
    unit_id: int | None = None
    properties: list[dict[str, Any]] = []
    location: Location | None = None

    def record(self) -> dict[str, Any]:
        """The candidate as Taleez returns it; unset values are left out (so a missing mail is absent)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class TaleezAccountSeed(BaseModel):
    """The body of `PUT /_sandbox/taleez/accounts/{account}`: an account's whole state."""

    model_config = ConfigDict(extra="forbid")

    api_secret: str = Field(min_length=1)
    candidates: list[Candidate] = []


@dataclass
class TaleezAccount:
    """One emulated Taleez company."""

    api_secret: str
    candidates: dict[int, Candidate]
    traffic: Traffic = field(default_factory=Traffic)

    def is_authorized(self, secret: str | None) -> bool:
        """Checks the `X-taleez-api-secret` header."""
        return secret is not None and secrets.compare_digest(secret.encode(), self.api_secret.encode())


@dataclass
class TaleezSandbox:
    """Every emulated Taleez account of one sandbox process, by name."""

    accounts: dict[str, TaleezAccount] = field(default_factory=dict)

    def replace_account(self, name: str, seed: TaleezAccountSeed) -> TaleezAccount:
        """Creates or wholly replaces an account: new candidates, empty call log, no faults."""
        account = TaleezAccount(seed.api_secret, {candidate.id: candidate for candidate in seed.candidates})
        self.accounts[name] = account
        return account


def get_taleez_sandbox(request: Request) -> TaleezSandbox:
    """The Taleez state of the app serving this request."""
    return taleez_sandbox_of(request.app)


def taleez_sandbox_of(app: FastAPI) -> TaleezSandbox:
    """The Taleez state `create_sandbox_app` put on the app."""
    sandbox = app.state.taleez
    assert isinstance(sandbox, TaleezSandbox)
    return sandbox


# ----------------------------------------------------------------------------------------------------
# Every Taleez call goes through the same gate: account, secret, faults, call log (no rate limit is documented).


def taleez_error(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    """An error as a JSON body with a message (Taleez's exact error shape is not documented)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return JSONResponse({"status": status, "message": message}, status_code=status, headers=headers)


TALEEZ_ERRORS = ErrorStyle(taleez_error)


async def answer_call(account: TaleezAccount, request: Request, serve: RouteHandler) -> Response:
    """Checks the secret, then serves the call or the fault injected for it."""
    if not account.is_authorized(request.headers.get(AUTH_HEADER)):
        return taleez_error(401, f"Missing or invalid API secret: send '{AUTH_HEADER}: <secret>'")
    fault = account.traffic.take_fault(request.method, request.url.path)
    return await TALEEZ_ERRORS.answer(request, serve, fault)


async def guard_call(request: Request, serve: RouteHandler) -> Response:
    """Finds the account, answers the call and logs it with its status."""
    name = request.path_params["account"]
    account = taleez_sandbox_of(request.app).accounts.get(name)
    if account is None:
        return taleez_error(404, f"Unknown Taleez account '{name}'")
    path = request.url.path.removeprefix(f"/taleez/{name}")
    return await account.traffic.logged(request, path, answer_call(account, request, serve))


# A Taleez endpoint: authenticated, fault-injected and logged per account.
TaleezRoute = gated_route_class(guard_call)


def get_account(request: Request, account: str) -> TaleezAccount:
    """The account named in the path (the gate already checked that it exists)."""
    found = taleez_sandbox_of(request.app).accounts.get(account)
    if found is None:
        raise TaleezError(404, f"Unknown Taleez account '{account}'")
    return found


AccountDep = Annotated[TaleezAccount, Depends(get_account)]


def select_candidates(account: TaleezAccount, mails: list[str]) -> list[Candidate]:
    """The account's candidates by id; only those with one of `mails` (ignoring case) when some are given."""
    wanted = {mail.casefold() for mail in mails}
    candidates = [candidate for _, candidate in sorted(account.candidates.items())]
    if not wanted:
        return candidates
    return [candidate for candidate in candidates if (candidate.mail or "").casefold() in wanted]


# ----------------------------------------------------------------------------------------------------
# Routes.

router = APIRouter(prefix="/taleez/{account}", route_class=TaleezRoute, tags=["taleez"])


@router.get("/candidates")
async def list_candidates(
    taleez: AccountDep,
    page: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    mail: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    """Candidates by id, `?page=` (from 0) and `?pageSize=`, optionally `?mail=`: `{"list": [...], "hasMore": bool}`."""
    found = select_candidates(taleez, mail or [])
    start = page * page_size
    records = [candidate.record() for candidate in found[start : start + page_size]]
    return JSONResponse({"list": records, "hasMore": start + page_size < len(found)})


@router.get("/candidates/{candidate_id}")
async def get_candidate(candidate_id: int, taleez: AccountDep) -> JSONResponse:
    """One candidate, the object itself (no envelope)."""
    candidate = taleez.candidates.get(candidate_id)
    if candidate is None:
        raise TaleezError(404, f"Candidate {candidate_id} not found")
    return JSONResponse(candidate.record())
