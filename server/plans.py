"""Plans (``plans.toml``): loading, the retention rule, and the limits an upload must fit.

Retention of a job is a pure function of its upload time and the account's standing (plan,
end of the paid period, and ``keep_until``: the grace left by a paid period that ended or was
left for another plan). The limits are checked when an upload arrives, before anything is stored;
the monthly minutes and concurrent jobs are counted under a lock on the user's row, so two
uploads at once cannot both take the last minutes.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kadrio_core.errors import BadInput
from kadrio_core.settings import Settings

from .db import Database, Row, utcnow
from .errors import ApiError
from .schemas import LANGUAGES, PLANS, JobOptions
from .service import new_id

FREE = "free"
ACTIVE_STATUSES = ("queued", "transcribing", "selecting", "rendering")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retention(_Model):
    after: Literal["upload", "subscription_end"]
    days: int = Field(ge=1, le=3650)


class Plan(_Model):
    name: str = ""
    title: dict[str, str]
    summary: dict[str, str]
    price_rub: Decimal = Field(ge=0, decimal_places=2)
    period_days: int = Field(ge=1, le=3660)
    minutes_per_month: int = Field(ge=1)
    max_upload_mb: int = Field(ge=1)
    max_video_minutes: int = Field(ge=1)
    clips_per_job: int = Field(ge=1, le=100)
    max_clip_seconds: int = Field(ge=5, le=600)
    concurrent_jobs: int = Field(ge=1, le=1000)
    retention: Retention

    @model_validator(mode="after")
    def _languages(self) -> Plan:
        for field in ("title", "summary"):
            missing = set(LANGUAGES) - set(getattr(self, field))
            if missing:
                raise ValueError(f"{field} lacks {', '.join(sorted(missing))}")
        return self

    @property
    def paid(self) -> bool:
        return self.price_rub > 0

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def label(self, language: str) -> str:
        return self.title.get(language) or self.title["en"]


class Plans(_Model):
    plans: dict[str, Plan]

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("plans"), dict):
            named = {}
            for name, plan in data["plans"].items():
                named[name] = {**plan, "name": name} if isinstance(plan, dict) else plan
            data = {**data, "plans": named}
        return data

    @model_validator(mode="after")
    def _rules(self) -> Plans:
        if set(self.plans) != set(PLANS):
            raise ValueError(
                f"plans must be exactly {', '.join(PLANS)}; got {', '.join(self.plans)}"
            )
        if self.plans[FREE].paid:
            raise ValueError("the free plan must cost 0")
        for plan in self.plans.values():
            if plan.paid != (plan.retention.after == "subscription_end"):
                raise ValueError(
                    f"{plan.name}: a paid plan keeps files after its subscription ends and the "
                    "free plan after the upload"
                )
        return self

    def __getitem__(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise BadInput(f"unknown plan {name!r}; plans: {', '.join(self.plans)}") from None

    @property
    def free(self) -> Plan:
        return self.plans[FREE]

    def ordered(self) -> list[Plan]:
        return [self.plans[name] for name in PLANS]


# -- loading ----------------------------------------------------------------------------------


def plans_path(settings: Settings) -> Path:
    if settings.billing.plans_file is not None:
        return settings.billing.plans_file
    return Path(str(resources.files("kadrio_server") / "plans.toml"))


def load_plans(settings: Settings) -> Plans:
    """The plans of ``settings`` (cached until the file changes); BadInput names a bad field."""
    path = plans_path(settings)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise BadInput(f"plans file {path}: {exc.strerror}") from None
    return _load(path, stamp)


@functools.lru_cache(maxsize=8)
def _load(path: Path, stamp: int) -> Plans:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
        return Plans.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"plans file {path}: invalid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "plans"
        text = first["msg"].removeprefix("Value error, ")
        raise BadInput(f"plans file {path}: {where}: {text}") from None


# -- retention --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """What retention depends on: the plan, the end of its paid period, the grace left over."""

    plan: str
    plan_until: datetime | None = None
    keep_until: datetime | None = None

    @classmethod
    def of(cls, user: Row) -> Standing:
        return cls(user["plan"], user.get("plan_until"), user.get("keep_until"))


def protected_until(plans: Plans, standing: Standing) -> datetime | None:
    """Every file of the account is kept until this time (None: as long as the plan lasts)."""
    plan = plans[standing.plan]
    cover = standing.keep_until
    if plan.paid:
        if standing.plan_until is None:
            return None  # a paid plan given by the operator without an end
        end = standing.plan_until + timedelta(days=plan.retention.days)
        cover = end if cover is None else max(cover, end)
    return cover


def retention_until(plans: Plans, uploaded_at: datetime, standing: Standing) -> datetime | None:
    """When a job uploaded at ``uploaded_at`` is deleted; None = kept while the plan lasts.

    The Free rule (N days after the upload) is the floor; a paid period adds its cover, which
    ends ``days`` after the period does and survives expiry or a downgrade as ``keep_until``.
    """
    floor = uploaded_at + timedelta(days=plans.free.retention.days)
    cover = protected_until(plans, standing)
    if cover is None and plans[standing.plan].paid:
        return None
    return floor if cover is None else max(floor, cover)


def effective_plan(plans: Plans, user: Row, now: datetime) -> Plan:
    """The plan whose limits apply now: a paid period that ended counts as Free at once,
    even before the periodic task has moved the account."""
    plan = plans[user["plan"]]
    until = user.get("plan_until")
    if plan.paid and until is not None and until <= now:
        return plans.free
    return plan


# -- limits at upload -------------------------------------------------------------------------


def upload_cap(settings: Settings, plans: Plans, user: Row, now: datetime) -> int:
    """The largest upload body this user may send: their plan's, or the server's if smaller."""
    plan = effective_plan(plans, user, now)
    return min(settings.service.upload_max_bytes, plan.max_upload_bytes)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def apply_plan(settings: Settings, plan: Plan, options: JobOptions) -> JobOptions:
    """The job's options within the plan: defaults capped, explicit excess refused (400)."""
    if options.max_clips is not None and options.max_clips > plan.clips_per_job:
        raise _limit(
            400, "plan_limit", plan, f"at most {plan.clips_per_job} clips per job on this plan"
        )
    if options.max_seconds is not None and options.max_seconds > plan.max_clip_seconds:
        raise _limit(
            400, "plan_limit", plan, f"clips of at most {plan.max_clip_seconds} s on this plan"
        )
    update: dict[str, object] = {}
    if options.max_clips is None and settings.max_clips > plan.clips_per_job:
        update["max_clips"] = plan.clips_per_job
    if options.max_seconds is None and settings.max_seconds > plan.max_clip_seconds:
        update["max_seconds"] = float(plan.max_clip_seconds)
    return options.model_copy(update=update) if update else options


