"""Webhook ingestion on ONE API process, no worker: how many new hires per second it stores durably.

    .venv/bin/python -m bench.webhook_ingest [--duration 20] [--connections 50] [--rounds 5]

wrk first loads `GET /healthz` (the process's ceiling), then, in alternating rounds, the floor (`bench/floor_app.py`:
token lookup, idempotent insert, commit, enqueue with raw asyncpg on plain uvicorn, nothing else) and the service's
webhook: alternating, so a slower spell of a shared machine weighs on both. The targets hold for the median round.
Every request carries a new `applicationId`: each one is the full work of a new delivery and must be answered 202.
Afterwards the `deliveries` rows of the webhook's runs are counted in Postgres and compared with the 202s wrk saw.
Exit status: 0 when every target and check holds, 1 when one is missed, 2 when wrk is missing.
"""

import argparse
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.harness import (
    HOST,
    SOFTGARDEN_SETTINGS,
    BenchError,
    Check,
    CpuSnapshot,
    CpuUse,
    Processes,
    Service,
    ServiceConfig,
    Tenant,
    create_softgarden_tenant,
    exit_on_sigterm,
    finish,
    prepare_state,
    print_table,
    say,
    sql_value,
    start_api,
)

BENCH = "webhook_ingest"
DATABASE = "lucca_connectors_bench_ingest"
REDIS_DB = 5
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
TARGET_RATIO = 0.8  # of the floor
TARGET_P99_MS = 100.0
# Nothing listens there: no worker runs, so Lucca is never called.
UNUSED_LUCCA = {"base_url": f"http://{HOST}:9/bench", "api_key": "unused-lucca-key"}
# Seconds left for requests still in flight when wrk stops to commit before rows are counted.
SETTLE_SECONDS = 3.0

LUA_SCRIPT = """
-- Every request is a new hire: applicationId = run prefix, thread number, request number.
local prefix = "%(prefix)s"
local token = "%(token)s"
local first_name = "%(first_name)s"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

function init(args)
  sent, answered, accepted, non2xx, first_error = 0, 0, 0, 0, ""
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
end

function request()
  sent = sent + 1
  local id = string.format("%%s-%%d-%%d", prefix, thread_id, sent)
  local body = string.format(
    '{"applicationId":"%%s","firstName":"%%s","lastName":"Hire %%d %%d","email":"%%s@personal.example",'
    .. '"company":"Acme Berlin","startDate":"2026-12-01"}',
    id, first_name, thread_id, sent, id)
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status == 202 then accepted = accepted + 1 end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_error == "" then first_error = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, requests)
  local answered, accepted, non2xx = 0, 0, 0
  for _, thread in ipairs(threads) do
    answered = answered + thread:get("answered")
    accepted = accepted + thread:get("accepted")
    non2xx = non2xx + thread:get("non2xx")
    if thread:get("first_error") ~= "" then io.write("BENCH first_error " .. thread:get("first_error") .. "\\n") end
  end
  io.write(string.format("BENCH answered=%%d accepted=%%d non2xx=%%d\\n", answered, accepted, non2xx))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: dict[str, int]
    wrk_non2xx_3xx: int
    lua: dict[str, int]
    lua_errors: list[str]
    output: str

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of each wrk run (default 20)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--timeout", type=int, default=10, help="wrk per-request timeout in seconds (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating floor and webhook rounds (default 5)")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600 or not 1 <= args.connections <= 1000 or not 1 <= args.timeout <= 60:
        parser.error("--duration must be 1..600 s, --connections 1..1000 and --timeout 1..60 s")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    return args


# ----------------------------------------------------------------------------------------------------
# wrk: command, Lua script, output.


def wrk_script(tenant: Tenant, prefix: str, first_name: str = "Bench") -> str:
    """The Lua script posting new hires; `first_name` "***" makes each one's run fail (bench.alert_storm)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", tenant.webhook_token) or not re.fullmatch(r"[A-Za-z*]+", first_name):
        raise BenchError("the webhook token or the first name has characters this script would need to escape")
    return LUA_SCRIPT % {"prefix": prefix, "token": tenant.webhook_token, "first_name": first_name}


