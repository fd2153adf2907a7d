"""Client for Elevo's SFTP server (asyncssh): the people file written under a temporary name, then renamed.

Once its rename is asked, a file may be on the server under its final name whatever the answer: an attempt that
lost the answer finds the temporary file gone (only the rename moves it) and does not send the file again, and a
process that takes over another's upload can tell the same (`settle`).

The server's host key is pinned to the configured one, nothing else is trusted (no known_hosts file, no agent, no
SSH config, no default keys). Connection errors and timeouts are retried within the run's backoff schedule like any
partner call (`RetryPolicy`), and raise the same error families, so runs handle them as they handle HTTP partners.
"""

import asyncio
import logging
import posixpath
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

import asyncssh
import httpcore

from app.clients.addresses import PublicOnlyBackend, RefusedAddress, Resolver, resolve
from app.clients.http import (
    NO_ANSWER,
    FailureStreak,
    PartnerAuthFailed,
    PartnerError,
    PartnerRejected,
    PartnerUnavailable,
    RetryPolicy,
)
from app.clients.ssh_keys import UnreadableKey, signing_key

PARTNER = "elevo"
CHUNK_BYTES = 64 * 1024
DEFAULT_PORT = 22
# A drop or a reset of the session may be the network's: tried again. Other SFTP statuses are the server's answer.
RETRYABLE_SFTP = frozenset({asyncssh.FX_FAILURE, asyncssh.FX_NO_CONNECTION, asyncssh.FX_CONNECTION_LOST})
RETRYABLE_DISCONNECTS = (asyncssh.ConnectionLost, asyncssh.ServiceNotAvailable, asyncssh.ProtocolError)

log = logging.getLogger(__name__)
# asyncssh logs every connection and SFTP request at INFO: only its warnings are worth a line.
logging.getLogger("asyncssh").setLevel(logging.WARNING)

Result = TypeVar("Result")


class ElevoError(PartnerError):
    """Any failure of a call to Elevo's SFTP server."""


class ElevoUnavailable(ElevoError, PartnerUnavailable):
    """The server kept failing (unreachable, timed out, dropped) beyond this call's retry budget."""


class ElevoRejected(ElevoError, PartnerRejected):
    """A final refusal: a host key that is not the configured one, a directory that cannot be written, ..."""


class ElevoAuthFailed(ElevoRejected, PartnerAuthFailed):
    """The server refused the username or the password/key."""


@dataclass(frozen=True)
class SftpAccount:
    """Where Elevo's SFTP server is and how to sign in (a password or a private key)."""

    host: str
    username: str
    host_key: str
    port: int = DEFAULT_PORT
    remote_dir: str = "/"
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RemoteFile:
    """An upload's two paths on the server: the file is written as `temporary`, then renamed to `final`."""

    final: str
    temporary: str


class _Retryable(Exception):
    """One attempt's failure that the next attempt may not meet; `args[0]` says what happened, in words."""


def reason_of(error: OSError) -> str:
    """Why the network gave no session, in words."""
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, socket.gaierror):
        return "name not found"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    return "could not connect"


