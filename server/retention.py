"""The periodic purge: what the privacy policy promises about time, done once an hour.

One run (``purge(service, now)``, also ``kadrio purge [--at ISO_TIME] [--dry-run]``):

1. paid periods that ended move their accounts to Free (keeping the plan's grace as
   ``keep_until``) and record the "expired" email; periods ending within the notice window
   record the "ends soon" email;
2. jobs past their plan's retention are deleted with the same cascade as "Delete";
3. technical log entries (IP, user agent) older than 30 days are deleted;
4. accounts whose owners asked for deletion are erased;
5. recorded emails not sent yet are sent.

Every worker process schedules it. Every step is a set of conditional updates or idempotent
erasures, so several workers running it at once, or a run cut short, do no harm (no lock: a lock
left by a killed worker would stop the purge for good).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from . import accounts, jobs, mailings, techlog
from .db import utcnow
from .plans import FREE, Plans, Standing, load_plans, protected_until
from .service import Service

log = logging.getLogger("kadrio.worker")
BOOKING_TTL = timedelta(hours=6)  # an upload booking never attached to a job (a crash)


class PurgeReport(BaseModel):
    at: datetime
    dry_run: bool
    expired_plans: list[str] = Field(default_factory=list, description="user ids")
    ending_notices: list[str] = Field(default_factory=list, description="user ids")
    expired_jobs: list[str] = Field(default_factory=list, description="job ids")
    failed_jobs: list[str] = Field(default_factory=list, description="erasure to retry")
    techlog_deleted: int = 0
    erased_accounts: list[str] = Field(default_factory=list, description="user ids")
    overdue_accounts: list[str] = Field(default_factory=list, description="still not erased")
    emails_sent: int = 0

    def lines(self) -> list[str]:
        verb = "would" if self.dry_run else "did"
        return [
            f"purge at {self.at.isoformat()} ({'dry run' if self.dry_run else 'applied'}):",
            f"  paid periods ended, accounts moved to Free ({verb}): {len(self.expired_plans)}",
            f"  'plan ends soon' emails recorded ({verb}): {len(self.ending_notices)}",
            f"  expired jobs deleted ({verb}): {len(self.expired_jobs)}"
            + (f", {len(self.failed_jobs)} to retry" if self.failed_jobs else ""),
            f"  technical log entries deleted ({verb}): {self.techlog_deleted}",
            f"  closed accounts erased ({verb}): {len(self.erased_accounts)}"
            + (f", {len(self.overdue_accounts)} OVERDUE" if self.overdue_accounts else ""),
            f"  emails sent: {self.emails_sent}",
        ]


def purge(service: Service, now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
    now = now or utcnow()
    plans = load_plans(service.settings)
    report = PurgeReport(at=now, dry_run=dry_run)
    report.expired_plans = end_paid_periods(service, plans, now, dry_run)
    report.ending_notices = notify_ending(service, now, dry_run)
    report.expired_jobs = expired_jobs(service, plans, now)
    if not dry_run:
        report.failed_jobs = _erase_jobs(service, report.expired_jobs)
        service.db.execute(
            "DELETE FROM plan_usage WHERE job_id IS NULL AND created_at < ?", (now - BOOKING_TTL,)
        )
    report.techlog_deleted = techlog.purge(
        service.db, now, service.settings.privacy.techlog_days, dry_run
    )
    if not dry_run:
        report.emails_sent = mailings.deliver(service)
    closed = accounts.closed_accounts(service)
    for user in closed:
        if dry_run:
            report.erased_accounts.append(user["id"])
            continue
        try:
            accounts.erase_account(service, user["id"])
            report.erased_accounts.append(user["id"])
        except Exception as exc:
            log.warning("erasing account %s failed (%s); will retry", user["id"], exc)
            if now - user["deactivated_at"] > timedelta(days=accounts.ERASE_WITHIN_DAYS - 2):
                report.overdue_accounts.append(user["id"])
    if report.overdue_accounts:
        log.error("accounts close to their erasure deadline: %s", report.overdue_accounts)
    return report


def end_paid_periods(service: Service, plans: Plans, now: datetime, dry_run: bool) -> list[str]:
    """Accounts whose paid period ended: to Free, keeping the grace; 'expired' email."""
    rows = service.db.all(
        "SELECT * FROM users WHERE plan <> ? AND plan_until IS NOT NULL AND plan_until <= ? "
        "AND deactivated_at IS NULL",
        (FREE, now),
    )
    moved = []
    for user in rows:
        if dry_run:
            moved.append(user["id"])
            continue
        keep = protected_until(plans, Standing.of(user))
        assert keep is not None  # a paid plan with an end has a cover
        with service.db.transaction() as tx:
            if not tx.execute(
                "UPDATE users SET plan = ?, plan_until = NULL, keep_until = ? "
                "WHERE id = ? AND plan = ? AND plan_until = ?",
                (FREE, keep, user["id"], user["plan"], user["plan_until"]),
            ):
                continue  # paid again (or moved by another run) meanwhile
            mailings.enqueue(
                tx,
                user["id"],
                "expired",
                user["plan_until"].isoformat(),
                {
                    "plan": user["plan"],
                    "until": user["plan_until"].isoformat(),
                    "keep_until": keep.isoformat(),
                    "path": "/account/plan",
                },
                now,
            )
        moved.append(user["id"])
        log.info("account %s: %s plan ended, moved to free", user["id"], user["plan"])
    return moved


def notify_ending(service: Service, now: datetime, dry_run: bool) -> list[str]:
    """Record the 'plan ends soon' email once per period end within the notice window."""
    plans = load_plans(service.settings)
    window = timedelta(days=service.settings.billing.ending_notice_days)
    rows = service.db.all(
        "SELECT * FROM users WHERE plan <> ? AND plan_until IS NOT NULL AND plan_until > ? "
        "AND plan_until <= ? AND deactivated_at IS NULL",
        (FREE, now, now + window),
    )
    noted = []
    for user in rows:
        ref = user["plan_until"].isoformat()
        if dry_run:
            seen = service.db.one(
                "SELECT 1 AS x FROM mailings WHERE user_id = ? AND kind = 'ending_soon' "
                "AND ref = ?",
                (user["id"], ref),
            )
            if seen is None:
                noted.append(user["id"])
            continue
        keep = protected_until(plans, Standing.of(user))
        params: dict[str, Any] = {
            "plan": user["plan"],
            "until": ref,
            "keep_until": keep.isoformat() if keep else ref,
            "path": "/account/plan",
        }
        with service.db.transaction() as tx:
            if mailings.enqueue(tx, user["id"], "ending_soon", ref, params, now):
                noted.append(user["id"])
    return noted


def expired_jobs(service: Service, plans: Plans, now: datetime) -> list[str]:
    """Ids of the jobs whose retention ended at ``now`` (not deleted yet)."""
    floor = now - timedelta(days=plans.free.retention.days)
    candidates = service.db.all(
        "SELECT j.id, j.user_id, u.plan, u.plan_until, u.keep_until FROM jobs j "
        "JOIN users u ON u.id = j.user_id "
        "WHERE j.deleted_at IS NULL AND j.created_at <= ? ORDER BY j.created_at",
        (floor,),
    )
    expired = []
    for row in candidates:
        cover = protected_until(plans, Standing.of(row))
        if plans[row["plan"]].paid and cover is None:
            continue  # a paid plan without an end keeps everything
        if cover is None or cover <= now:
            expired.append(row["id"])
    return expired


def _erase_jobs(service: Service, job_ids: list[str]) -> list[str]:
    failed = []
    for job_id in job_ids:
        row = service.db.one("SELECT user_id FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            continue
        jobs.mark_deleted(service, row["user_id"], job_id)
        try:
            jobs.erase_job(service, job_id)
        except Exception as exc:
            # stays marked deleted: the workers' recovery sweep erases it again
            log.warning("erasing expired job %s failed (%s); will retry", job_id, exc)
            failed.append(job_id)
    return failed


# -- the periodic task --------------------------------------------------------------------------


def register_periodic(huey: Any, service: Service) -> Any:
    """Run :func:`purge` every hour (minute 5) on the consumers that run periodic tasks."""
    from huey import crontab

    @huey.periodic_task(crontab(minute="5"), name="kadrio.purge")
    def purge_task() -> None:
        for line in purge(service).lines():
            log.info(line)

    return purge_task
