"""From a failed run to its alert in an SMTP sink and a webhook receiver, over `--problems` distinct problems.

    .venv/bin/python -m bench.alert_latency [--problems 100] [--spacing 0.5] [--workers 2] [--tests 20]

`--problems` tenants, each with an e-mail and a webhook channel pointing at the benchmark's own sinks (aiosmtpd,
and an HTTP receiver that verifies the Standard Webhooks signature with the `standardwebhooks` package). Each gets
one Softgarden hire that fails at once (a first name without a letter: no call to Lucca), one every `--spacing` s:
one problem per tenant. Measured: from the run's `finished_at`, as the API shows it, to the alert's arrival, per
channel. Baselines in the same run: the webhook's 202 to the run's `finished_at` (the same queue, one job), and
`POST …/alerts/test` (sent directly, not queued) from the request to the arrival, for `--tests` tenants.
Exit status: 0 when every target and check holds, 1 otherwise.
"""

import argparse
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.alert_sinks import (
    PUBLIC_BASE_URL,
    Arrival,
    Arrivals,
    WebhookSecrets,
    alerted_service,
    failing_hire,
    put_sink_channels,
)
from bench.harness import (
    HOST,
    SOFTGARDEN_SETTINGS,
    Check,
    ServiceConfig,
    Tenant,
    create_softgarden_tenant,
    exit_on_sigterm,
    expect,
    finish,
    percentile,
    print_table,
    run_reporting_failure,
    say,
    wait_for_run,
)

BENCH = "alert_latency"
DATABASE = "lucca_connectors_bench_alert_latency"
WEBHOOK_PATH = "/integrations/webhooks/softgarden/candidate-hired"
# Nothing listens there: the failing hires stop before any call to Lucca.
UNUSED_LUCCA = {"base_url": f"http://{HOST}:9/bench", "api_key": "unused-lucca-key"}
KINDS = ("email", "webhook")
TARGET_P99_SECONDS = 10.0
# Waited after the last alert, longer than the delivery tick (~10 s), so that a second copy would arrive.
SETTLE_SECONDS = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=100, help="tenants, one failing hire each (default 100)")
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between two hires (default 0.5)")
    parser.add_argument("--workers", type=int, default=2, help="arq worker processes (default 2)")
    parser.add_argument("--tests", type=int, default=20, help="POST …/alerts/test sends, the baseline (default 20)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds to wait for every alert (default 120)")
    args = parser.parse_args(argv)
    if not 1 <= args.problems <= 1000 or not 0 <= args.spacing <= 10 or not 1 <= args.workers <= 8:
        parser.error("--problems must be 1..1000, --spacing 0..10 s and --workers 1..8")
    if not 0 <= args.tests <= args.problems or not 10 <= args.timeout <= 3600:
        parser.error("--tests must be 0..--problems and --timeout 10..3600 s")
    return args


@dataclass(frozen=True)
class TestSend:
    """One `POST …/alerts/test`: when it was sent and answered, and what it said of each channel."""

    slug: str
    sent_at: float
    answered_at: float
    channels: list[dict[str, Any]]


@dataclass(frozen=True)
class FailedHire:
    """One failing hire: when its 202 came back, its run as it ended."""

    slug: str
    answered_at: float
    run: dict[str, Any]

    @property
    def finished_at(self) -> float | None:
        ended = self.run.get("finished_at")
        return datetime.fromisoformat(ended).timestamp() if ended else None


@dataclass(frozen=True)
class Measured:
    tenants: list[Tenant]
    tests: list[TestSend]
    hires: list[FailedHire]
    problems: dict[str, list[dict[str, Any]]]
    arrivals: list[Arrival]
    tests_ended_at: float
    errors_logged: int  # by the API and the workers
    log_dir: str


def send_test(api: httpx.Client, tenant: Tenant) -> TestSend:
    sent_at = time.time()
    answer = expect(api.post(f"/api/v1/tenants/{tenant.slug}/alerts/test", headers=tenant.auth), 200, "test alerts")
    return TestSend(tenant.slug, sent_at, time.time(), answer["channels"])


