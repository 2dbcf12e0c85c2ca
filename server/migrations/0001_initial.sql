-- Users, API tokens, jobs, clips and consents. Portable SQL: runs on PostgreSQL and SQLite.
-- Ids are random text; times are TIMESTAMPTZ (UTC text in SQLite); JSON is stored as TEXT.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    plan TEXT NOT NULL DEFAULT 'free',
    language TEXT NOT NULL DEFAULT 'en',
    webhook_secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Only a SHA-256 of each token is kept; prefix is its first characters, for people to recognise it.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- status: queued, transcribing, selecting, rendering, done, failed. deleted_at set = being erased.
-- heartbeat_at: last sign of life of the stage in progress; requeued_at: last recovery enqueue.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    message TEXT,
    source_name TEXT NOT NULL,
    source_key TEXT NOT NULL,
    source_size BIGINT NOT NULL,
    media TEXT NOT NULL,
    options TEXT NOT NULL,
    webhook_url TEXT,
    webhook_status TEXT,
    providers TEXT NOT NULL DEFAULT '{}',
    attempts TEXT NOT NULL DEFAULT '[]',
    clip_count INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    requeued_at TIMESTAMPTZ,
    notified_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX jobs_user_created ON jobs (user_id, created_at, id);
CREATE INDEX jobs_status ON jobs (status);

-- status: pending, rendering, done. One row per (job, index): a rerun can never duplicate a clip.
CREATE TABLE clips (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    moment TEXT NOT NULL,
    title TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    start_time DOUBLE PRECISION NOT NULL,
    end_time DOUBLE PRECISION NOT NULL,
    files TEXT,
    width INTEGER,
    height INTEGER,
    size BIGINT,
    renderer TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',
    runs INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    requeued_at TIMESTAMPTZ,
    UNIQUE (job_id, idx)
);
CREATE INDEX clips_status ON clips (status);

-- Proof of consent: which text (version) the user accepted, and when. Kept when the job is
-- deleted (job_id becomes NULL); erased with the account.
CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id TEXT,
    kind TEXT NOT NULL,
    version TEXT NOT NULL,
    given_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX consents_user ON consents (user_id);
CREATE INDEX consents_job ON consents (job_id);
