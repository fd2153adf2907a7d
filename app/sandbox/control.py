"""The `/_sandbox` control API (Lucca, Taleez, Cards): seed accounts, inject faults and read call logs (tests, benchmarks, demo)."""

from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse

from app.sandbox.cards import CardsAccount, CardsAccountSeed, CardsSandbox, get_cards_sandbox
from app.sandbox.faults import Fault, PartnerError, Traffic
from app.sandbox.lucca_models import LuccaAccountSeed
from app.sandbox.lucca_state import LuccaAccount, LuccaSandbox, get_lucca_sandbox
from app.sandbox.lucca_v3 import FULL_USER_FIELDS, UserView
from app.sandbox.taleez import TaleezAccount, TaleezAccountSeed, TaleezSandbox, get_taleez_sandbox

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


async def control_refusal(request: Request, exc: Exception) -> JSONResponse:
    """A partner's refusal met by a control route (a bad person, an unknown id): its status and message."""
    assert isinstance(exc, PartnerError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


LuccaSandboxDep = Annotated[LuccaSandbox, Depends(get_lucca_sandbox)]
TaleezSandboxDep = Annotated[TaleezSandbox, Depends(get_taleez_sandbox)]
CardsSandboxDep = Annotated[CardsSandbox, Depends(get_cards_sandbox)]


def get_control_account(account: str, sandbox: LuccaSandboxDep, request: Request) -> LuccaAccount:
    """The Lucca account named in the path, or 404; it is reached at this server's address (its events say so)."""
    found = sandbox.accounts.get(account)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No Lucca account '{account}' in the sandbox")
    found.public_url = f"{str(request.base_url).rstrip('/')}/{account}"
    return found


AccountDep = Annotated[LuccaAccount, Depends(get_control_account)]


def get_taleez_account(account: str, sandbox: TaleezSandboxDep) -> TaleezAccount:
    """The Taleez account named in the path, or 404."""
    found = sandbox.accounts.get(account)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No Taleez account '{account}' in the sandbox")
    return found


TaleezAccountDep = Annotated[TaleezAccount, Depends(get_taleez_account)]


def get_cards_account(account: str, sandbox: CardsSandboxDep) -> CardsAccount:
    """The Cards space named in the path, or 404."""
    found = sandbox.accounts.get(account)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No Cards account '{account}' in the sandbox")
    return found


CardsAccountDep = Annotated[CardsAccount, Depends(get_cards_account)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the sandbox is up."""
    return {"status": "ok"}


@router.put("/lucca/accounts/{account}", status_code=status.HTTP_204_NO_CONTENT)
async def put_lucca_account(account: str, seed: LuccaAccountSeed, sandbox: LuccaSandboxDep) -> None:
    """Creates or wholly replaces a Lucca account: data, key, window; empty call log, no faults."""
    sandbox.replace_account(account, seed)


@router.delete("/lucca/accounts/{account}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_lucca_account(account: str, sandbox: LuccaSandboxDep) -> None:
    """Removes a Lucca account (its routes answer 404 afterwards)."""
    sandbox.remove_account(account)


@router.get("/lucca/accounts/{account}/users")
async def list_lucca_users(account: str, lucca: AccountDep, request: Request) -> dict[str, Any]:
    """Every user of the account with every field, former ones included; not rate-limited nor logged."""
    view = UserView.of(request, lucca, account)
    return {"items": [view.render(lucca.users[user_id], FULL_USER_FIELDS) for user_id in lucca.user_ids()]}


@router.put("/taleez/accounts/{account}", status_code=status.HTTP_204_NO_CONTENT)
async def put_taleez_account(account: str, seed: TaleezAccountSeed, sandbox: TaleezSandboxDep) -> None:
    """Creates or wholly replaces a Taleez account: secret, candidates; empty call log, no faults."""
    sandbox.replace_account(account, seed)


@router.delete("/taleez/accounts/{account}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_taleez_account(account: str, sandbox: TaleezSandboxDep) -> None:
    """Removes a Taleez account (its routes answer 404 afterwards)."""
    sandbox.accounts.pop(account, None)


@router.put("/cards/accounts/{account}", status_code=status.HTTP_204_NO_CONTENT)
async def put_cards_account(account: str, seed: CardsAccountSeed, sandbox: CardsSandboxDep) -> None:
    """Creates or wholly replaces a Cards space: token, space id, users, groups, trainings, window; no calls, faults."""
    sandbox.replace_account(account, seed)


@router.delete("/cards/accounts/{account}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_cards_account(account: str, sandbox: CardsSandboxDep) -> None:
    """Removes a Cards space (its routes answer 404 afterwards)."""
    sandbox.accounts.pop(account, None)


@router.get("/cards/accounts/{account}/users")
async def list_cards_users(cards: CardsAccountDep) -> dict[str, Any]:
    """Every user of the space with their groups and the `notify` flag of their creation (null when seeded)."""
    return {"items": [{**cards.record(user), "notify": user.notify} for _, user in sorted(cards.users.items())]}


@router.get("/cards/accounts/{account}/groups")
async def list_cards_groups(cards: CardsAccountDep) -> dict[str, Any]:
    """Every group of the space, with how many users are in it."""
    members = Counter(group_id for user in cards.users.values() for group_id in user.groups)
    return {"items": [{**group.model_dump(), "members": members[gid]} for gid, group in sorted(cards.groups.items())]}


def lucca_traffic(lucca: AccountDep) -> Traffic:
    """The faults and call log of the Lucca account named in the path."""
    return lucca.traffic


def taleez_traffic(taleez: TaleezAccountDep) -> Traffic:
    """The faults and call log of the Taleez account named in the path."""
    return taleez.traffic


def cards_traffic(cards: CardsAccountDep) -> Traffic:
    """The faults and call log of the Cards space named in the path."""
    return cards.traffic


def add_traffic_routes(partner: str, traffic_of: Callable[..., Traffic]) -> None:
    """Adds the same fault and call-log routes under `/{partner}/accounts/{account}` for each partner."""
    base = f"/{partner}/accounts/{{account}}"

    @router.post(f"{base}/faults", status_code=status.HTTP_204_NO_CONTENT)
    async def add_faults(faults: Fault | list[Fault], traffic: Annotated[Traffic, Depends(traffic_of)]) -> None:
        """Queues one fault or a list of faults, served first come, first used."""
        traffic.faults.extend(faults if isinstance(faults, list) else [faults])

    @router.delete(f"{base}/faults", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_faults(traffic: Annotated[Traffic, Depends(traffic_of)]) -> None:
        """Drops every queued fault."""
        traffic.faults.clear()

    @router.get(f"{base}/calls")
    async def list_calls(traffic: Annotated[Traffic, Depends(traffic_of)]) -> dict[str, Any]:
        """The calls made to the account's partner routes, oldest first, with a count per status."""
        return traffic.report()

    @router.delete(f"{base}/calls", status_code=status.HTTP_204_NO_CONTENT)
    async def clear_calls(traffic: Annotated[Traffic, Depends(traffic_of)]) -> None:
        """Empties the call log (Lucca and Cards accounts keep their rate-limit window)."""
        traffic.calls.clear()


add_traffic_routes("lucca", lucca_traffic)
add_traffic_routes("taleez", taleez_traffic)
add_traffic_routes("cards", cards_traffic)
