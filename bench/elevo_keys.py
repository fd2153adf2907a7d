"""Another tenant's webhooks while one tenant PUTs hostile SFTP keys: their answer time, with and without.

    .venv/bin/python -m bench.elevo_keys [--rounds 3] [--seconds 10] [--senders 4] [--put-rate 50]

One API process (no worker: webhooks are stored and queued, nothing runs them). Tenant `victim` has a Softgarden
connector; `--senders` clients post its hires one after the other (each a new applicationId) and time each answer.
Tenant `attacker` PUTs Elevo connectors meanwhile. Rounds alternate (`--rounds` of each kind, `--seconds` long):

- **quiet**: the webhooks alone;
- **ordinary 422s**: the attacker's PUTs at `--put-rate` per second, each refused for an ordinary reason (port 0);
- **hostile keys**: the same rate of PUTs whose private key asks for more derivation than a core could do in
  minutes (2³¹ - 1 and 2⁶⁴ PBKDF2 iterations, 2³¹ which makes the `cryptography` package panic, no iterations,
  scrypt at N = 2⁴⁰, 2³² - 1 bcrypt rounds: the keys of `tests/unit/test_ssh_keys.py`);
- **keys at the limit**: the dearest keys the bounds accept (made by `openssl pkcs8 -topk8 -v2 aes-256-cbc -iter
  2000000`, PBKDF2-HMAC-SHA256), one PUT at a time, back to back: the API's one key thread always busy.

Reported: the webhooks' p50 and p99 per kind of round, and the PUTs' answers and answer times. Targets: webhooks
during hostile keys within the noise of those during ordinary 422s (p50 within 25 % + 1 ms, p99 within 50 % + 5 ms),
every hostile PUT a 422 naming `sftp.private_key` within 1 s, every webhook a 202. Needs `openssl` on the PATH.
Exit status 0 when every target holds, 1 otherwise.
"""

import argparse
import asyncio
import itertools
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncssh
import httpx

from bench.harness import (
    COMMAND_TIMEOUT_SECONDS,
    HOST,
    SOFTGARDEN_SETTINGS,
    Check,
    Processes,
    ServiceConfig,
    Tenant,
    create_connector_tenant,
    create_softgarden_tenant,
    exit_on_sigterm,
    finish,
    prepare_state,
    print_table,
    say,
    start_api,
)
from tests.unit.test_ssh_keys import HOSTILE

BENCH = "elevo_keys"
DATABASE = "lucca_connectors_bench_elevo_keys"
REDIS_DB = 13
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
UNUSED_LUCCA = {"base_url": f"http://{HOST}:9/bench", "api_key": "unused-lucca-key"}
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOWO9cY1mOOFYGf+vnwmRbsWaX7BDib2xbOoJkKD9DgF"
SFTP = {"host": "sftp.elevo.example", "username": "acme", "host_key": HOST_KEY}
KEY_SIGN_IN = {**SFTP, "password": None, "passphrase": "pw"}  # the stored password goes: a key instead
LIMIT_ITERATIONS = 2_000_000
KINDS = ("quiet", "ordinary 422s", "hostile keys", "keys at the limit")
REFUSED_WITHIN_SECONDS = 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.elevo_keys", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a round (default 10)")
    parser.add_argument("--senders", type=int, default=4, help="webhook clients, one request at a time (default 4)")
    parser.add_argument("--put-rate", type=float, default=50.0, help="attacker PUTs per second (default 50)")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 120 or not 1 <= args.senders <= 50:
        parser.error("--rounds must be 1..20, --seconds 1..120 and --senders 1..50")
    if not 1 <= args.put_rate <= 500:
        parser.error("--put-rate must be 1..500")
    return args


def key_at_the_limit() -> str:
    """An Ed25519 key encrypted by openssl with the most PBKDF2 iterations the bounds accept (passphrase `pw`)."""
    plain = asyncssh.generate_private_key("ssh-ed25519").export_private_key("pkcs8-pem")
    argv = ["openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter",
            str(LIMIT_ITERATIONS), "-passout", "pass:pw"]  # fmt: skip
    done = subprocess.run(argv, input=plain, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS, check=True)
    return done.stdout.decode()


