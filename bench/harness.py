"""What every benchmark sets up the same way: its own database and Redis DB, the service's processes, a tenant.

Everything listens on 127.0.0.1 only; every wait is bounded; every process started here is stopped on the way
out (`Processes` is a context manager, and SIGTERM is turned into an exception so its exit still runs).
"""

import argparse
import asyncio
import json
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import asyncpg
import httpx
from redis import Redis
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
HOST = "127.0.0.1"
POSTGRES = ["-h", HOST, "-p", "5432", "-U", "postgres"]
# Only databases with this prefix are ever dropped.
DATABASE_PREFIX = "lucca_connectors_bench"
# Variables of the service an inherited environment must not leak into the processes started here.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ADMIN_TOKEN",
    "APP_ENV",
    "ALLOW_HTTP_UPSTREAMS",
    "PARTNER_TIMEOUT_SECONDS",
    "RETRY_BASE_SECONDS",
    "RETRY_MAX_SECONDS",
    "RETRY_IN_CALL_SECONDS",
    "GIVE_UP_AFTER_SECONDS",
    "JOB_TIMEOUT_SECONDS",
    "SWEEP_EVERY_SECONDS",
    "STRUCTURE_CACHE_SECONDS",
)
COMMAND_TIMEOUT_SECONDS = 120.0
READY_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 15.0
SOFTGARDEN_SETTINGS: dict[str, Any] = {
    "professional_email_template": "{first_name}.{last_name}@acme.fr",
    "default_department_id": 10,
    "default_role_principal_id": 55,
}


class BenchError(RuntimeError):
    """The benchmark could not be set up or run; the message says what and where to look."""


# ----------------------------------------------------------------------------------------------------
# Configuration and state: one database and one Redis DB per benchmark, wiped at the start.


@dataclass(frozen=True)
class ServiceConfig:
    """The environment of the service processes one benchmark starts."""

    database: str
    redis_db: int
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    redis_port: int = 6379
    # Service settings of this benchmark (e.g. a shorter sweep), on top of the defaults.
    settings: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.database.startswith(DATABASE_PREFIX):
            raise ValueError(f"benchmark databases are named {DATABASE_PREFIX}*, not {self.database!r}")

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:5432/{self.database}"

    @property
    def postgres_url(self) -> str:
        """The same database for asyncpg itself (no SQLAlchemy driver name)."""
        return f"postgresql://postgres@{HOST}:5432/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/{self.redis_db}"

    @property
    def admin_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def environ(self) -> dict[str, str]:
        """This process's environment without the service's own variables, plus the benchmark's."""
        inherited = {key: value for key, value in os.environ.items() if key.upper() not in SERVICE_VARIABLES}
        return {
            **inherited,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "ADMIN_TOKEN": self.admin_token,
            "APP_ENV": "development",
            "ALLOW_HTTP_UPSTREAMS": "true",
            "PYTHONUNBUFFERED": "1",
            **self.settings,
        }


def run_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Run a short command to completion (bounded), returning its output; raise with its stderr on failure."""
    done = subprocess.run(
        list(argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def prepare_state(config: ServiceConfig) -> None:
    """A freshly created and migrated database, and an empty Redis DB."""
    run_command(["dropdb", *POSTGRES, "--if-exists", "--force", config.database])
    run_command(["createdb", *POSTGRES, config.database])
    run_command([sys.executable, "-m", "alembic", "upgrade", "head"], env=config.environ())
    redis = Redis.from_url(config.redis_url, socket_timeout=10)
    try:
        redis.flushdb()
    finally:
        redis.close()


def private_state(processes: "Processes", database: str, settings: Mapping[str, str]) -> ServiceConfig:
    """A Redis server of the benchmark's own and a fresh database: a shared Redis DB may hold another benchmark's
    queue, whose workers would take this one's jobs."""
    redis_port = free_port()
    start_redis(processes, redis_port)
    config = ServiceConfig(database=database, redis_db=0, redis_port=redis_port, settings=settings)
    prepare_state(config)
    return config


def sql_value(config: ServiceConfig, query: str) -> str:
    """The single value a read-only SQL query returns, through psql."""
    return run_command(["psql", *POSTGRES, "-d", config.database, "-X", "-tAc", query]).strip()


