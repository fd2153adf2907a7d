"""Soak: mixed traffic for a long while, with workers killed and Redis restarted, then every delivery accounted for.

    .venv/bin/python -m bench.soak [--minutes 20] [--rate 3] [--chaos-every 60]

Two API processes and two arq workers share one database and a Redis server of this benchmark's own, against the
sandbox (three tenants on two Lucca accounts, 50 calls per 5 s each). For `--minutes`, a client sends about `--rate`
requests a second across tenants and API processes: new Softgarden hires, the same hire again, other statuses,
hires whose company matches nothing, Taleez imports and re-imports of the same candidate. Every `--chaos-every`
seconds or so, a worker is killed with SIGKILL (and restarted a few seconds later, as a supervisor would), or
Redis is stopped for a few seconds and started again (empty). A worker that exits is restarted. When the traffic
stops, every run must finish; then each accepted delivery must have exactly one outcome: one employee (created or
linked) or one explained failure, and no person may exist twice in Lucca.
Exit status: 0 when nothing is lost or duplicated, 1 otherwise.
"""

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.sandbox.demo import DEMO_API_KEY, demo_seed_payload
from bench.harness import (
    HOST,
    SOFTGARDEN_SETTINGS,
    BenchError,
    Check,
    Processes,
    Service,
    ServiceConfig,
    create_softgarden_tenant,
    exit_on_sigterm,
    expect,
    finish,
    free_port,
    prepare_state,
    print_table,
    say,
    start_api,
    start_redis,
    start_sandbox,
    start_worker,
)

BENCH = "soak"
DATABASE = "lucca_connectors_bench_soak"
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
WINDOW_SECONDS, REQUESTS_PER_WINDOW = 5, 50
# Tenant slug → sandbox Lucca account; two tenants share the first account (and its rate limit).
TENANTS = {"soak-a": "soak-1", "soak-b": "soak-2", "soak-c": "soak-1"}
FINISHED = ("succeeded", "partial", "failed")
# How often each kind of request is sent.
MIX = {"hire": 55, "duplicate": 15, "other_status": 5, "unknown_company": 5, "taleez": 15, "taleez_again": 5}
DRAIN_TIMEOUT_SECONDS = 900


@dataclass
class Sent:
    """One accepted request and what it should end as."""

    kind: str
    tenant: str
    run_id: str
    person: str | None  # the personal email of the employee it should leave in Lucca, if any


@dataclass
class Traffic:
    """What the client sent and how it was answered."""

    accepted: list[Sent] = field(default_factory=list)
    duplicates_answered: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    hires: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tenant → bodies sent
    candidates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tenant → Taleez candidates
    counter: int = 0