class SftpClient:
    """Uploads files to one SFTP account, retrying transient failures within the policy."""

    def __init__(
        self,
        account: SftpAccount,
        *,
        retry: RetryPolicy,
        timeout_seconds: float,
        allow_private: bool,
        resolver: Resolver = resolve,
    ) -> None:
        self._account = account
        self._retry = retry
        self._timeout = timeout_seconds
        # Unless private addresses are allowed (sandboxes, tests), the host must resolve to public ones only.
        self._addresses = None if allow_private else PublicOnlyBackend(resolver)
        self._at = account.host if account.port == DEFAULT_PORT else f"{account.host}:{account.port}"
        self._where = f"Elevo's SFTP server at {self._at}"
        # Temporary files whose rename was asked: an attempt that lost the answer may have renamed them.
        self._renames_asked: set[str] = set()
        self._key: asyncssh.SSHKey | None = None

    async def check(self) -> None:
        """Sign in and look at the upload directory: fails (in plain words) as an upload would, sending nothing."""
        await self._with_retries(self._check_once)

    def remote_file(self, name: str) -> RemoteFile:
        """Where a file called `name` goes in the upload directory, and the temporary name it is written under."""
        directory = self._account.remote_dir
        temporary = f".{name}.{secrets.token_hex(4)}.part"
        return RemoteFile(posixpath.join(directory, name), posixpath.join(directory, temporary))

    async def upload(self, local: Path, target: RemoteFile, renaming: Callable[[], Awaitable[None]]) -> None:
        """Write `local` as `target.temporary`, then rename it to `target.final`: Elevo never sees a partial file
        under its name. `renaming` is awaited before the rename is first asked, so that the caller can note that
        from then on the file may be on the server (see `settle`)."""
        await self._with_retries(lambda: self._upload_once(local, target, renaming))

    async def settle(self, target: RemoteFile, rename_asked: bool) -> bool:
        """An upload another process began and did not see through (it died): True when the file reached its final
        name (its rename was asked and its temporary file is gone); otherwise its temporary file is removed."""
        return await self._with_retries(lambda: self._settle_once(target, rename_asked))

    async def _with_retries(self, attempt: Callable[[], Awaitable[Result]]) -> Result:
        streak = self._retry.streak or FailureStreak()
        waited = 0.0
        while True:
            try:
                return await attempt()
            except _Retryable as failure:
                description = f"{self._where} {failure.args[0]}"
            except (asyncssh.Error, OSError):
                # Lost between steps (opening the SFTP session, closing it): the network's, or the server's restart.
                description = f"{self._where} dropped the connection"
            streak.failed(datetime.now(UTC))
            delay = self._retry.wait(streak.failures)
            if waited + delay > self._retry.in_call_seconds:
                # The wait goes on in the queue (execution.postpone), from the same streak.
                raise ElevoUnavailable(PARTNER, description)
            log.warning("%s; trying again in %.2f s", description, delay)
            await asyncio.sleep(delay)
            waited += delay

    async def _check_once(self) -> None:
        async with await self._connect() as connection, connection.start_sftp_client() as sftp:
            await self._step(sftp.stat(self._account.remote_dir), "reading the upload directory")

    async def _upload_once(self, local: Path, target: RemoteFile, renaming: Callable[[], Awaitable[None]]) -> None:
        async with await self._connect() as connection, connection.start_sftp_client() as sftp:
            try:
                if target.temporary in self._renames_asked:
                    if not await self._exists(sftp, target.temporary):
                        return  # the rename went through; only its answer was lost
                else:
                    await self._write(sftp, local, target.temporary)  # over what an interrupted attempt left
                    await renaming()
                    self._renames_asked.add(target.temporary)
                await self._rename(sftp, target.temporary, target.final)
            except ElevoRejected:
                await self._remove(sftp, target.temporary)  # refused for good: nothing of it should stay
                raise

    async def _settle_once(self, target: RemoteFile, rename_asked: bool) -> bool:
        async with await self._connect() as connection, connection.start_sftp_client() as sftp:
            reached = rename_asked and not await self._exists(sftp, target.temporary)
            if not reached:
                await self._remove(sftp, target.temporary)
        return reached

    async def _connect(self) -> asyncssh.SSHClientConnection:
        """A signed-in session with the server whose host key is the configured one, and no other."""
        account = self._account
        host = await self._checked_host()
        client_keys = [await self._signing_key()] if account.private_key else None
        try:
            return await asyncssh.connect(
                host,
                account.port,
                username=account.username,
                password=account.password,
                client_keys=client_keys,
                known_hosts=([asyncssh.import_public_key(account.host_key)], [], []),
                connect_timeout=self._timeout,
                config=None,
                agent_path=None,
                gss_host=None,
                x509_trusted_certs=None,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise ElevoRejected(
                PARTNER,
                NO_ANSWER,
                f"{self._where} presented a host key that is not the configured host_key (an unknown or changed "
                "key): nothing was uploaded. Check host_key in the settings with Elevo.",
            ) from None
        except asyncssh.PermissionDenied:
            raise ElevoAuthFailed(
                PARTNER,
                NO_ANSWER,
                f"Elevo's SFTP server refused the username or password/key ({account.username} at {self._at}): "
                "nothing was uploaded.",
            ) from None
        except RETRYABLE_DISCONNECTS as exc:
            raise _Retryable(f"closed the connection ({exc.reason or 'no reason given'})") from None
        except asyncssh.DisconnectError as exc:
            raise ElevoRejected(PARTNER, NO_ANSWER, f"{self._where} ended the session: {exc.reason}.") from None
        except OSError as exc:
            raise _Retryable(f"did not answer ({reason_of(exc)})") from None

    async def _signing_key(self) -> asyncssh.SSHKey:
        """The account's private key, read once per client, off the event loop."""
        if self._key is None:
            assert self._account.private_key is not None
            try:
                self._key = await signing_key(self._account.private_key, self._account.passphrase)
            except UnreadableKey as unreadable:
                message = f"The stored sftp.{unreadable.field} cannot be used: {unreadable}. Give the key again."
                raise ElevoRejected(PARTNER, NO_ANSWER, message) from None
        return self._key

    async def _checked_host(self) -> str:
        """The address to connect to: the host itself, or one of its public addresses when only those are allowed."""
        account = self._account
        if self._addresses is None:
            return account.host
        try:
            # The check every HTTP partner call makes when it connects, for SSH.
            addresses = await self._addresses._checked_addresses(account.host, account.port, self._timeout)
        except RefusedAddress:
            message = (
                f"{self._where} was not called: its address is not public (loopback, private, link-local or reserved "
                "networks are never called). Check sftp.host in the settings."
            )
            raise ElevoRejected(PARTNER, NO_ANSWER, message) from None
        except httpcore.ConnectTimeout:
            raise _Retryable("did not answer (timed out resolving its name)") from None
        except httpcore.ConnectError:
            raise _Retryable("did not answer (name not found)") from None
        return addresses[0]

    async def _step(self, operation: Awaitable[Result], doing: str) -> Result:
        """One SFTP request within the timeout; its failure in words (final unless it may be the network's)."""
        try:
            return await asyncio.wait_for(operation, self._timeout)
        except asyncssh.SFTPError as exc:
            if exc.code in RETRYABLE_SFTP:
                raise _Retryable(f"failed while {doing} ({exc.reason or 'connection lost'})") from None
            words = f"{self._where} refused {doing} in {self._account.remote_dir} ({exc.reason})"
            raise ElevoRejected(
                PARTNER, NO_ANSWER, f"{words}. Check sftp.remote_dir and the account's rights."
            ) from None
        except TimeoutError:
            raise _Retryable(f"did not answer while {doing} (timed out)") from None
        except (asyncssh.Error, OSError):
            raise _Retryable(f"dropped the connection while {doing}") from None

    async def _write(self, sftp: asyncssh.SFTPClient, local: Path, remote: str) -> None:
        source: IO[bytes] = await asyncio.to_thread(local.open, "rb")
        try:
            target = await self._step(sftp.open(remote, "wb"), "creating the file")
            while chunk := await asyncio.to_thread(source.read, CHUNK_BYTES):
                await self._step(target.write(chunk), "writing the file")
            await self._step(target.close(), "closing the file")
        finally:
            await asyncio.to_thread(source.close)

    async def _rename(self, sftp: asyncssh.SFTPClient, temporary: str, final: str) -> None:
        """The file appears under its final name complete, at once (replacing one of the same name, when the server
        can: a file uploaded earlier in the same second, which this one follows)."""
        try:
            await self._step(sftp.posix_rename(temporary, final), "renaming the file")
        except ElevoRejected:
            await self._step(sftp.rename(temporary, final), "renaming the file")

    async def _exists(self, sftp: asyncssh.SFTPClient, path: str) -> bool:
        found: bool = await self._step(sftp.exists(path), "looking for the temporary file")
        return found

    async def _remove(self, sftp: asyncssh.SFTPClient, path: str) -> None:
        """Remove a temporary file if it is there; a failure only leaves it (its name is never read as a file)."""
        try:
            await asyncio.wait_for(sftp.remove(path), self._timeout)
        except (asyncssh.Error, OSError) as exc:
            log.info("could not remove the temporary file %s (%s)", path, type(exc).__name__)
