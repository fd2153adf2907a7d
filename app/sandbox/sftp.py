"""The sandbox's SFTP server, standing in for Elevo's: password (or key) sign-in, files written to a directory.

Its host key is generated once and kept in a file, so the demo tenant's `host_key` stays valid across restarts.
A client sees only the `root` directory (chroot): what it uploads to `/` lands in `<directory>/root/`. Tests can
make it drop the connection part-way through an upload or right after a rename, hold an upload at its first write
or after its rename until they release it, and read which renames it served (and at what size).
"""

import asyncio
import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import asyncssh

DEMO_USERNAME = "acme"
DEMO_PASSWORD = "demo-elevo-sftp-password"  # noqa: S105 (a public demo value, like the Lucca demo key)
DEFAULT_PORT = 8122
DEFAULT_DIRECTORY = Path(tempfile.gettempdir()) / "lucca-connectors-sandbox" / "sftp"
HOST_KEY_FILE = "host_key"


def host_key(directory: Path) -> asyncssh.SSHKey:
    """The server's private host key, generated on first use and kept in `directory`."""
    path = directory / HOST_KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fresh = directory / f".{HOST_KEY_FILE}.{secrets.token_hex(4)}"
        fresh.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
        fresh.chmod(0o600)
        # Two processes starting at once keep the same key: the first file in place wins.
        with contextlib.suppress(FileExistsError):
            os.link(fresh, path)
        fresh.unlink()
    return asyncssh.read_private_key(path)


def public_host_key(directory: Path) -> str:
    """The host key's public half in OpenSSH format: what a connector's `sftp.host_key` must say."""
    return host_key(directory).export_public_key().decode().strip()


@dataclass
class Hold:
    """Holds the next upload until `release()`: before its first write (`at="write"`: the file is created, empty),
    or once its rename is done, before the answer (`at="rename"`). `reached` is set when a request is held, so a
    test can act on the client stuck there (e.g. kill it)."""

    at: Literal["write", "rename"]
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class SftpFaults:
    """Faults for the next uploads; each fires once."""

    # Written bytes after which the connection of the upload in progress is dropped (the file stays partial).
    drop_after_bytes: int | None = None
    # The next rename is done, then the connection dropped before its answer: the client cannot know it happened.
    drop_after_rename: bool = False
    hold: Hold | None = None


@dataclass(frozen=True)
class Rename:
    """A rename the server served: what the file was called, what it became, and its size then."""

    source: str
    target: str
    size: int


@dataclass
class SftpSandbox:
    """One SFTP server on `host:port` (0: a free port, known once started), serving `directory / "root"`."""

    directory: Path
    host: str = "127.0.0.1"
    port: int = 0
    username: str = DEMO_USERNAME
    password: str = DEMO_PASSWORD
    # Public keys that may sign in instead of the password.
    client_keys: list[asyncssh.SSHKey] = field(default_factory=list)
    faults: SftpFaults = field(default_factory=SftpFaults)
    renames: list[Rename] = field(default_factory=list)
    _acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def root(self) -> Path:
        return self.directory / "root"

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._acceptor = await asyncssh.create_server(
            lambda: _Server(self),
            self.host,
            self.port,
            server_host_keys=[host_key(self.directory)],
            sftp_factory=lambda channel: _SftpServer(channel, self),
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

    def hold(self, at: Literal["write", "rename"]) -> Hold:
        """Hold the next upload at `at` (see `Hold`)."""
        self.faults.hold = Hold(at)
        return self.faults.hold

    def connection_settings(self, remote_dir: str = "/") -> dict[str, object]:
        """The `sftp` settings of an Elevo connector that uploads here."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "host_key": public_host_key(self.directory),
            "remote_dir": remote_dir,
        }

    def files(self, remote_dir: str = "/") -> dict[str, bytes]:
        """Every file in a directory of the server (temporary ones included), by name."""
        where = self.root / remote_dir.strip("/")
        return {path.name: path.read_bytes() for path in sorted(where.iterdir()) if path.is_file()}


class _Server(asyncssh.SSHServer):
    def __init__(self, sandbox: SftpSandbox) -> None:
        self._sandbox = sandbox

    def begin_auth(self, username: str) -> bool:
        return True  # every user signs in

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        sandbox = self._sandbox
        return secrets.compare_digest(
            f"{username}\n{password}".encode(), f"{sandbox.username}\n{sandbox.password}".encode()
        )

    def public_key_auth_supported(self) -> bool:
        return bool(self._sandbox.client_keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        keys = [known.public_data for known in self._sandbox.client_keys]
        return username == self._sandbox.username and key.public_data in keys


class _SftpServer(asyncssh.SFTPServer):
    def __init__(self, channel: asyncssh.SSHServerChannel[bytes], sandbox: SftpSandbox) -> None:
        super().__init__(channel, chroot=str(sandbox.root).encode())
        self._sandbox = sandbox
        self._written = 0

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        await self._held("write")
        faults = self._sandbox.faults
        limit = faults.drop_after_bytes
        if limit is not None and self._written + len(data) > limit:
            faults.drop_after_bytes = None
            written = super().write(file_obj, offset, data[: limit - self._written])
            assert isinstance(written, int)
            file_obj.flush()  # type: ignore[attr-defined]
            # The network goes away mid-upload: the client gets no answer to this write.
            self.channel.get_connection().abort()
            return written
        self._written += len(data)
        written = super().write(file_obj, offset, data)
        assert isinstance(written, int)
        return written

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._note(oldpath, newpath)
        super().rename(oldpath, newpath)
        await self._renamed()

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._note(oldpath, newpath)
        super().posix_rename(oldpath, newpath)
        await self._renamed()

    async def _renamed(self) -> None:
        """What a rename's faults do once it is done, before its answer."""
        faults = self._sandbox.faults
        if faults.drop_after_rename:
            faults.drop_after_rename = False
            self.channel.get_connection().abort()
            return
        await self._held("rename")

    async def _held(self, at: str) -> None:
        hold = self._sandbox.faults.hold
        if hold is not None and hold.at == at:
            self._sandbox.faults.hold = None
            hold.reached.set()
            await hold.released.wait()

    def _note(self, oldpath: bytes, newpath: bytes) -> None:
        size = os.path.getsize(self.map_path(oldpath))
        self._sandbox.renames.append(Rename(oldpath.decode(), newpath.decode(), size))


def demo_sftp(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, directory: Path = DEFAULT_DIRECTORY
) -> tuple[dict[str, object], Path]:
    """For the demo set-up: the `sftp` settings that reach the server `python -m app.sandbox` runs with these
    options (host, port, username, password, host_key, remote_dir), and the directory its uploads land in."""
    sandbox = SftpSandbox(directory, host=host, port=port)
    return sandbox.connection_settings(), sandbox.root
