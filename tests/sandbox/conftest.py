"""Fixtures of the sandbox's own tests."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.sandbox_server import SandboxServer


@pytest.fixture
async def http(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the sandbox over HTTP, as the service's clients reach it."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        yield client