def post_failing_hires(api: httpx.Client, tenants: list[Tenant], spacing: float) -> list[tuple[Tenant, str, float]]:
    """One failing hire per tenant, `spacing` s apart; each tenant's run id and when its 202 came back."""
    batch = secrets.token_hex(3)
    posted = []
    for number, tenant in enumerate(tenants):
        body = failing_hire(f"alert-{batch}-{number:04d}")
        answer = expect(api.post(WEBHOOK_PATH, json=body, headers=tenant.webhook_auth), 202, "post a failing hire")
        posted.append((tenant, str(answer["run_id"]), time.time()))
        time.sleep(spacing)
    return posted


def wait_for_alerts(arrivals: Arrivals, slugs: list[str], since: float, timeout: float) -> None:
    """Until each tenant has an alert on every channel (arrived after `since`), or `timeout` passes."""
    deadline = time.monotonic() + timeout
    wanted = {(slug, kind) for slug in slugs for kind in KINDS}
    while time.monotonic() < deadline:
        if wanted <= {(one.slug, one.kind) for one in arrivals.all() if one.at >= since}:
            return
        time.sleep(0.2)
    say(f"  not every alert arrived within {timeout:.0f} s")


def measure(args: argparse.Namespace) -> Measured:
    """Start the sinks and the service, make the tenants, send the tests, post the hires, wait for their alerts."""
    with alerted_service(BENCH, DATABASE, args.workers) as service:
        config, receiver, arrivals = service.config, service.receiver, service.arrivals
        with httpx.Client(base_url=service.api.url, timeout=30.0) as client:
            say(f"making {args.problems} tenants, each with an e-mail and a webhook channel")
            tenants = [alerted_tenant(client, config, f"alerts-{number:04d}", receiver, service.webhook_secrets)
                       for number in range(args.problems)]  # fmt: skip
            say(f"baseline: {args.tests} test sends")
            tests = [send_test(client, tenant) for tenant in tenants[: args.tests]]
            tests_ended_at = time.time()
            say(f"posting {args.problems} failing hires, one every {args.spacing} s")
            posted = post_failing_hires(client, tenants, args.spacing)
            hires = [
                FailedHire(tenant.slug, answered_at, wait_for_run(client, tenant, run_id, args.timeout, 0.5).run)
                for tenant, run_id, answered_at in posted
            ]
            wait_for_alerts(arrivals, [tenant.slug for tenant in tenants], tests_ended_at, args.timeout)
            time.sleep(SETTLE_SECONDS)
            problems = {tenant.slug: list_problems(client, tenant) for tenant in tenants}
        errors = service.errors_logged()
    log_dir = str(service.processes.log_dir)
    return Measured(tenants, tests, hires, problems, arrivals.all(), tests_ended_at, errors, log_dir)


def alerted_tenant(
    api: httpx.Client, config: ServiceConfig, slug: str, receiver: str, webhook_secrets: WebhookSecrets
) -> Tenant:
    tenant = create_softgarden_tenant(api, config, slug, UNUSED_LUCCA, SOFTGARDEN_SETTINGS)
    put_sink_channels(api, tenant, receiver, webhook_secrets, KINDS)
    return tenant


def list_problems(api: httpx.Client, tenant: Tenant) -> list[dict[str, Any]]:
    found = expect(api.get(f"/api/v1/tenants/{tenant.slug}/alerts/problems", headers=tenant.auth), 200, "problems")
    return list(found["items"] if isinstance(found, dict) else found)


# ----------------------------------------------------------------------------------------------------
# Figures.