@dataclass
class Round:
    """What one round saw: each webhook's answer time and status, each PUT's."""

    kind: str
    webhook_ms: list[float] = field(default_factory=list)
    webhook_statuses: Counter[int] = field(default_factory=Counter)
    put_ms: list[float] = field(default_factory=list)
    put_answers: Counter[str] = field(default_factory=Counter)


async def send_hires(api: httpx.AsyncClient, victim: Tenant, sender: int, until: float, seen: Round) -> None:
    for number in itertools.count():
        if time.monotonic() >= until:
            return
        body = {"applicationId": f"{seen.kind}-{sender}-{number}-{time.monotonic_ns()}", "firstName": "Quiet",
                "lastName": "Neighbour", "email": "quiet@personal.example", "company": "Acme Berlin"}  # fmt: skip
        started = time.perf_counter()
        answer = await api.post(WEBHOOK_PATH, json=body, headers=victim.webhook_auth)
        seen.webhook_ms.append((time.perf_counter() - started) * 1000)
        seen.webhook_statuses[answer.status_code] += 1


async def put_one(api: httpx.AsyncClient, attacker: Tenant, name: str, sftp: dict[str, object], seen: Round) -> None:
    started = time.perf_counter()
    answer = await api.put(
        "/api/v1/tenants/attacker/connectors/elevo", json={"settings": {"sftp": sftp}}, headers=attacker.auth
    )
    seen.put_ms.append((time.perf_counter() - started) * 1000)
    where = ".".join(map(str, answer.json()["detail"][0]["loc"][2:])) if answer.status_code == 422 else ""
    seen.put_answers[f"{name}: {answer.status_code} {where}".rstrip()] += 1


async def put_at_a_rate(
    api: httpx.AsyncClient,
    attacker: Tenant,
    bodies: dict[str, dict[str, object]],
    rate: float,
    until: float,
    seen: Round,
) -> None:
    """One PUT every 1/rate s, each in flight on its own (none waits for the previous one's answer)."""
    started, puts = time.monotonic(), []
    for number, name in enumerate(itertools.cycle(bodies)):
        due = started + number / rate
        if due >= until:
            break
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        puts.append(asyncio.create_task(put_one(api, attacker, name, bodies[name], seen)))
    await asyncio.gather(*puts)


async def put_back_to_back(api: httpx.AsyncClient, attacker: Tenant, key: str, until: float, seen: Round) -> None:
    while time.monotonic() < until:
        await put_one(
            api, attacker, f"{LIMIT_ITERATIONS:,} PBKDF2 iterations", {**KEY_SIGN_IN, "private_key": key}, seen
        )


async def one_round(args: argparse.Namespace, url: str, tenants: tuple[Tenant, Tenant], kind: str, key: str) -> Round:
    victim, attacker = tenants
    seen = Round(kind)
    until = time.monotonic() + args.seconds
    hostile: dict[str, dict[str, object]] = {
        name: {**KEY_SIGN_IN, "private_key": text} for name, text in HOSTILE.items()
    }
    ordinary: dict[str, dict[str, object]] = {"port 0": {**SFTP, "password": "pw", "private_key": None, "port": 0}}
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as api:
        work = [send_hires(api, victim, sender, until, seen) for sender in range(args.senders)]
        if kind == "ordinary 422s":
            work.append(put_at_a_rate(api, attacker, ordinary, args.put_rate, until, seen))
        elif kind == "hostile keys":
            work.append(put_at_a_rate(api, attacker, hostile, args.put_rate, until, seen))
        elif kind == "keys at the limit":
            work.append(put_back_to_back(api, attacker, key, until, seen))
        await asyncio.gather(*work)
    return seen


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class Figures:
    kind: str
    webhooks: int
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    puts: int
    put_p50_ms: float
    put_max_ms: float
    put_answers: dict[str, int]

    @classmethod
    def of(cls, kind: str, rounds: list[Round]) -> "Figures":
        mine = [seen for seen in rounds if seen.kind == kind]
        webhook_ms = [ms for seen in mine for ms in seen.webhook_ms]
        put_ms = [ms for seen in mine for ms in seen.put_ms]
        return cls(
            kind=kind,
            webhooks=len(webhook_ms),
            p50_ms=percentile(webhook_ms, 0.50),
            p99_ms=percentile(webhook_ms, 0.99),
            statuses=dict(sum((seen.webhook_statuses for seen in mine), Counter())),
            puts=len(put_ms),
            put_p50_ms=statistics.median(put_ms) if put_ms else float("nan"),
            put_max_ms=max(put_ms, default=float("nan")),
            put_answers=dict(sorted(sum((seen.put_answers for seen in mine), Counter()).items())),
        )


