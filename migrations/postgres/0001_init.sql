-- Collar sequencer schema (Postgres). Applied by the sequencer's migration runner in one
-- transaction under an advisory lock; recorded in collar_migrations.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Accepted (committed) transactions in sequence order: the source of truth.
CREATE TABLE IF NOT EXISTS txs (
    seq          BIGINT PRIMARY KEY,
    batch        BIGINT NOT NULL,
    idem_key     TEXT   NOT NULL UNIQUE,
    payload_hash TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    reply        TEXT   NOT NULL,
    accepted_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_by_batch ON txs (batch, seq);

-- Sealed batches. The open batch has no row: its transactions carry its number.
CREATE TABLE IF NOT EXISTS batches (
    number        BIGINT PRIMARY KEY,
    status        TEXT   NOT NULL CHECK (status IN ('sealed', 'proving', 'proved', 'verified', 'failed')),
    first_seq     BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL,
    tx_count      BIGINT NOT NULL,
    old_root      TEXT   NOT NULL,
    new_root      TEXT   NOT NULL,
    public_inputs TEXT,
    proof         BYTEA,
    backend       TEXT,
    prove_ms      BIGINT,
    sealed_ms     BIGINT NOT NULL,
    proved_ms     BIGINT,
    verified_ms   BIGINT,
    error         TEXT
);

-- Proving jobs, one per sealed batch, claimed with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE IF NOT EXISTS jobs (
    batch       BIGINT PRIMARY KEY REFERENCES batches (number),
    status      TEXT   NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error  TEXT,
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, batch);