@dataclass
class Chaos:
    """The faults caused during the soak."""

    worker_kills: int = 0
    redis_restarts: int = 0
    worker_restarts: int = 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="how long the traffic lasts (default 20)")
    parser.add_argument("--rate", type=float, default=3.0, help="requests per second (default 3)")
    parser.add_argument("--chaos-every", type=float, default=60.0, help="mean seconds between faults (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 120 or not 0 < args.rate <= 50 or args.chaos_every < 5:
        parser.error("--minutes must be in (0, 120], --rate in (0, 50], --chaos-every at least 5")
    return args


# ----------------------------------------------------------------------------------------------------
# The client: requests of each kind, each remembered with what it should end as.


def new_hire(traffic: Traffic, tenant: str, **changes: Any) -> dict[str, Any]:
    traffic.counter += 1
    number = traffic.counter
    body = {
        "applicationId": f"soak-{tenant}-{number}",
        "firstName": f"Soak{number}",
        "lastName": f"Hire{number}",
        "email": f"soak{number}@{tenant}.example",
        "company": random.choice(["Acme Paris", "Acme Berlin"]),
        "startDate": "2027-01-04",
        **changes,
    }
    return body


def new_candidate(traffic: Traffic) -> dict[str, Any]:
    traffic.counter += 1
    number = traffic.counter
    return {"id": 900_000 + number, "firstName": f"Tal{number}", "lastName": f"Eez{number}",
            "mail": f"taleez{number}@soak.example"}  # fmt: skip


def request_for(kind: str, traffic: Traffic, tenant: str) -> tuple[str, dict[str, Any], str | None]:
    """The path, body and expected employee (personal email) of one request of `kind`."""
    hires = traffic.hires.setdefault(tenant, [])
    candidates = traffic.candidates.setdefault(tenant, [])
    if kind == "duplicate" and hires:
        body = random.choice(hires)
        return WEBHOOK_PATH, body, None
    if kind == "taleez_again" and candidates:
        candidate = random.choice(candidates)
        return f"/api/v1/tenants/{tenant}/taleez/imports", {"candidate": candidate}, candidate["mail"]
    if kind in ("taleez", "taleez_again"):
        candidate = new_candidate(traffic)
        candidates.append(candidate)
        return f"/api/v1/tenants/{tenant}/taleez/imports", {"candidate": candidate}, candidate["mail"]
    if kind == "other_status":
        return WEBHOOK_PATH, new_hire(traffic, tenant, status="interview"), None
    if kind == "unknown_company":
        return WEBHOOK_PATH, new_hire(traffic, tenant, company="Nowhere Ltd"), None
    body = new_hire(traffic, tenant)
    hires.append(body)
    return WEBHOOK_PATH, body, body["email"]


async def send_one(
    http: httpx.AsyncClient, apis: list[str], auth: dict[str, dict[str, str]], traffic: Traffic, tenant: str
) -> None:
    kind = random.choices(list(MIX), weights=list(MIX.values()))[0]
    path, body, person = request_for(kind, traffic, tenant)
    headers = auth[f"{tenant}:webhook"] if path == WEBHOOK_PATH else auth[tenant]
    # Like an ATS, resend until answered (a 5xx or a dropped connection would be retried by the sender).
    for _ in range(20):
        try:
            answer = await http.post(f"{random.choice(apis)}{path}", json=body, headers=headers)
        except httpx.TransportError:
            traffic.answers["transport error"] += 1
            await asyncio.sleep(1)
            continue
        traffic.answers[str(answer.status_code)] += 1
        if answer.status_code >= 500:
            await asyncio.sleep(1)
            continue
        break
    else:
        raise BenchError(f"{kind} to {tenant} never answered")
    if answer.status_code == 200 and answer.json().get("duplicate"):
        traffic.duplicates_answered += 1
        return
    if answer.status_code != 202:
        raise BenchError(f"{kind} to {tenant} answered {answer.status_code}: {answer.text[:300]}")
    traffic.accepted.append(Sent(kind, tenant, answer.json()["run_id"], person))


async def send_traffic(apis: list[str], auth: dict[str, dict[str, str]], args: argparse.Namespace) -> Traffic:
    traffic = Traffic()
    end = time.monotonic() + args.minutes * 60
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=30) as http:
        while time.monotonic() < end:
            task = asyncio.create_task(send_one(http, apis, auth, traffic, random.choice(list(TENANTS))))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(random.expovariate(args.rate))
        await asyncio.gather(*pending)
    return traffic


# ----------------------------------------------------------------------------------------------------
# Chaos: kill a worker, restart Redis; restart any worker that exited.


