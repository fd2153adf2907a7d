"""Whether a credential opens the partner account it names, as every process knows it through Redis.

A partner account's shared state (its rate-limit window, its caches, the locks of work on it) is keyed by what a
tenant configures: a base URL, a space id, which may name another tenant's account. So that state is shared only by
credentials the account has accepted: a 2xx answer to an authenticated call proves a credential for
`PROOF_SECONDS` (each client that sees it accepted again extends that), and a 401 or 403 forgets it at once. Until
then a credential has keys of its own, so it can neither fill, hold nor read another tenant's (contract section 2).
"""

import hashlib

from redis.asyncio import Redis

PROOF_SECONDS = 3600


class AccountAccess:
    """One credential's standing with one partner account; a client (one job attempt, or one request) holds one."""

    def __init__(self, redis: Redis, partner: str, account: str, credential: str) -> None:
        self.account = account
        digest = hashlib.sha256(f"{partner}\n{account}\n{credential}".encode()).hexdigest()[:32]
        self._own = f"{account}#{digest}"
        self._proof = f"proven:{partner}:{account}:{digest}"
        self._redis = redis
        self._proven: bool | None = None  # as this client last saw it; None: not asked yet
        self._extended = False

    async def proven(self) -> bool:
        """Whether the account has accepted this credential (asked of Redis once per client)."""
        if self._proven is None:
            self._proven = bool(await self._redis.exists(self._proof))
        return self._proven

    async def scope(self) -> str:
        """The key of the shared state this credential may use: the account's once proven, else its own."""
        return self.account if await self.proven() else self._own

    async def accepted(self) -> None:
        """The account answered this credential with a 2xx: proven, for every process."""
        if not self._extended:
            await self._redis.set(self._proof, "1", ex=PROOF_SECONDS)
            self._extended = True
        self._proven = True

    async def refused(self) -> None:
        """The account refused this credential (401/403): nothing of the account's is shared with it any more."""
        await self._redis.delete(self._proof)
        self._proven = False
        self._extended = False