def seconds(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{percentile(values, 0.5):.2f} / {percentile(values, 0.99):.2f} / {max(values):.2f} s"


def alert_latencies(measured: Measured, kind: str) -> list[float]:
    """Per problem, from its run's finished_at to the first alert of this kind for its tenant."""
    latencies: list[float] = []
    for hire in measured.hires:
        arrived = [one.at for one in measured.arrivals if one.slug == hire.slug and one.kind == kind
                   and one.at >= measured.tests_ended_at]  # fmt: skip
        if arrived and hire.finished_at is not None:
            latencies.append(min(arrived) - hire.finished_at)
    return latencies


def test_latencies(measured: Measured, kind: str) -> list[float]:
    """Per test send, from the request to the test alert's arrival on this kind of channel."""
    latencies: list[float] = []
    for test in measured.tests:
        arrived = [one.at for one in measured.arrivals if one.slug == test.slug and one.kind == kind
                   and test.sent_at <= one.at <= test.answered_at]  # fmt: skip
        if arrived:
            latencies.append(min(arrived) - test.sent_at)
    return latencies


def leaked(measured: Measured) -> int:
    """Alerts holding a tenant's API key or webhook token."""
    keys = [value for tenant in measured.tenants for value in (tenant.key, tenant.webhook_token) if value]
    return sum(1 for one in measured.arrivals if any(key in one.body for key in keys))


def with_run_address(measured: Measured) -> int:
    """Problem alerts holding the console's address of their run (`…/console#/tenants/{slug}/runs/{run id}`)."""
    addresses = {
        hire.slug: f"{PUBLIC_BASE_URL}/console#/tenants/{hire.slug}/runs/{hire.run['id']}" for hire in measured.hires
    }
    return sum(1 for one in measured.arrivals if one.at >= measured.tests_ended_at and addresses[one.slug] in one.body)


def evaluate(args: argparse.Namespace, measured: Measured) -> list[Check]:
    problem_alerts = [one for one in measured.arrivals if one.at >= measured.tests_ended_at]
    per_channel = [
        len([one for one in problem_alerts if one.slug == tenant.slug and one.kind == kind])
        for tenant in measured.tenants
        for kind in KINDS
    ]
    failed = sum(1 for hire in measured.hires if hire.run["status"] == "failed")
    open_problems = [len([p for p in found if p.get("status") == "open"]) for found in measured.problems.values()]
    webhooks = [one for one in problem_alerts if one.kind == "webhook"]
    tests_ok = all(channel["ok"] for test in measured.tests for channel in test.channels)
    to_finish = [hire.finished_at - hire.answered_at for hire in measured.hires if hire.finished_at is not None]
    checks = [
        Check("errors logged by the API and workers", str(measured.errors_logged), "0", measured.errors_logged == 0),
        Check("runs failed", f"{failed} / {len(measured.hires)}", "all", failed == len(measured.hires)),
        Check("open problems per tenant (API)", f"{min(open_problems, default=0)}..{max(open_problems, default=0)}",
              "1", set(open_problems) == {1}),
        Check("alerts per problem and channel", f"{min(per_channel, default=0)}..{max(per_channel, default=0)}",
              "1", set(per_channel) == {1}),
        Check("webhook alerts verified (standardwebhooks)", f"{sum(one.verified for one in webhooks)} / {len(webhooks)}",
              "all", bool(webhooks) and all(one.verified for one in webhooks)),
        Check("alerts giving the console address of their run", f"{with_run_address(measured)} / {len(problem_alerts)}",
              "all", with_run_address(measured) == len(problem_alerts)),
        Check("alerts holding a tenant key or token", str(leaked(measured)), "0", leaked(measured) == 0),
    ]  # fmt: skip
    for kind in KINDS:
        latencies = alert_latencies(measured, kind)
        p99 = percentile(latencies, 0.99) if latencies else None
        checks.append(
            Check(
                f"{kind}: run finished_at → alert, p50 / p99 / max",
                seconds(latencies),
                f"p99 < {TARGET_P99_SECONDS:.0f} s",
                p99 is not None and p99 < TARGET_P99_SECONDS and len(latencies) == len(measured.hires),
            )
        )
    checks += [
        Check("baseline: hire's 202 → run finished_at, p50 / p99 / max", seconds(to_finish)),
        *(Check(f"baseline: POST …/alerts/test → {kind} arrival, p50 / p99 / max", seconds(test_latencies(measured, kind)))
          for kind in KINDS),
        Check("baseline: test sends answered ok", f"{len(measured.tests)} sends", "all ok", tests_ok),
    ]  # fmt: skip
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    measured = measure(args)
    checks = evaluate(args, measured)
    title = f"Alert latency: {args.problems} problems, a hire every {args.spacing} s, {args.workers} worker(s)"
    print_table(title, checks)
    results = {
        "options": vars(args),
        "tests": [asdict(test) for test in measured.tests],
        "hires": [asdict(hire) for hire in measured.hires],
        "arrivals": [{**asdict(one), "body": one.body[:2000]} for one in measured.arrivals],
        "problems": measured.problems,
        "logs": measured.log_dir,
    }
    return finish(BENCH, checks, results)


if __name__ == "__main__":
    sys.exit(run_reporting_failure(lambda: main()))
