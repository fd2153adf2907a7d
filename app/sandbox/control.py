"""The `/_sandbox` control API: seed accounts, inject faults and read call logs (tests, benchmarks, demo)."""

from collections import Counter
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from app.sandbox.lucca import (
    FULL_USER_FIELDS,
    Fault,
    LuccaAccount,
    LuccaAccountSeed,
    LuccaSandbox,
    UserView,
    get_lucca_sandbox,
)

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

LuccaSandboxDep = Annotated[LuccaSandbox, Depends(get_lucca_sandbox)]


def get_control_account(account: str, sandbox: LuccaSandboxDep) -> LuccaAccount:
    """The Lucca account named in the path, or 404."""
    found = sandbox.accounts.get(account)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No Lucca account '{account}' in the sandbox")
    return found


AccountDep = Annotated[LuccaAccount, Depends(get_control_account)]


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
    sandbox.accounts.pop(account, None)


@router.get("/lucca/accounts/{account}/users")
async def list_lucca_users(account: str, lucca: AccountDep, request: Request) -> dict[str, Any]:
    """Every user of the account with every field, former ones included; not rate-limited nor logged."""
    view = UserView.of(request, lucca, account)
    return {"items": [view.render(user, FULL_USER_FIELDS) for _, user in sorted(lucca.users.items())]}


@router.post("/lucca/accounts/{account}/faults", status_code=status.HTTP_204_NO_CONTENT)
async def add_lucca_faults(faults: Fault | list[Fault], lucca: AccountDep) -> None:
    """Queues one fault or a list of faults, served first come, first used."""
    lucca.faults.extend(faults if isinstance(faults, list) else [faults])


@router.delete("/lucca/accounts/{account}/faults", status_code=status.HTTP_204_NO_CONTENT)
async def clear_lucca_faults(lucca: AccountDep) -> None:
    """Drops every queued fault."""
    lucca.faults.clear()


@router.get("/lucca/accounts/{account}/calls")
async def list_lucca_calls(lucca: AccountDep) -> dict[str, Any]:
    """The calls made to the account's Lucca routes, oldest first, with a count per status."""
    by_status = Counter(str(call.status) for call in lucca.calls)
    return {"items": [asdict(call) for call in lucca.calls], "count_by_status": dict(by_status)}


@router.delete("/lucca/accounts/{account}/calls", status_code=status.HTTP_204_NO_CONTENT)
async def clear_lucca_calls(lucca: AccountDep) -> None:
    """Empties the call log (the rate-limit window is kept)."""
    lucca.calls.clear()