def run_wrk(url: str, args: argparse.Namespace, script: Path | None = None) -> WrkResult:
    argv = [
        *("wrk", "-c", str(args.connections), "-t", str(min(args.threads, args.connections))),
        *("-d", f"{args.duration}s", "--latency", "--timeout", f"{args.timeout}s"),
        *(["-s", str(script)] if script else []),
        url,
    ]
    say(f"$ {' '.join(argv)}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 120, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse_wrk(done.stdout)


LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def to_ms(value: str, unit: str) -> float:
    return float(value) * LATENCY_UNITS_MS[unit]


def find(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk output has no match for {pattern!r}:\n{text}")
    return match


def named_counts(names: tuple[str, ...], match: re.Match[str] | None) -> dict[str, int]:
    """The integers a regex captured, by name; empty when the line was absent."""
    return dict(zip(names, map(int, match.groups()), strict=True)) if match else {}


def parse_wrk(output: str) -> WrkResult:
    """Read totals, percentiles, errors and the Lua script's counters from wrk's text output."""
    total = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    p50 = find(r"^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$", output)
    p99 = find(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    lua = re.search(r"^BENCH answered=(\d+) accepted=(\d+) non2xx=(\d+)$", output, re.MULTILINE)
    return WrkResult(
        requests=int(total[1]),
        seconds=to_ms(total[2], total[3]) / 1000,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)", output)[1]),
        p50_ms=to_ms(p50[1], p50[2]),
        p99_ms=to_ms(p99[1], p99[2]),
        socket_errors=named_counts(("connect", "read", "write", "timeout"), errors),
        wrk_non2xx_3xx=int(non2xx[1]) if non2xx else 0,
        lua=named_counts(("answered", "accepted", "non2xx"), lua),
        lua_errors=re.findall(r"^BENCH first_error (.*)$", output, re.MULTILINE),
        output=output,
    )


# ----------------------------------------------------------------------------------------------------
# The benchmark.


@dataclass(frozen=True)
class Load:
    """One wrk run and the CPU the API process (and the machine) used meanwhile."""

    wrk: WrkResult
    cpu: CpuUse

    @property
    def api_cpu_ms_per_request(self) -> float | None:
        seconds = self.cpu.process_seconds
        return seconds * 1000 / self.wrk.requests if seconds is not None and self.wrk.requests else None


@dataclass(frozen=True)
class Round:
    """The floor, then the webhook, loaded one after the other."""

    floor: Load
    webhook: Load

    @property
    def ratio(self) -> float:
        return self.webhook.wrk.rps / self.floor.wrk.rps if self.floor.wrk.rps else 0.0


@dataclass(frozen=True)
class Measured:
    healthz: Load
    rounds: list[Round]
    deliveries: int
    log_dir: Path

    @property
    def median(self) -> Round:
        """The round of the median ratio (the lower middle one for an even count)."""
        return sorted(self.rounds, key=lambda one: one.ratio)[(len(self.rounds) - 1) // 2]


def load(api: Service, url: str, args: argparse.Namespace, script: Path | None = None) -> Load:
    before = CpuSnapshot.take(api.process.pid)
    result = run_wrk(url, args, script)
    return Load(result, CpuUse.between(before, CpuSnapshot.take(api.process.pid)))


def load_hires(api: Service, url: str, args: argparse.Namespace, tenant: Tenant, prefix: str) -> Load:
    """wrk posting new hires (application ids `<prefix>-…`) to `url`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-webhook-") as script:
        script.write(wrk_script(tenant, prefix))
        script.flush()
        return load(api, f"{url}{WEBHOOK_PATH}", args, Path(script.name))


def measure(args: argparse.Namespace, config: ServiceConfig) -> Measured:
    """Start the API and the floor, make the tenant, run wrk on each, count the webhook's stored deliveries."""
    with Processes(BENCH) as processes:
        api = start_api(processes, config)
        floor = start_api(processes, config, name="floor", app="bench.floor_app:app")
        with httpx.Client(base_url=api.url, timeout=30.0) as client:
            tenant = create_softgarden_tenant(client, config, "bench-ingest", UNUSED_LUCCA, SOFTGARDEN_SETTINGS)
        healthz = load(api.service, f"{api.url}/healthz", args)
        prefix = f"bench-{secrets.token_hex(4)}"
        rounds = [
            Round(
                floor=load_hires(floor.service, floor.url, args, tenant, f"floor-{secrets.token_hex(4)}"),
                webhook=load_hires(api.service, api.url, args, tenant, f"{prefix}-{number}"),
            )
            for number in range(args.rounds)
        ]
        time.sleep(SETTLE_SECONDS)
    # Counted once both processes have stopped and given their connections back.
    # The prefix is hex digits this script made: nothing to escape.
    count = f"SELECT count(*) FROM deliveries WHERE external_id LIKE '{prefix}-%'"  # noqa: S608
    return Measured(healthz, rounds, int(sql_value(config, count)), processes.log_dir)


def cpu_figures(name: str, measured: Load) -> list[Check]:
    """Where the time went: the API process's CPU per request and load, the whole machine's load."""
    cpu, per_request = measured.cpu, measured.api_cpu_ms_per_request
    if per_request is None or cpu.process_core_share is None or cpu.machine_busy_share is None:
        return []
    share = f"{cpu.process_core_share:.0%} of a core / {cpu.machine_busy_share:.0%}"
    return [Check(f"{name} API CPU per request", f"{per_request:.2f} ms"), Check(f"{name} API / machine CPU", share)]


def each_round(measured: Measured, figure: Callable[[Round], str]) -> str:
    return " / ".join(figure(one) for one in measured.rounds)


def errors_of(one: Load) -> tuple[int, int]:
    """Non-2xx answers (as the Lua script counted them) and socket errors of one wrk run."""
    return one.wrk.lua.get("non2xx", one.wrk.wrk_non2xx_3xx), one.wrk.socket_error_count


def evaluate(args: argparse.Namespace, measured: Measured) -> list[Check]:
    """The figures and their targets: every round's, and the median round's against the targets."""
    health, median = measured.healthz.wrk, measured.median
    bare, hook = median.floor.wrk, median.webhook.wrk
    floors, hooks = [one.floor for one in measured.rounds], [one.webhook for one in measured.rounds]
    accepted = sum(one.wrk.lua.get("accepted", 0) for one in hooks)
    floor_errors = [sum(counts) for counts in map(errors_of, floors)]
    non2xx = sum(errors_of(one)[0] for one in hooks)
    socket_errors = sum(errors_of(one)[1] for one in hooks)
    # Requests cut off by wrk's end (or its timeout) may still be committed: at most one per connection and round.
    slack = args.connections * len(hooks) + sum(one.wrk.socket_errors.get("timeout", 0) for one in hooks)
    return [
        Check("healthz requests/s", f"{health.rps:,.0f}"),
        Check("healthz p50 / p99", f"{health.p50_ms:.1f} / {health.p99_ms:.1f} ms"),
        Check("healthz non-2xx / socket errors", f"{health.wrk_non2xx_3xx} / {health.socket_error_count}", "0 / 0",
              health.wrk_non2xx_3xx == 0 and health.socket_error_count == 0),
        *cpu_figures("healthz", measured.healthz),
        Check("floor requests/s, each round", each_round(measured, lambda one: f"{one.floor.wrk.rps:,.0f}")),
        Check("webhook requests/s, each round", each_round(measured, lambda one: f"{one.webhook.wrk.rps:,.0f}")),
        Check("webhook / floor, each round", each_round(measured, lambda one: f"{one.ratio:.1%}")),
        Check("webhook p99, each round", each_round(measured, lambda one: f"{one.webhook.wrk.p99_ms:.0f} ms")),
        Check("floor non-2xx + socket errors", f"{sum(floor_errors)}", "0",
              sum(floor_errors) == 0 and all(one.wrk.lua for one in floors)),
        Check("median round: floor requests/s", f"{bare.rps:,.0f}"),
        Check("median round: floor p50 / p99", f"{bare.p50_ms:.1f} / {bare.p99_ms:.1f} ms"),
        *cpu_figures("median round: floor", median.floor),
        Check("median round: webhook requests/s", f"{hook.rps:,.0f}"),
        Check("median round: webhook / floor", f"{median.ratio:.1%}", f">= {TARGET_RATIO:.0%}",
              median.ratio >= TARGET_RATIO),
        Check("median round: webhook p50", f"{hook.p50_ms:.1f} ms"),
        Check("median round: webhook p99", f"{hook.p99_ms:.1f} ms", f"< {TARGET_P99_MS:.0f} ms",
              hook.p99_ms < TARGET_P99_MS),
        *cpu_figures("median round: webhook", median.webhook),
        Check("webhook non-2xx (Lua), all rounds", str(non2xx), "0", non2xx == 0 and all(one.wrk.lua for one in hooks)),
        Check("webhook socket errors, all rounds", str(socket_errors), "0", socket_errors == 0),
        Check("webhook 202s seen by wrk", f"{accepted:,}"),
        Check("deliveries rows in Postgres", f"{measured.deliveries:,}", f"202s + 0..{slack}",
              0 <= measured.deliveries - accepted <= slack),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        say("wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu), then run again.")
        return 2
    exit_on_sigterm()
    config = ServiceConfig(database=DATABASE, redis_db=REDIS_DB)
    prepare_state(config)
    measured = measure(args, config)
    checks = evaluate(args, measured)
    wrk = f"wrk -c {args.connections} -t {args.threads} -d {args.duration}s"
    title = f"Webhook ingestion, 1 API process, no worker ({wrk}, {args.rounds} rounds)"
    print_table(title, checks)
    for error in (error for one in measured.rounds for error in one.webhook.wrk.lua_errors):
        say(f"first non-2xx answer: {error}")
    results = {
        "options": vars(args),
        "healthz": asdict(measured.healthz),
        "rounds": [asdict(one) for one in measured.rounds],
        "median_round": measured.rounds.index(measured.median),
        "deliveries_rows": measured.deliveries,
        "logs": str(measured.log_dir),
    }
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(main())
