"""Client-credentials tokens for Lucca's OAuth API (contract section 4), shared by every process through Redis.

One token serves every process for one (OAuth client, Lucca account, scopes) until shortly before it expires. It is
kept in Redis encrypted, with when to renew it; when it is missing or due, one process asks for a new one under a
short Redis lock while the others wait for it to be stored. Token requests go to the token URL, not to the account,
so they do not count in the account's rate limit.
"""

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import InvalidToken
from redis.asyncio import Redis

from app.clients.http import PartnerHTTP, RetryPolicy, host_of, partner_message
from app.clients.lucca import LUCCA_ERRORS, PARTNER, LuccaAuthFailed, LuccaRejected, LuccaUnavailable, account_key
from app.crypto import SecretBox

DEFAULT_TOKEN_URL = "https://accounts.world.luccasoftware.com/connect/token"  # noqa: S105 (a URL)
# Renewed this long before it expires (half its lifetime when that is shorter).
RENEW_BEFORE_SECONDS = 60
# The lock of a token request: longer than one request may take (the partner timeout), short enough that a
# process that died holding it delays the others little.
LOCK_SECONDS = 30
WAIT_SECONDS = LOCK_SECONDS + 5
POLL_SECONDS = 0.05
UNSAID_LIFETIME_SECONDS = 300
MAX_LIFETIME_SECONDS = 86_400  # a token claiming longer is renewed daily anyway
# Deletes a key only while it still holds the given value (a lock we own, a token others have not replaced yet).
DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
REFUSED_STATUSES = frozenset({400, 401, 403})


@dataclass(frozen=True)
class OAuthClient:
    """A tenant's client of Lucca's OAuth API, as declared in Lucca's integration keys."""

    client_id: str
    client_secret: str = field(repr=False)
    token_url: str = DEFAULT_TOKEN_URL


@dataclass(frozen=True)
class StoredToken:
    token: str
    renew_at: float  # epoch seconds


