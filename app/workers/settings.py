"""The arq worker's configuration: functions, the sweep schedule, and per-process start-up."""

import logging

from arq import cron
from arq.connections import RedisSettings
from arq.worker import func

from app.config import get_settings
from app.logging import configure_logging
from app.metrics import Flusher
from app.queue import APPLY_LUCCA_EVENTS, DELIVER_ALERT, EXECUTE_RUN, PURGE_TENANT, enqueue_run
from app.services.context import Services
from app.services.schedules import claim_due_runs
from app.workers.alerts import alerts_check, alerts_deliver, alerts_tick
from app.workers.freshness import (
    CARDS_FOLLOW,
    ELEVO_PUSH,
    POLL_TENANT,
    REGISTER_WEBHOOK,
    cards_follow_changes,
    directory_poll,
    directory_poll_due,
    elevo_push,
    lucca_events_apply,
    lucca_webhooks_register,
)
from app.workers.tasks import JobContext, run_execute, runs_retention, runs_sweep, tenants_purge

settings = get_settings()
log = logging.getLogger(__name__)

# A job holds at most two database connections at once: its account lock's, and one session at a time.
CONNECTIONS_PER_JOB = 2
# The sweep's own session, so that it never waits behind busy jobs for a connection.
SWEEP_CONNECTIONS = 1


def worker_pool_size(max_jobs: int) -> int:
    """Database connections a worker keeps: every job's at once, plus the sweep's."""
    return max_jobs * CONNECTIONS_PER_JOB + SWEEP_CONNECTIONS


async def startup(ctx: JobContext) -> None:
    # arq's cli has given its logger a handler by now; from here on its lines go through our formatter, once.
    configure_logging(settings.log_format)
    services = Services.start(settings, pool_size=worker_pool_size(settings.worker_max_jobs))
    ctx["services"] = services
    ctx["metrics_flusher"] = Flusher(services.redis)


async def shutdown(ctx: JobContext) -> None:
    await ctx["metrics_flusher"].stop()
    services: Services = ctx["services"]
    await services.close()


async def schedules_tick(ctx: JobContext) -> int:
    """schedules.tick: store the run of every nightly job that is due (contract 5.5), then queue it."""
    services: Services = ctx["services"]
    run_ids = await claim_due_runs(services.sessionmaker)
    for run_id in run_ids:
        await enqueue_run(services.redis, run_id)
    return len(run_ids)


# The hour (UTC) of the daily retention purge.
RETENTION_HOUR = 4


def sweep_seconds() -> set[int]:
    return set(range(0, 60, max(1, min(settings.sweep_every_seconds, 60))))


class WorkerSettings:
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    functions = [
        # Our own deadline and the sweep bound retries; arq's try counter must never end a run.
        func(run_execute, name=EXECUTE_RUN, max_tries=1_000_000, timeout=settings.job_timeout_seconds),
        func(tenants_purge, name=PURGE_TENANT, max_tries=1_000_000, timeout=settings.job_timeout_seconds),
        # The directory's freshness: each retries on its own (Lucca down, an endpoint not active yet).
        func(directory_poll, name=POLL_TENANT, max_tries=1, timeout=settings.job_timeout_seconds),
        func(lucca_events_apply, name=APPLY_LUCCA_EVENTS, max_tries=1_000_000, timeout=settings.job_timeout_seconds),
        func(lucca_webhooks_register, name=REGISTER_WEBHOOK, max_tries=1_000, timeout=settings.job_timeout_seconds),
        # Elevo's push_on_change: the poller queues it again while the copy is beyond the cursor.
        func(elevo_push, name=ELEVO_PUSH, max_tries=1, timeout=settings.job_timeout_seconds),
        # Cards' auto_sync: likewise.
        func(cards_follow_changes, name=CARDS_FOLLOW, max_tries=1, timeout=settings.job_timeout_seconds),
        # An alert retries on its own backoff and gives up after 15 minutes: arq's try counter must never end it.
        func(alerts_deliver, name=DELIVER_ALERT, max_tries=1_000_000, timeout=settings.job_timeout_seconds),
    ]
    cron_jobs = [
        cron(runs_sweep, name="runs.sweep", second=sweep_seconds(), run_at_startup=True, timeout=60),
        # Every 5 s, so that jobs spread over their hour start within seconds of their offset (a tick with nothing
        # due is one indexed query), and at start-up so that a service back from downtime catches up at once.
        cron(schedules_tick, name="schedules.tick", second=set(range(0, 60, 5)), run_at_startup=True, timeout=60),
        # Every 2 s, so that each tenant's poll comes within a couple of seconds of its time.
        cron(directory_poll_due, name="directory.poll_due", second=set(range(0, 60, 2)), timeout=60),
        # Every 10 s: deliveries whose job was lost go out within seconds of Redis and a worker being back.
        cron(alerts_tick, name="alerts.tick", second=set(range(0, 60, 10)), run_at_startup=True, timeout=60),
        # Once a minute (one worker at a time): the directory's lag and the schedules that missed their day.
        cron(alerts_check, name="alerts.check", second=30, timeout=60),
        # Once a day, away from the nightly jobs' hour; it goes on in new attempts until done.
        cron(
            runs_retention,
            name="runs.retention",
            hour=RETENTION_HOUR,
            minute=17,
            second=0,
            max_tries=1_000,
            timeout=settings.job_timeout_seconds,
        ),
    ]
    on_startup = startup
    on_shutdown = shutdown
    job_timeout = settings.job_timeout_seconds
    # No results are kept, so a run's job id is free again as soon as its job ends.
    keep_result = 0
    max_jobs = settings.worker_max_jobs
    health_check_interval = 30
    # On SIGTERM (a deploy, a supervisor), take no new job and let the running ones finish for a few seconds
    # before cancelling them: a job cancelled halfway through arq's own bookkeeping crashes the worker's exit.
    job_completion_wait = 5