def used_seconds(db: Database, user_id: str, now: datetime) -> float:
    """Seconds of video uploaded this calendar month (UTC), failed jobs given back."""
    _refund_failed(db, user_id)
    row = db.one(
        "SELECT COALESCE(SUM(seconds), 0) AS s FROM plan_usage "
        "WHERE user_id = ? AND refunded = 0 AND created_at >= ?",
        (user_id, month_start(now)),
    )
    return float(row["s"]) if row else 0.0


def _refund_failed(db: Database, user_id: str) -> None:
    db.execute(
        "UPDATE plan_usage SET refunded = 1 WHERE user_id = ? AND refunded = 0 AND job_id IN "
        "(SELECT id FROM jobs WHERE user_id = ? AND status = 'failed')",
        (user_id, user_id),
    )


def reserve(db: Database, plans: Plans, user: Row, duration: float, now: datetime) -> str:
    """Check the plan's length, monthly minutes and concurrency for a new job of ``duration``
    seconds and book its minutes; returns the booking id (``attach`` or ``release`` it)."""
    plan = effective_plan(plans, user, now)
    if duration > plan.max_video_minutes * 60:
        raise _limit(
            422,
            "too_long",
            plan,
            f"the video is {_minutes(duration)} min long; the limit is "
            f"{plan.max_video_minutes} min",
        )
    _refund_failed(db, user["id"])
    booking = new_id()
    with db.transaction() as tx:
        # a write to the user's row first: concurrent uploads of one account queue up here
        tx.execute("UPDATE users SET plan = plan WHERE id = ?", (user["id"],))
        row = tx.one(
            "SELECT COALESCE(SUM(seconds), 0) AS s FROM plan_usage "
            "WHERE user_id = ? AND refunded = 0 AND created_at >= ?",
            (user["id"], month_start(now)),
        )
        used = float(row["s"]) if row else 0.0
        allowed = plan.minutes_per_month * 60
        if used + duration > allowed:
            left = max(0.0, allowed - used)
            raise _limit(
                402,
                "quota_exceeded",
                plan,
                f"this video needs {_minutes(duration)} min and {_minutes(left)} of "
                f"{plan.minutes_per_month} min are left this month",
            )
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        active = tx.one(
            f"SELECT COUNT(*) AS n FROM jobs WHERE user_id = ? AND deleted_at IS NULL "
            f"AND status IN ({marks})",
            (user["id"], *ACTIVE_STATUSES),
        )
        booked = tx.one(
            "SELECT COUNT(*) AS n FROM plan_usage WHERE user_id = ? AND job_id IS NULL",
            (user["id"],),
        )
        running = int(active["n"] if active else 0) + int(booked["n"] if booked else 0)
        if running >= plan.concurrent_jobs:
            raise _limit(
                429,
                "too_many_jobs",
                plan,
                f"{running} job(s) are in progress; the plan runs {plan.concurrent_jobs} at a "
                "time, try again when one finishes",
            )
        tx.execute(
            "INSERT INTO plan_usage (id, user_id, job_id, seconds, refunded, created_at) "
            "VALUES (?, ?, NULL, ?, 0, ?)",
            (booking, user["id"], duration, now),
        )
    return booking


def attach(db: Database, booking: str, job_id: str) -> None:
    db.execute("UPDATE plan_usage SET job_id = ? WHERE id = ?", (job_id, booking))


def release(db: Database, booking: str) -> None:
    db.execute("DELETE FROM plan_usage WHERE id = ? AND job_id IS NULL", (booking,))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}".removesuffix(".0")


def _limit(status: int, code: str, plan: Plan, text: str) -> ApiError:
    hint = "" if plan.name == "business" else "; a larger plan allows more"
    return ApiError(status, code, f"{plan.label('en')} plan: {text}{hint}")


def store_within_plan(
    db: Database, plans: Plans, user: Row, duration: float, store: Callable[[], Row]
) -> Row:
    """Book the job's minutes (or refuse, see ``reserve``), run ``store`` and attach the job to
    the booking; a failed ``store`` gives the minutes back."""
    booking = reserve(db, plans, user, duration, utcnow())
    try:
        job = store()
    except BaseException:
        release(db, booking)
        raise
    attach(db, booking, job["id"])
    return job


def options_within_plan(settings: Settings, user: Row, options: JobOptions) -> JobOptions:
    """``apply_plan`` with the plan in force for ``user`` now."""
    return apply_plan(settings, effective_plan(load_plans(settings), user, utcnow()), options)


def upload_cap_for(settings: Settings, user: Row) -> int:
    return upload_cap(settings, load_plans(settings), user, utcnow())
