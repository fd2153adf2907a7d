"""Check connection: does each partner of a connector accept its settings? One cheap call each, nothing changed."""

from fastapi import APIRouter, Path, Request

from app.auth import TenantDep
from app.db import SessionDep
from app.errors import answers
from app.schemas.console import ConnectorCheck
from app.services import connectors
from app.services.connector_checks import check_connector

router = APIRouter(prefix="/api/v1/tenants/{slug}/connectors", tags=["connectors"])


@router.post(
    "/{kind}/check",
    response_model=ConnectorCheck,
    responses=answers(
        401, 404, 422, described={404: "No such tenant (or one the caller may not see), kind, or connector set up."}
    ),
)
async def check_connection(
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    kind: str = Path(description="softgarden, taleez, cards or elevo.", examples=["softgarden"]),
) -> ConnectorCheck:
    """One cheap call to each partner the connector uses (Lucca, and Taleez, Cards or the SFTP server), each
    answered in plain words; nothing is changed. `ok` is true when every partner answered as it should."""
    connector = await connectors.find_connector(session, tenant, kind)
    # The partners answer slowly at worst: the session's connection is not held meanwhile.
    await session.commit()
    return await check_connector(request.app.state.services, tenant, connector)