# ----------------------------------------------------------------------------------------------------
# Processes: started on free ports, logged to files, always stopped.


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    """One process a benchmark started, with the file its output goes to."""

    name: str
    process: "subprocess.Popen[bytes]"
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 25) -> str:
        """The end of the process's output, to explain a failure."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there after the grace period; this process only."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_GRACE_SECONDS)


class Processes:
    """The processes of one benchmark run; leaving the `with` block stops them all, newest first."""

    def __init__(self, bench: str) -> None:
        self.log_dir = RESULTS_DIR / "logs" / f"{bench}-{timestamp()}"
        self.services: list[Service] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path = ROOT) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log_file:
            # A session of its own: a Ctrl-C reaches the benchmark only, which then stops its children in order.
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, process, log_path)
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        while self.services:
            self.services.pop().stop()

    def __enter__(self) -> "Processes":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()


def wait_ready(service: Service, url: str, timeout: float = READY_TIMEOUT_SECONDS, every: float = 0.2) -> None:
    """Poll `url` until it answers 200, the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    for _ in range(math.ceil(timeout / every) + 1):
        if not service.alive():
            raise BenchError(f"{service.name} exited while starting:\n{service.tail()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    raise BenchError(f"{service.name} not ready at {url} after {timeout:.0f} s:\n{service.tail()}")


@dataclass(frozen=True)
class Endpoint:
    """A started HTTP process and its base URL."""

    service: Service
    url: str


def start_api(processes: Processes, config: ServiceConfig, name: str = "api", app: str = "app.main:app") -> Endpoint:
    """One uvicorn process serving the API (or another ASGI `app`), once its /readyz answers 200."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--no-access-log"]
    service = processes.start(name, argv, config.environ())
    endpoint = Endpoint(service, f"http://{HOST}:{port}")
    wait_ready(service, f"{endpoint.url}/readyz")
    return endpoint


def start_worker(processes: Processes, config: ServiceConfig, name: str = "worker", tree: Path = ROOT) -> Service:
    """One arq worker process (it has no readiness endpoint: it starts taking jobs once connected), running the
    code of `tree` (another checkout, for a baseline measured in the same run)."""
    argv = [sys.executable, "-m", "arq", "app.workers.WorkerSettings"]
    return processes.start(name, argv, config.environ(), cwd=tree)


def worker_started(worker: Service) -> float | None:
    """Wait until the worker has connected and started (its own memory then is the baseline); its VmHWM."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while "Starting worker" not in worker.tail(50) or "redis_version" not in worker.tail(50):
        if not worker.alive() or time.monotonic() > deadline:
            raise BenchError(f"the worker did not start:\n{worker.tail()}")
        time.sleep(0.1)
    time.sleep(1.0)  # its on_startup: database and Redis pools
    return peak_memory_mb(worker)


def start_redis(processes: Processes, port: int, name: str = "redis") -> Service:
    """A Redis server of the benchmark's own (nothing kept on disk), once it answers PING."""
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    service = processes.start(name, argv, dict(os.environ))
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not service.alive():
            raise BenchError(f"{name} exited while starting:\n{service.tail()}")
        try:
            if Redis(host=HOST, port=port, socket_timeout=1).ping():
                return service
        except (OSError, RedisError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{name} did not answer on port {port}:\n{service.tail()}")


def start_sandbox(processes: Processes, window_seconds: float, requests: int, *options: str) -> Endpoint:
    """The partner sandbox with this default rate limit (and more of its command-line `options`), once it answers."""
    port = free_port()
    argv = [
        *(sys.executable, "-m", "app.sandbox", "--host", HOST, "--port", str(port)),
        *("--window-seconds", str(window_seconds), "--requests", str(requests)),
        *options,
    ]
    service = processes.start("sandbox", argv, dict(os.environ))
    endpoint = Endpoint(service, f"http://{HOST}:{port}")
    wait_ready(service, f"{endpoint.url}/_sandbox/healthz")
    return endpoint


def start_lucca_sandbox(processes: Processes, window_seconds: float, requests: int) -> Endpoint:
    """The sandbox without its demo accounts, for the benchmark's own Lucca accounts (its SFTP server, unused, on a
    free port and in a directory of its own)."""
    sftp_dir = tempfile.mkdtemp(prefix="bench-sandbox-")
    return start_sandbox(processes, window_seconds, requests, "--no-demo", "--sftp-port", "0", "--sftp-dir", sftp_dir)


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time so far of one process and of the whole machine, read from /proc (None elsewhere than Linux)."""

    at: float
    process_seconds: float | None
    machine_busy: int | None
    machine_total: int | None

    @classmethod
    def take(cls, pid: int) -> "CpuSnapshot":
        ticks = os.sysconf("SC_CLK_TCK")
        try:
            # Fields after the command name: state is field 3, utime and stime are fields 14 and 15.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            process_seconds: float | None = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            process_seconds = None
        try:
            # user nice system idle iowait irq softirq steal
            jiffies = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            busy, total = sum(jiffies) - jiffies[3] - jiffies[4], sum(jiffies)
        except (OSError, IndexError, ValueError):
            busy, total = None, None
        return cls(time.monotonic(), process_seconds, busy, total)


@dataclass(frozen=True)
class CpuUse:
    """CPU used between two snapshots: the process's seconds and share of one core, the machine's busy share."""

    process_seconds: float | None
    process_core_share: float | None
    machine_busy_share: float | None

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> "CpuUse":
        elapsed = after.at - before.at
        process = None
        if before.process_seconds is not None and after.process_seconds is not None:
            process = after.process_seconds - before.process_seconds
        machine = None
        if None not in (before.machine_busy, before.machine_total, after.machine_busy, after.machine_total):
            busy = (after.machine_busy or 0) - (before.machine_busy or 0)
            total = (after.machine_total or 0) - (before.machine_total or 0)
            machine = busy / total if total else None
        share = process / elapsed if process is not None and elapsed > 0 else None
        return cls(process, share, machine)


def people_sizes(text: str) -> list[int]:
    """An argparse type: comma-separated people counts, each 1..100,000 (an empty text: none)."""
    try:
        sizes = [int(size) for size in text.split(",") if size.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: integers, comma-separated, e.g. 2000,20000") from None
    if not all(1 <= size <= 100_000 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: each size 1..100000")
    return sizes


def run_reporting_failure(run: Callable[[], int]) -> int:
    """The benchmark's exit status; a BenchError is said in plain words (status 1) rather than as a traceback."""
    try:
        return run()
    except BenchError as error:
        say(f"benchmark failed: {error}")
        return 1


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks and `with Processes` still stop the children."""

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


# ----------------------------------------------------------------------------------------------------
# A tenant with a Softgarden connector, made through the public API as an operator would.


@dataclass(frozen=True)
class Tenant:
    slug: str
    key: str = field(repr=False)
    webhook_token: str = field(repr=False)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def webhook_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.webhook_token}"}


def expect(answer: httpx.Response, status: int, what: str) -> Any:
    """The JSON body (None when empty) of an answer with the expected status, else a BenchError quoting it."""
    if answer.status_code != status:
        raise BenchError(f"{what}: expected {status}, got {answer.status_code}: {answer.text[:500]}")
    return answer.json() if answer.content else None


def create_tenant(
    api: httpx.Client, config: ServiceConfig, slug: str, lucca: Mapping[str, Any], **tenant: Any
) -> Tenant:
    """POST the tenant as the operator (`tenant`: more of its fields, e.g. timezone); it has no connector yet."""
    body = {"slug": slug, "name": f"{slug} SAS", "lucca": dict(lucca), **tenant}
    created = expect(api.post("/api/v1/tenants", json=body, headers=config.admin_auth), 201, "create tenant")
    return Tenant(slug=slug, key=str(created["api_key"]), webhook_token="")


def create_connector_tenant(
    api: httpx.Client,
    config: ServiceConfig,
    slug: str,
    lucca: Mapping[str, Any],
    kind: str,
    settings: Mapping[str, Any],
    **tenant: Any,
) -> Tenant:
    """`create_tenant`, then PUT its enabled connector of this kind with the tenant key (`webhook_token` stays
    empty for a kind that has none)."""
    created = create_tenant(api, config, slug, lucca, **tenant)
    connector = expect(
        api.put(
            f"/api/v1/tenants/{slug}/connectors/{kind}",
            json={"enabled": True, "settings": dict(settings)},
            headers=created.auth,
        ),
        200,
        f"create {kind} connector",
    )
    return replace(created, webhook_token=str(connector.get("webhook_token") or ""))


def create_softgarden_tenant(
    api: httpx.Client, config: ServiceConfig, slug: str, lucca: Mapping[str, Any], settings: Mapping[str, Any]
) -> Tenant:
    """POST the tenant as the operator, then PUT its softgarden connector with the tenant key."""
    return create_connector_tenant(api, config, slug, lucca, "softgarden", settings)


FINISHED_STATUSES = ("succeeded", "partial", "failed")


@dataclass(frozen=True)
class RunProgress:
    """A run as it ended (or stood at the time cap), and its counts each time it was read while unfinished."""

    run: dict[str, Any]
    samples: list[dict[str, Any]]

    @property
    def finished(self) -> bool:
        return self.run["status"] in FINISHED_STATUSES

    def seconds(self) -> float | None:
        """From the run's start to its end, as the service recorded them."""
        started, ended = self.run.get("started_at"), self.run.get("finished_at")
        if not started or not ended:
            return None
        return (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()


def wait_for_run(api: httpx.Client, tenant: Tenant, run_id: str, timeout: float, every: float = 1.0) -> RunProgress:
    """Read the run through the API every `every` s until it is finished or `timeout` passes."""
    path = f"/api/v1/tenants/{tenant.slug}/runs/{run_id}"
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for _ in range(math.ceil(timeout / every) + 1):
        run: dict[str, Any] = expect(api.get(path, headers=tenant.auth), 200, "read a run")
        if run["status"] in FINISHED_STATUSES or time.monotonic() >= deadline:
            break
        samples.append({"at": time.time(), "status": run["status"], "counts": run["counts"]})
        time.sleep(every)
    return RunProgress(run, samples)


def succeeded(progress: RunProgress, what: str) -> RunProgress:
    """The run, once it is known to have succeeded; else a BenchError saying how it ended."""
    if progress.run["status"] != "succeeded":
        raise BenchError(f"{what} ended {progress.run['status']}: {progress.run['error']}")
    return progress


def full_sync(api: httpx.Client, tenant: Tenant, timeout: float) -> RunProgress:
    """Queue a full sync of the tenant's directory copy and wait for it to succeed."""
    path = f"/api/v1/tenants/{tenant.slug}/lucca/directory/sync"
    run_id = str(expect(api.post(path, headers=tenant.auth), 202, "queue a full sync")["run_id"])
    return succeeded(wait_for_run(api, tenant, run_id, timeout, every=0.5), f"the full sync of {tenant.slug}")


def first_full_sync(api: httpx.Client, tenant: Tenant, timeout: float) -> RunProgress:
    """Wait for the directory's first full sync, which enabling a connector that reads the copy queued."""
    path = f"/api/v1/tenants/{tenant.slug}/lucca/directory"
    run_id = expect(api.get(path, headers=tenant.auth), 200, "read the directory's state")["sync"]["run_id"]
    if run_id is None:
        raise BenchError(f"enabling a connector of {tenant.slug} started no full sync of the directory")
    return succeeded(
        wait_for_run(api, tenant, str(run_id), timeout, every=0.5), f"the first full sync of {tenant.slug}"
    )


def put_off_polls(config: ServiceConfig, slug: str) -> None:
    """Keep the directory's polls of this tenant off for a day: a benchmark of another run then counts that run's
    Lucca calls alone (bench.directory_freshness and bench.directory_polling measure the polls)."""
    # The slug is the benchmark's own, and slugs are `[a-z0-9-]` (the API refuses others).
    query = (
        "UPDATE directory_states SET next_poll_at = now() + interval '1 day' FROM tenants"  # noqa: S608
        f" WHERE tenants.id = directory_states.tenant_id AND tenants.slug = '{slug}' RETURNING tenants.slug"
    )
    if sql_value(config, query).splitlines()[:1] != [slug]:
        raise BenchError(f"{slug} has no directory state whose polls could be put off")


def lucca_directory(api: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    """The tenant's directory as the API shows it (its sync, webhook and mode)."""
    found: dict[str, Any] = expect(
        api.get(f"/api/v1/tenants/{tenant.slug}/lucca/directory", headers=tenant.auth), 200, "directory"
    )
    return found


def wait_for_webhook(api: httpx.Client, tenant: Tenant, timeout: float) -> None:
    """Wait until the tenant's Lucca webhook endpoint is active (registered after its first full sync)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        webhook = lucca_directory(api, tenant)["webhook"]
        if webhook["status"] == "active":
            return
        if webhook["status"] == "failed":
            raise BenchError(f"the webhook registration failed: {webhook['message']}")
        time.sleep(0.5)
    raise BenchError(f"the webhook endpoint of {tenant.slug} did not become active")


async def tenant_id_of(database_url: str, slug: str) -> Any:
    """The tenant's id (a UUID), read from the database."""
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval("SELECT id FROM tenants WHERE slug = $1 AND deleted_at IS NULL", slug)
    finally:
        await connection.close()


# ----------------------------------------------------------------------------------------------------
# Changes made in the sandbox's Lucca, and when the directory's copy holds them.


@dataclass(frozen=True)
class LuccaChange:
    """One change through the sandbox's controls: a hire (`person` None) or a change of that person's fields."""

    person: int | None
    body: dict[str, Any]


async def make_change(control: httpx.AsyncClient, account: str, change: LuccaChange) -> int:
    """Make the change in the account; the person's id (a hire's is Lucca's answer)."""
    base = f"/_sandbox/lucca/accounts/{account}/people"
    if change.person is None:
        answer = await control.post(base, json=change.body)
    else:
        answer = await control.patch(f"{base}/{change.person}", json=change.body)
    if answer.status_code not in (200, 201):
        raise BenchError(f"changing {change.person or 'a hire'}: {answer.status_code} {answer.text[:200]}")
    return int(answer.json()["id"])


class Watcher:
    """Sees changes arrive in a tenant's copy: the people whose `column` starts with `prefix` (Postgres every 50 ms).
    The column is one of the benchmark's own names, never outside input."""

    def __init__(self, connection: asyncpg.Connection, tenant_id: Any, prefix: str, column: str = "first_name") -> None:
        self.connection = connection
        self.tenant_id = tenant_id
        self.prefix = prefix
        self.query = f"SELECT lucca_id FROM directory_employees WHERE tenant_id = $1 AND {column} LIKE $2"  # noqa: S608
        self.seen: dict[int, float] = {}

    async def look(self) -> None:
        rows = await self.connection.fetch(self.query, self.tenant_id, f"{self.prefix}%")
        now = time.time()
        for row in rows:
            self.seen.setdefault(row["lucca_id"], now)


async def change_and_watch(
    control: httpx.AsyncClient,
    database_url: str,
    account: str,
    tenant_id: Any,
    changes: Sequence[LuccaChange],
    spacing: float,
    prefix: str,
    wait_seconds: float,
    column: str = "first_name",
) -> tuple[dict[int, float], dict[int, float]]:
    """Make `changes` in the account one every `spacing` s, each setting `column` to a value starting with
    `prefix`; returns when each was made (from just before its control call: the lag includes its round trip) and
    when the tenant's copy held it, by person."""
    connection = await asyncpg.connect(database_url)
    watcher = Watcher(connection, tenant_id, prefix, column)
    made: dict[int, float] = {}

    async def change_all() -> None:
        for change in changes:
            at = time.time()
            made[await make_change(control, account, change)] = at
            await asyncio.sleep(spacing)

    async def watch() -> None:
        while len(made) < len(changes) or len(watcher.seen) < len(changes):
            await watcher.look()
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(asyncio.gather(change_all(), watch()), wait_seconds + spacing * len(changes))
    except TimeoutError:
        say(f"  {len(changes) - len(watcher.seen)} change(s) never reached the copy")
    finally:
        await connection.close()
    return made, watcher.seen


# ----------------------------------------------------------------------------------------------------
# Partner traffic and process memory, as the sandbox and /proc see them.


def sandbox_calls(control: httpx.Client, partner: str, account: str) -> dict[str, Any]:
    """The sandbox's call log of one partner account: `items` (at, method, path, query, status), `count_by_status`."""
    log: dict[str, Any] = expect(control.get(f"/_sandbox/{partner}/accounts/{account}/calls"), 200, "read calls")
    return log


def seed_lucca(control: httpx.Client, account: str, seed: Mapping[str, Any]) -> None:
    """Create (or replace) a Lucca account of the sandbox with this seed."""
    expect(control.put(f"/_sandbox/lucca/accounts/{account}", json=dict(seed)), 204, f"seed Lucca account {account}")


def calls_by_route(calls: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """A call log's calls counted by `METHOD path`, the most called first."""
    return dict(Counter(f"{call['method']} {call['path']}" for call in calls).most_common())


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` 0.99 for p99) of at least one value."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def busiest_window(times: Sequence[float], seconds: float) -> int:
    """The most calls inside any `seconds`-long interval."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class BudgetUse:
    """Calls against a partner's limit (`limit` per `window_seconds`) over the span from the first to the last."""

    calls: int
    span_seconds: float
    limit: int
    window_seconds: float
    # calls / (limit x span / window): bursts at both ends can put it above 100 %.
    utilisation: float
    # calls / the most a sliding window allows in a closed span, limit x (floor(span / window) + 1): at most 100 %.
    utilisation_of_max: float
    busiest_window: int

    @classmethod
    def of(cls, times: Sequence[float], limit: int, window_seconds: float) -> "BudgetUse":
        span = max(times) - min(times) if times else 0.0
        allowed = limit * span / window_seconds
        most = limit * (math.floor(span / window_seconds) + 1)
        return cls(
            calls=len(times),
            span_seconds=span,
            limit=limit,
            window_seconds=window_seconds,
            utilisation=len(times) / allowed if allowed else 0.0,
            utilisation_of_max=len(times) / most,
            busiest_window=busiest_window(times, window_seconds),
        )


def errors_logged(service: Service) -> int:
    """Lines the process logged at level ERROR (the service's log format: `<time> ERROR <logger>: …`)."""
    try:
        text = service.log_path.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if line.split(" ", 2)[1:2] == ["ERROR"])


def peak_memory_mb(service: Service) -> float | None:
    """The process's resident-memory high-water mark (VmHWM), in MB; None off Linux or once it has exited."""
    try:
        status = Path(f"/proc/{service.process.pid}/status").read_text()
    except OSError:
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line is not None else None


# ----------------------------------------------------------------------------------------------------
# Reporting: a small table on stdout, the whole result as JSON under bench/results/.


@dataclass(frozen=True)
class Check:
    """One reported figure; `ok` is None for figures that have no target."""

    metric: str
    value: str
    target: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "MISSED", None: ""}[self.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "target": self.target, "ok": self.ok}


def say(text: str) -> None:
    """One line of the report, on standard output at once (a benchmark's report is its output)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_table(title: str, checks: Sequence[Check]) -> None:
    header = ("metric", "value", "target", "")
    rows = [header, *((c.metric, c.value, c.target, c.verdict) for c in checks)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()

    say(f"\n{title}")
    say(line(header))
    say("  ".join("-" * width for width in widths).rstrip())
    for row in rows[1:]:
        say(line(row))


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def git_state() -> dict[str, Any]:
    """The checked-out commit and the service files changed since (read-only git commands)."""
    try:
        commit = run_command(["git", "rev-parse", "--short", "HEAD"]).strip()
        changed = run_command(["git", "diff", "--name-only", "HEAD", "--", "app", "migrations"]).split()
    except (BenchError, OSError):
        return {"commit": None, "uncommitted_service_files": None}
    return {"commit": commit, "uncommitted_service_files": changed}


def code_summary() -> str:
    """One line naming the code measured, since the working tree may differ from its commit."""
    state = git_state()
    changed = state["uncommitted_service_files"]
    return f"code: commit {state['commit']}, uncommitted service files: {', '.join(changed or []) or 'none'}"


def write_results(bench: str, results: Mapping[str, Any]) -> Path:
    """Write `results` as bench/results/<bench>-<time>.json and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{bench}-{timestamp()}.json"
    document = {"bench": bench, "at": datetime.now(UTC).isoformat(), **git_state(), **machine(), **results}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def finish(bench: str, checks: Sequence[Check], results: Mapping[str, Any]) -> int:
    """Name the code measured, write the results, and turn the checks into the exit status."""
    say(code_summary())
    say(f"results: {write_results(bench, {**results, 'checks': [check.as_dict() for check in checks]})}")
    return 0 if all(check.ok is not False for check in checks) else 1