class LuccaTokens:
    """The tokens of one OAuth client for one Lucca account and set of scopes, shared by every process."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        redis: Redis,
        box: SecretBox,
        client: OAuthClient,
        base_url: str,
        scopes: Sequence[str],
        retry: RetryPolicy,
    ) -> None:
        self.client = client
        self.scopes = tuple(sorted(set(scopes)))
        # The secret is part of the key: a tenant naming another's client id with a wrong secret never gets its token.
        identity = "\n".join(
            (client.token_url, client.client_id, client.client_secret, account_key(base_url), " ".join(self.scopes))
        )
        self._key = f"lucca:token:{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
        self._lock = f"{self._key}:lock"
        self._redis = redis
        self._box = box
        parts = urlsplit(client.token_url)
        # One attempt per request (no in-process retries): the lock must outlive it; a failure goes back to the job.
        self._http = PartnerHTTP(
            http,
            partner=PARTNER,
            base_url=f"{parts.scheme}://{parts.netloc}",
            headers={"Accept": "application/json"},
            retry=replace(retry, in_call_seconds=0, streak=None),
            errors=LUCCA_ERRORS,
        )
        self._path = parts.path or "/"
        self._where = f"Lucca's token service at {host_of(client.token_url)}"

    async def token(self) -> str:
        """A token good for a while yet: the stored one, else a new one (one request in flight across processes)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            stored = await self._stored()
            if stored is not None and stored.renew_at > time.time():
                return stored.token
            owner = secrets.token_hex(8)
            if await self._redis.set(self._lock, owner, nx=True, ex=LOCK_SECONDS):
                try:
                    stored = await self._stored()  # stored by another process between the read and the lock
                    if stored is not None and stored.renew_at > time.time():
                        return stored.token
                    return await self._request()
                finally:
                    await self._redis.eval(DELETE_IF_SAME, 1, self._lock, owner)  # type: ignore[misc]
            if time.monotonic() > deadline:
                message = f"{self._where} did not give another process a token within {WAIT_SECONDS} s"
                raise LuccaUnavailable(PARTNER, message, retry_after=5.0)
            await asyncio.sleep(POLL_SECONDS)

    async def renew(self, refused: str) -> str:
        """A fresh token after Lucca refused `refused` (401): forgotten unless another process replaced it already."""
        raw = await self._redis.get(self._key)
        stored = None if raw is None else self._decode(raw)
        if raw is not None and (stored is None or stored.token == refused):
            await self._redis.eval(DELETE_IF_SAME, 1, self._key, raw)  # type: ignore[misc]
        return await self.token()

    async def _stored(self) -> StoredToken | None:
        raw = await self._redis.get(self._key)
        return None if raw is None else self._decode(raw)

    def _decode(self, raw: bytes | str) -> StoredToken | None:
        """The stored token; None when it cannot be read (stored under another SECRET_KEY): a new one is asked."""
        try:
            value = self._box.decrypt_json(raw.decode() if isinstance(raw, bytes) else raw)
            return StoredToken(token=str(value["token"]), renew_at=float(value["renew_at"]))
        except (InvalidToken, KeyError, TypeError, ValueError):
            return None

    async def _request(self) -> str:
        """Ask the token URL for a token (form-encoded client-credentials grant) and store it for every process."""
        response = await self._ask(self.scopes)
        if response.status_code in REFUSED_STATUSES:
            raise await self._refusal(response)
        try:
            body = response.json()
            # `expires_in` is only RECOMMENDED (RFC 6749): without it the token is kept a few minutes.
            token, lifetime = str(body["access_token"]), float(body.get("expires_in") or UNSAID_LIFETIME_SECONDS)
            if not (token and math.isfinite(lifetime) and lifetime > 0):
                raise ValueError("no token")
        except (AttributeError, KeyError, TypeError, ValueError):
            raise LuccaRejected(PARTNER, 502, f"{self._where} answered with no token this service can read") from None
        lifetime = min(lifetime, MAX_LIFETIME_SECONDS)
        renew_at = time.time() + lifetime - min(RENEW_BEFORE_SECONDS, lifetime / 2)
        stored = self._box.encrypt_json({"token": token, "renew_at": renew_at})
        await self._redis.set(self._key, stored, ex=max(1, int(lifetime)))
        return token

    async def _ask(self, scopes: Sequence[str]) -> httpx.Response:
        """One token request (form-encoded client-credentials grant); a refusal is returned, not raised."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client.client_id,
            "client_secret": self.client.client_secret,
            "scope": " ".join(scopes),
        }
        return await self._http.request("POST", self._path, data=form, own_statuses=REFUSED_STATUSES)

    async def _missing_scopes(self) -> list[str]:
        """Which scopes the client may not have, each asked alone (only once Lucca refused them together, which
        does not say which one it refused); all of them when none is refused alone."""
        if len(self.scopes) == 1:
            return list(self.scopes)
        missing = [scope for scope in self.scopes if oauth_error(await self._ask((scope,)))[0] == "invalid_scope"]
        return missing or list(self.scopes)

    async def _refusal(self, response: httpx.Response) -> LuccaAuthFailed:
        """A refused client or scope, in words that name it."""
        error, said = oauth_error(response)
        client = f"OAuth client {self.client.client_id!r}"
        if error == "invalid_scope":
            missing = await self._missing_scopes()
            which = f"the scope {missing[0]}" if len(missing) == 1 else f"the scopes {', '.join(missing)}"
            message = f"Lucca refused {client} {which} ({said}): give the client {which} in Lucca's integration keys."
        elif error in ("invalid_client", "unauthorized_client") or response.status_code == 401:
            message = (
                f"Lucca refused {client} ({said}): check its client_id and client_secret (Lucca's integration keys)."
            )
        else:
            message = f"{self._where} refused a token for {client} (HTTP {response.status_code}): {said}"
        return LuccaAuthFailed(PARTNER, response.status_code, message)


def oauth_error(response: httpx.Response) -> tuple[str | None, str]:
    """The OAuth error code of a refused token request (RFC 6749 5.2), and the partner's words about it."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    return (error if isinstance(error, str) else None), partner_message(response)
