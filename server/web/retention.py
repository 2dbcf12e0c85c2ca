"""When a job's files are deleted, as shown on the dashboard and the "Your data" page.

The rule itself lives in kadrio_server.plans (the plans file, the account's paid period and
grace); this is the one place the web app asks it.
"""

from __future__ import annotations

from datetime import datetime

from kadrio_core.settings import Settings

from ..db import Row
from ..plans import Standing, load_plans, retention_until


def job_retention(settings: Settings, user: Row, job: Row) -> datetime | None:
    """The deletion time of ``job``; None while the account's paid plan has no end date."""
    return retention_until(load_plans(settings), job["created_at"], Standing.of(user))