class Supervisor:
    """Keeps two workers running, and causes the faults."""

    def __init__(self, processes: Processes, config: ServiceConfig, chaos: Chaos) -> None:
        self.processes = processes
        self.config = config
        self.chaos = chaos
        self.workers = [start_worker(processes, config, f"worker-{n}") for n in (1, 2)]
        self.redis: Service | None = None
        self.started = 2

    def restart_exited(self) -> None:
        for index, worker in enumerate(self.workers):
            if not worker.alive():
                self.started += 1
                self.workers[index] = start_worker(self.processes, self.config, f"worker-{self.started}")
                self.chaos.worker_restarts += 1

    async def kill_a_worker(self) -> None:
        victim = random.choice(self.workers)
        say(f"chaos: SIGKILL {victim.name}")
        victim.process.kill()
        victim.process.wait()
        self.chaos.worker_kills += 1
        await asyncio.sleep(random.uniform(1, 5))

    async def restart_redis(self) -> None:
        assert self.redis is not None
        say("chaos: Redis stopped")
        self.redis.stop()
        await asyncio.sleep(random.uniform(3, 8))
        self.redis = start_redis(self.processes, self.config.redis_port, f"redis-{self.chaos.redis_restarts + 2}")
        self.chaos.redis_restarts += 1
        say("chaos: Redis back (empty)")

    async def run(self, until: float, every: float) -> None:
        next_fault = time.monotonic() + random.expovariate(1 / every)
        while time.monotonic() < until:
            self.restart_exited()
            if time.monotonic() >= next_fault:
                await (self.kill_a_worker() if random.random() < 0.6 else self.restart_redis())
                next_fault = time.monotonic() + random.expovariate(1 / every)
            await asyncio.sleep(1)

    async def keep_alive(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self.restart_exited()
            await asyncio.sleep(1)


# ----------------------------------------------------------------------------------------------------
# Set-up, drain, accounting.


def set_up_tenants(api: str, sandbox: str, config: ServiceConfig) -> dict[str, dict[str, str]]:
    """The sandbox accounts and the tenants with their Softgarden and Taleez connectors; their credentials."""
    auth: dict[str, dict[str, str]] = {}
    with httpx.Client(timeout=30) as http:
        for account in set(TENANTS.values()):
            seed = {**demo_seed_payload(), "window_seconds": WINDOW_SECONDS, "requests_per_window": REQUESTS_PER_WINDOW}
            http.put(f"{sandbox}/_sandbox/lucca/accounts/{account}", json=seed).raise_for_status()
        with httpx.Client(base_url=api, timeout=30) as client:
            for slug, account in TENANTS.items():
                lucca = {"base_url": f"{sandbox}/{account}", "api_key": DEMO_API_KEY,
                         "rate_limit": {"requests": REQUESTS_PER_WINDOW, "per_seconds": WINDOW_SECONDS}}  # fmt: skip
                tenant = create_softgarden_tenant(client, config, slug, lucca, SOFTGARDEN_SETTINGS)
                taleez = {**SOFTGARDEN_SETTINGS, "api_base_url": f"http://{HOST}:9/taleez", "api_secret": "unused",
                          "default_establishment_id": 1}  # fmt: skip
                put = client.put(f"/api/v1/tenants/{slug}/connectors/taleez", json={"settings": taleez},
                                 headers=tenant.auth)  # fmt: skip
                expect(put, 200, "taleez connector")
                auth[slug] = tenant.auth
                auth[f"{slug}:webhook"] = tenant.webhook_auth
    return auth


def unfinished(api: str, config: ServiceConfig) -> int:
    with httpx.Client(base_url=api, timeout=30, headers=config.admin_auth) as client:
        total = 0
        for slug in TENANTS:
            for status in ("queued", "running"):
                answer = client.get(f"/api/v1/tenants/{slug}/runs", params={"status": status, "limit": 500})
                total += len(expect(answer, 200, "runs")["items"])
        return total


async def drain(api: str, config: ServiceConfig) -> float:
    """Wait until no run is queued or running; the seconds it took."""
    start = time.monotonic()
    while (left := unfinished(api, config)) > 0:
        if time.monotonic() - start > DRAIN_TIMEOUT_SECONDS:
            raise BenchError(f"{left} runs still unfinished {DRAIN_TIMEOUT_SECONDS} s after the traffic stopped")
        await asyncio.sleep(5)
    return time.monotonic() - start


def account_for(api: str, sandbox: str, config: ServiceConfig, traffic: Traffic) -> dict[str, int]:
    """Each accepted delivery's outcome, and who is in Lucca how many times."""
    tally: Counter[str] = Counter()
    with httpx.Client(base_url=api, timeout=30, headers=config.admin_auth) as client:
        for sent in traffic.accepted:
            run = expect(client.get(f"/api/v1/tenants/{sent.tenant}/runs/{sent.run_id}"), 200, "run")
            counts = run["counts"]
            tally[f"run {run['status']}"] += 1
            if run["status"] == "failed":
                events = expect(client.get(f"/api/v1/tenants/{sent.tenant}/runs/{sent.run_id}/events"), 200, "events")
                explained = any(event["action"] == "fail" and event["message"] for event in events["items"])
                tally["failed, explained" if explained else "failed, unexplained"] += 1
            outcomes = counts["created"] + counts["linked"] + counts["skipped"] + counts["failed"]
            if outcomes != 1:
                tally["runs without exactly one outcome"] += 1
    with httpx.Client(base_url=sandbox, timeout=30) as http:
        people: Counter[str] = Counter()
        for account in set(TENANTS.values()):
            users = expect(http.get(f"/_sandbox/lucca/accounts/{account}/users"), 200, "users")["items"]
            people.update((user.get("personalEmail") or "").lower() for user in users if user.get("personalEmail"))
    expected = {sent.person.lower() for sent in traffic.accepted if sent.person}
    tally["people expected in Lucca"] = len(expected)
    tally["people missing from Lucca (lost)"] = sum(1 for person in expected if people[person] == 0)
    tally["people in Lucca more than once (duplicated)"] = sum(1 for count in people.values() if count > 1)
    return dict(tally)


async def soak(args: argparse.Namespace) -> tuple[Traffic, Chaos, dict[str, int], float]:
    config = ServiceConfig(database=DATABASE, redis_db=0, redis_port=free_port(), settings={"SWEEP_EVERY_SECONDS": "5"})
    chaos = Chaos()
    with Processes(BENCH) as processes:
        redis = start_redis(processes, config.redis_port)
        prepare_state(config)
        sandbox = start_sandbox(processes, WINDOW_SECONDS, REQUESTS_PER_WINDOW)
        apis = [start_api(processes, config, f"api-{n}").url for n in (1, 2)]
        auth = set_up_tenants(apis[0], sandbox.url, config)
        supervisor = Supervisor(processes, config, chaos)
        supervisor.redis = redis
        say(f"soak: {args.minutes:g} min at ~{args.rate:g} requests/s, a fault every ~{args.chaos_every:g} s")
        until = time.monotonic() + args.minutes * 60
        traffic, _ = await asyncio.gather(send_traffic(apis, auth, args), supervisor.run(until, args.chaos_every))
        done = asyncio.Event()
        keeper = asyncio.create_task(supervisor.keep_alive(done))
        drained = await drain(apis[0], config)
        done.set()
        await keeper
        return traffic, chaos, account_for(apis[0], sandbox.url, config, traffic), drained


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    random.seed(args.seed)
    exit_on_sigterm()
    traffic, chaos, tally, drained = asyncio.run(soak(args))
    kinds = Counter(sent.kind for sent in traffic.accepted)
    lost, duplicated = tally["people missing from Lucca (lost)"], tally["people in Lucca more than once (duplicated)"]
    unexplained = tally.get("failed, unexplained", 0) + tally.get("runs without exactly one outcome", 0)
    checks = [
        Check("requests accepted (202)", f"{len(traffic.accepted):,}"),
        Check("accepted by kind", ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))),
        Check("duplicates answered 200", f"{traffic.duplicates_answered:,}"),
        Check("answers by status", ", ".join(f"{status} {n}" for status, n in sorted(traffic.answers.items()))),
        Check("workers killed / restarted", f"{chaos.worker_kills} / {chaos.worker_restarts}"),
        Check("Redis restarts", str(chaos.redis_restarts)),
        Check("drain after traffic", f"{drained:.0f} s"),
        *(Check(name, str(count)) for name, count in sorted(tally.items()) if name.startswith("run ")),
        Check("people expected in Lucca", str(tally["people expected in Lucca"])),
        Check("lost", str(lost), "0", lost == 0),
        Check("duplicated", str(duplicated), "0", duplicated == 0),
        Check("failures unexplained / runs without one outcome", str(unexplained), "0", unexplained == 0),
    ]
    print_table(f"Soak, {args.minutes:g} min, 2 API + 2 workers, faults every ~{args.chaos_every:g} s", checks)
    results = {"options": vars(args), "tally": tally, "chaos": vars(chaos), "answers": dict(traffic.answers)}
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