def run_benchmark(args: argparse.Namespace, config: ServiceConfig) -> list[Round]:
    key = key_at_the_limit()
    with Processes(BENCH) as processes:
        api = start_api(processes, config)
        with httpx.Client(base_url=api.url, timeout=30.0) as client:
            victim = create_softgarden_tenant(client, config, "victim", UNUSED_LUCCA, SOFTGARDEN_SETTINGS)
            sftp = {**SFTP, "password": "pw"}
            attacker = create_connector_tenant(client, config, "attacker", UNUSED_LUCCA, "elevo", {"sftp": sftp})
        rounds = []
        for number in range(args.rounds):
            for kind in KINDS:
                seen = asyncio.run(one_round(args, api.url, (victim, attacker), kind, key))
                say(f"round {number + 1}, {kind}: {len(seen.webhook_ms)} webhooks, p50 "
                    f"{percentile(seen.webhook_ms, 0.5):.1f} ms, p99 {percentile(seen.webhook_ms, 0.99):.1f} ms; "
                    f"{len(seen.put_ms)} PUTs")  # fmt: skip
                rounds.append(seen)
    return rounds


def evaluate(figures: dict[str, Figures]) -> list[Check]:
    ordinary, hostile, limit = figures["ordinary 422s"], figures["hostile keys"], figures["keys at the limit"]
    p50_allowed, p99_allowed = ordinary.p50_ms * 1.25 + 1, ordinary.p99_ms * 1.5 + 5
    checks = [
        Check(f"{kind}: webhooks, p50 / p99", f"{one.webhooks}, {one.p50_ms:.1f} / {one.p99_ms:.1f} ms")
        for kind, one in figures.items()
    ]
    checks += [
        Check("hostile keys vs ordinary 422s: webhook p50", f"{hostile.p50_ms:.1f} ms", f"<= {p50_allowed:.1f} ms",
              hostile.p50_ms <= p50_allowed),
        Check("hostile keys vs ordinary 422s: webhook p99", f"{hostile.p99_ms:.1f} ms", f"<= {p99_allowed:.1f} ms",
              hostile.p99_ms <= p99_allowed),
        Check("webhook answers", ", ".join(f"{status} × {count}" for kind in figures.values()
                                           for status, count in kind.statuses.items()), "202 only",
              all(set(kind.statuses) == {202} for kind in figures.values())),
    ]  # fmt: skip
    for name, one in (("ordinary 422s", ordinary), ("hostile keys", hostile), ("keys at the limit", limit)):
        answers: Counter[str] = Counter()
        for answer, count in one.put_answers.items():  # by answer, whatever the key (the JSON has each key's)
            answers[answer.split(": ", 1)[1]] += count
        checks += [
            Check(f"{name}: PUTs, answer p50 / max", f"{one.puts}, {one.put_p50_ms:.1f} / {one.put_max_ms:.1f} ms"),
            Check(f"{name}: answers", ", ".join(f"{answer} × {count}" for answer, count in answers.items())),
        ]
    refused = all(answer.endswith(": 422 sftp.private_key") for answer in hostile.put_answers)
    checks += [
        Check("hostile keys: slowest answer", f"{hostile.put_max_ms:.1f} ms", f"< {REFUSED_WITHIN_SECONDS * 1000:.0f} ms",
              hostile.puts > 0 and hostile.put_max_ms < REFUSED_WITHIN_SECONDS * 1000),
        Check("hostile keys: every answer", "422 sftp.private_key" if refused else "other answers (above)",
              "422 sftp.private_key", refused),
    ]  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB)
    prepare_state(config)
    rounds = run_benchmark(args, config)
    figures = {kind: Figures.of(kind, rounds) for kind in KINDS}
    checks = evaluate(figures)
    title = (
        f"Webhooks of one tenant while another PUTs SFTP keys: {args.rounds} rounds of each kind, {args.seconds:g} s, "
        f"{args.senders} webhook senders, {args.put_rate:g} PUTs/s"
    )
    print_table(title, checks)
    return finish(
        BENCH, checks, {"options": vars(args), "figures": {kind: one.__dict__ for kind, one in figures.items()}}
    )


if __name__ == "__main__":
    sys.exit(main())
