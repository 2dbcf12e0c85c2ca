-- Plans and payments, retention, account deletion, technical logs and user emails.
-- Portable SQL (PostgreSQL and SQLite); money in kopecks; times are TIMESTAMPTZ.

-- plan_until: end of the paid period (NULL on Free, or a paid plan given without an end).
-- keep_until: files are kept at least until then (the grace of a paid period that ended).
-- deactivated_at: the owner asked to delete the account; it is erased by the periodic task.
ALTER TABLE users ADD COLUMN plan_until TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN keep_until TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN deactivated_at TIMESTAMPTZ;
CREATE INDEX users_plan_until ON users (plan_until);
CREATE INDEX users_deactivated ON users (deactivated_at);

-- number is the provider's invoice id (Robokassa InvId). status: pending, paid.
-- When the account is erased, only number, amount, currency, status and dates remain
-- (accounting law): user_id, plan and period become NULL.
CREATE TABLE invoices (
    number BIGINT PRIMARY KEY,
    user_id TEXT REFERENCES users (id) ON DELETE SET NULL,
    plan TEXT,
    period_days INTEGER,
    amount_kopecks BIGINT NOT NULL,
    currency TEXT NOT NULL,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    paid_at TIMESTAMPTZ
);
CREATE INDEX invoices_user ON invoices (user_id);

-- Minutes of video booked per upload (monthly quota); job_id NULL = booked, job not stored yet.
CREATE TABLE plan_usage (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id TEXT,
    seconds DOUBLE PRECISION NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX plan_usage_user_created ON plan_usage (user_id, created_at);

-- IP address and user agent of security-relevant requests, deleted after 30 days.
CREATE TABLE techlog (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX techlog_created ON techlog (created_at);
CREATE INDEX techlog_user ON techlog (user_id);

-- Emails to a user (billing, account deletion, policy changes), at most once per (kind, ref);
-- sent right away and retried by the periodic task until sent_at is set.
CREATE TABLE mailings (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (user_id, kind, ref)
);
CREATE INDEX mailings_unsent ON mailings (sent_at);
