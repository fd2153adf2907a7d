"""The sandbox application: local stand-ins for the partner APIs, plus its control API."""

from fastapi import FastAPI

from app.sandbox import (
    cards,
    control,
    lucca_control,
    lucca_oauth,
    lucca_state,
    lucca_v3,
    lucca_v4,
    lucca_v5,
    lucca_webhooks,
    taleez,
)
from app.sandbox.faults import PartnerError


def create_sandbox_app(window_seconds: float = 60.0, requests_per_window: int = 50) -> FastAPI:
    """A sandbox with no accounts; new Lucca accounts get this rate limit unless their seed sets one."""
    app = FastAPI(
        title="lucca-connectors partner sandbox",
        description=(
            "Emulates partner APIs in memory. Lucca accounts live under `/{account}`, "
            "Taleez accounts under `/taleez/{account}`, Cards spaces under `/cards/{account}/v1`."
        ),
    )
    app.state.lucca = lucca_state.LuccaSandbox(window_seconds, requests_per_window)
    app.state.taleez = taleez.TaleezSandbox()
    app.state.cards = cards.CardsSandbox()
    # The control, Taleez and Cards routes go first: Lucca's `/{account}/...` must never capture them.
    app.add_exception_handler(PartnerError, control.control_refusal)
    app.include_router(control.router)
    app.include_router(lucca_control.router)
    app.include_router(taleez.router)
    app.include_router(cards.router)
    app.include_router(lucca_v3.router)
    app.include_router(lucca_v4.router)
    app.include_router(lucca_oauth.router)
    app.include_router(lucca_v5.router)
    app.include_router(lucca_webhooks.router)
    return app
