"""The partner sandbox in a background thread, with helpers to seed accounts and read what it saw."""

import socket
import threading
import time
import uuid
from typing import Any

import httpx
import uvicorn

from app.sandbox.app import create_sandbox_app
from app.sandbox.demo import DEMO_API_KEY, demo_cards_seed_payload, demo_seed_payload, demo_taleez_seed_payload


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SandboxServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_sandbox_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.control = httpx.Client(base_url=f"{self.url}/_sandbox", timeout=10)

    def start(self) -> None:
        self._thread.start()
        for _ in range(200):
            if self._server.started:
                return
            time.sleep(0.05)
        raise RuntimeError("the sandbox did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.control.close()

    def new_lucca_account(self, **overrides: Any) -> "LuccaAccount":
        """A fresh copy of the demo account under a unique name, so tests never share a rate window."""
        name = f"acct-{uuid.uuid4().hex[:10]}"
        seed = {**demo_seed_payload(), **overrides}
        self.control.put(f"/lucca/accounts/{name}", json=seed).raise_for_status()
        return LuccaAccount(self, name, seed["api_key"])

    def new_taleez_account(self) -> "PartnerAccount":
        """A fresh copy of the demo Taleez account (candidates 4411, 4412 and 4413, who has no mail)."""
        name = f"taleez-{uuid.uuid4().hex[:10]}"
        seed = demo_taleez_seed_payload()
        self.control.put(f"/taleez/accounts/{name}", json=seed).raise_for_status()
        return PartnerAccount(self, "taleez", name, seed["api_secret"], f"{self.url}/taleez/{name}")

    def new_cards_account(self, **overrides: Any) -> "CardsAccount":
        """A fresh copy of the demo Cards space (Claire Martin in group Mentors, trainings 501 and 502), or with
        `overrides` (users, groups, trainings, window_seconds, requests_per_window, ...) under a unique name."""
        name = f"cards-{uuid.uuid4().hex[:10]}"
        seed = {**demo_cards_seed_payload(), **overrides}
        self.control.put(f"/cards/accounts/{name}", json=seed).raise_for_status()
        return CardsAccount(self, name, seed["api_token"], seed["space_id"])


class PartnerAccount:
    """One partner account in the sandbox: its credentials, base URL, faults and call log."""

    def __init__(self, server: SandboxServer, partner: str, name: str, secret: str, base_url: str) -> None:
        self.server = server
        self.partner = partner
        self.name = name
        self.secret = secret
        self.base_url = base_url

    def calls(self) -> dict[str, Any]:
        answer = self.server.control.get(f"/{self.partner}/accounts/{self.name}/calls")
        answer.raise_for_status()
        calls: dict[str, Any] = answer.json()
        return calls

    def clear_calls(self) -> None:
        self.server.control.delete(f"/{self.partner}/accounts/{self.name}/calls").raise_for_status()

    def add_faults(self, *faults: dict[str, Any]) -> None:
        answer = self.server.control.post(f"/{self.partner}/accounts/{self.name}/faults", json=list(faults))
        answer.raise_for_status()


class LuccaAccount(PartnerAccount):
    def __init__(self, server: SandboxServer, name: str, api_key: str = DEMO_API_KEY) -> None:
        super().__init__(server, "lucca", name, api_key, f"{server.url}/{name}")
        self.api_key = api_key

    @property
    def token_url(self) -> str:
        """The account's OAuth token endpoint (the demo client `DEMO_OAUTH_CLIENT_ID` is registered)."""
        return f"{self.base_url}/connect/token"

    def users(self) -> list[dict[str, Any]]:
        answer = self.server.control.get(f"/lucca/accounts/{self.name}/users")
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the account's control routes (`/_sandbox/lucca/accounts/<name><path>`), raising on an error."""
        answer = self.server.control.request(method, f"/lucca/accounts/{self.name}{path}", **kwargs)
        answer.raise_for_status()
        return answer

    def hire(self, **fields: Any) -> dict[str, Any]:
        """Hires a person (v3 user fields; department 10 and establishment 1 unless given)."""
        body = {"legalEntityId": 1, "departmentId": 10, **fields}
        person: dict[str, Any] = self.control("POST", "/people", json=body).json()
        return person

    def change_person(self, user_id: int, **fields: Any) -> dict[str, Any]:
        """Changes a person's v3 fields (`firstName`, `mail`, `departmentId`, `dtContractEnd`, …)."""
        person: dict[str, Any] = self.control("PATCH", f"/people/{user_id}", json=fields).json()
        return person

    def delete_person(self, user_id: int) -> None:
        self.control("DELETE", f"/people/{user_id}")

    def call_counts(self) -> dict[str, Any]:
        """Calls per API surface: `v3`, `v4`, `v5`, `token`, and `token_by_client` / `v5_by_client`."""
        counts: dict[str, Any] = self.control("GET", "/call-counts").json()
        return counts


class CardsAccount(PartnerAccount):
    """A Cards space: its API base URL is `base_url`, its `X-Tenant` is `space_id`."""

    def __init__(self, server: SandboxServer, name: str, api_token: str, space_id: str) -> None:
        super().__init__(server, "cards", name, api_token, f"{server.url}/cards/{name}/v1")
        self.api_token = api_token
        self.space_id = space_id

    def connector_settings(self, **extra: Any) -> dict[str, Any]:
        """The `cards` connector's settings that reach this space (`extra` adds or overrides keys)."""
        return {"api_base_url": self.base_url, "api_token": self.api_token, "space_id": self.space_id, **extra}

    def users(self) -> list[dict[str, Any]]:
        """Every user with `groups` ([{id, name}]) and `notify` (their creation's flag, null when seeded)."""
        return self._items("users")

    def groups(self) -> list[dict[str, Any]]:
        """Every group with its `members` count."""
        return self._items("groups")

    def _items(self, kind: str) -> list[dict[str, Any]]:
        answer = self.server.control.get(f"/cards/accounts/{self.name}/{kind}")
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()["items"]
        return items
