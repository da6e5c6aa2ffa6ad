//! Persistence: one `sqlx` Any pool over SQLite (embedded default) or Postgres, chosen by the
//! URL; runtime queries only (no compile-time database checks); migrations from `migrations/`.
//!
//! The transaction log (`txs`) is the source of truth: the in-memory state is rebuilt from it by
//! replay. Batches and jobs reference it by sequence range.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::error::DbError;

/// Which database engine a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (`sqlite://path?mode=rwc`).
    Sqlite,
    /// Postgres (`postgres://…`).
    Postgres,
}

/// Migrations per backend: `(version, name, sql)`, applied in order.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../../migrations/sqlite/0001_init.sql"),
)];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../../migrations/postgres/0001_init.sql"),
)];

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A connection pool plus its backend.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// One accepted transaction as stored.
#[derive(Clone, Debug)]
pub struct TxRow {
    /// Sequence number (1-based, gap-free).
    pub seq: i64,
    /// Batch it belongs to.
    pub batch: i64,
    /// Idempotency key.
    pub idem_key: String,
    /// Hash of the signed payload.
    pub payload_hash: String,
    /// Transaction kind.
    pub kind: String,
    /// The signed transaction, JSON.
    pub payload: String,
    /// The reply given, JSON.
    pub reply: String,
}

/// A sealed batch as stored.
#[derive(Clone, Debug)]
pub struct BatchRow {
    /// Batch number (1-based).
    pub number: i64,
    /// `sealed`, `proving`, `proved`, `verified` or `failed`.
    pub status: String,
    /// First transaction sequence number.
    pub first_seq: i64,
    /// Last transaction sequence number.
    pub last_seq: i64,
    /// Number of transactions.
    pub tx_count: i64,
    /// State root before, hex.
    pub old_root: String,
    /// State root after, hex.
    pub new_root: String,
    /// Public inputs JSON once proved.
    pub public_inputs: Option<String>,
    /// Proof bytes once proved.
    pub proof: Option<Vec<u8>>,
    /// Proof backend name.
    pub backend: Option<String>,
    /// Proving time in ms.
    pub prove_ms: Option<i64>,
    /// Why proving failed, if it did.
    pub error: Option<String>,
    /// Job attempts so far.
    pub attempts: i64,
    /// Job's last error.
    pub last_error: Option<String>,
}

/// A batch sealed by the sequencer, written in the same transaction as its last tx (or alone).
#[derive(Clone, Debug)]
pub struct NewBatch {
    /// Batch number.
    pub number: i64,
    /// First sequence number.
    pub first_seq: i64,
    /// Last sequence number.
    pub last_seq: i64,
    /// State root before, hex.
    pub old_root: String,
    /// State root after, hex.
    pub new_root: String,
}

/// A job claimed by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The batch to prove.
    pub batch: i64,
    /// Attempts including this one.
    pub attempts: i64,
}

/// Counts per job status.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobCounts {
    /// Waiting for a worker.
    pub queued: i64,
    /// Claimed under a lease.
    pub running: i64,
    /// Proved and verified.
    pub done: i64,
    /// Given up (unsupported or out of attempts).
    pub failed: i64,
}

fn row_batch(r: &AnyRow) -> Result<BatchRow, sqlx::Error> {
    Ok(BatchRow {
        number: r.try_get("number")?,
        status: r.try_get("status")?,
        first_seq: r.try_get("first_seq")?,
        last_seq: r.try_get("last_seq")?,
        tx_count: r.try_get("tx_count")?,
        old_root: r.try_get("old_root")?,
        new_root: r.try_get("new_root")?,
        public_inputs: r.try_get("public_inputs")?,
        proof: r.try_get("proof")?,
        backend: r.try_get("backend")?,
        prove_ms: r.try_get("prove_ms")?,
        error: r.try_get("error")?,
        attempts: r.try_get::<Option<i64>, _>("attempts")?.unwrap_or(0),
        last_error: r.try_get("last_error")?,
    })
}

impl Db {
    /// Connects (creating a SQLite file if needed) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let url = if backend == Backend::Sqlite && !url.contains('?') && !url.contains(":memory:") {
            format!("{url}?mode=rwc")
        } else {
            url.to_string()
        };
        let opts = AnyPoolOptions::new().max_connections(max_connections);
        let pool = opts.connect(&url).await?;
        let db = Self { pool, backend };
        if backend == Backend::Sqlite {
            // WAL is a persistent property of the file; sqlx's SQLite defaults keep
            // synchronous=FULL (a commit syncs the log), foreign_keys=ON and a busy timeout.
            sqlx::query("PRAGMA journal_mode=WAL")
                .fetch_optional(&db.pool)
                .await?;
        }
        db.migrate().await?;
        Ok(db)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (for tests and tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let list = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // Serialises concurrent starters (a node and its workers) on one database.
            sqlx::query("SELECT pg_advisory_xact_lock(7406232)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS collar_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        for (version, name, sql) in list {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM collar_migrations WHERE version = $1")
                    .bind(*version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO collar_migrations (version, name) VALUES ($1, $2)")
                .bind(*version)
                .bind(*name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Reads a `meta` value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a `meta` value if absent; returns the stored value (the existing one if present).
    pub async fn meta_init(&self, key: &str, value: &str) -> Result<String, DbError> {
        let sql = match self.backend {
            Backend::Sqlite => "INSERT OR IGNORE INTO meta (key, value) VALUES ($1, $2)",
            Backend::Postgres => {
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
            }
        };
        sqlx::query(sql)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.meta(key)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("meta {key} vanished")))
    }

    /// Transactions with `seq > after`, in order, at most `limit`.
    pub async fn txs_after(&self, after: i64, limit: i64) -> Result<Vec<TxRow>, DbError> {
        let rows = sqlx::query(
            "SELECT seq, batch, idem_key, payload_hash, kind, payload, reply FROM txs \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TxRow {
                    seq: r.try_get("seq")?,
                    batch: r.try_get("batch")?,
                    idem_key: r.try_get("idem_key")?,
                    payload_hash: r.try_get("payload_hash")?,
                    kind: r.try_get("kind")?,
                    payload: r.try_get("payload")?,
                    reply: r.try_get("reply")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Payloads of the transactions with `first <= seq <= last`, in order.
    pub async fn payloads(&self, first: i64, last: i64) -> Result<Vec<String>, DbError> {
        Ok(
            sqlx::query_scalar(
                "SELECT payload FROM txs WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
            )
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    /// Number of stored transactions.
    pub async fn tx_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM txs")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Writes accepted transactions and sealed batches (with their jobs) in ONE database
    /// transaction; returns after the commit. Either all rows are durable or none.
    pub async fn commit_group(&self, txs: &[TxRow], seals: &[NewBatch]) -> Result<(), DbError> {
        let mut dbtx = self.pool.begin().await?;
        let now = now_ms();
        // Multi-row inserts, chunked well under the bind-parameter limits of both engines.
        for chunk in txs.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO txs (seq, batch, idem_key, payload_hash, kind, payload, reply, accepted_ms) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = q
                    .bind(t.seq)
                    .bind(t.batch)
                    .bind(t.idem_key.as_str())
                    .bind(t.payload_hash.as_str())
                    .bind(t.kind.as_str())
                    .bind(t.payload.as_str())
                    .bind(t.reply.as_str())
                    .bind(now);
            }
            q.execute(&mut *dbtx).await?;
        }
        for s in seals {
            insert_batch(&mut dbtx, s, now).await?;
        }
        dbtx.commit().await?;
        Ok(())
    }

    /// All sealed batches in order (for replay checks).
    pub async fn batches(&self) -> Result<Vec<BatchRow>, DbError> {
        let rows = sqlx::query(
            "SELECT b.number, b.status, b.first_seq, b.last_seq, b.tx_count, b.old_root, b.new_root, \
             b.public_inputs, b.proof, b.backend, b.prove_ms, b.error, j.attempts, j.last_error \
             FROM batches b LEFT JOIN jobs j ON j.batch = b.number ORDER BY b.number",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(row_batch)
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// One sealed batch.
    pub async fn batch(&self, number: i64) -> Result<Option<BatchRow>, DbError> {
        let row = sqlx::query(
            "SELECT b.number, b.status, b.first_seq, b.last_seq, b.tx_count, b.old_root, b.new_root, \
             b.public_inputs, b.proof, b.backend, b.prove_ms, b.error, j.attempts, j.last_error \
             FROM batches b LEFT JOIN jobs j ON j.batch = b.number WHERE b.number = $1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_batch).transpose().map_err(Into::into)
    }

    /// Claims the lowest claimable job: queued, or running with an expired lease, and with
    /// fewer than `max_attempts` attempts. Jobs out of attempts whose lease expired are marked
    /// failed first. Postgres uses `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim
    /// the same job; SQLite serialises writers.
    pub async fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
        max_attempts: i64,
    ) -> Result<Option<Claim>, DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // Give up on jobs out of attempts whose last lease expired (their worker died).
        let dead = sqlx::query(
            "UPDATE jobs SET status = 'failed', updated_ms = $1, \
             last_error = COALESCE(last_error, 'worker lost its lease') || ' (out of attempts)' \
             WHERE status = 'running' AND lease_until < $1 AND attempts >= $2 RETURNING batch",
        )
        .bind(now)
        .bind(max_attempts)
        .fetch_all(&mut *tx)
        .await?;
        for r in dead {
            let b: i64 = r.try_get("batch")?;
            sqlx::query("UPDATE batches SET status = 'failed', error = 'out of proving attempts' WHERE number = $1")
                .bind(b)
                .execute(&mut *tx)
                .await?;
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, \
             lease_until = $2, updated_ms = $3 \
             WHERE batch = (SELECT batch FROM jobs WHERE (status = 'queued' OR \
             (status = 'running' AND lease_until < $3)) AND attempts < $4 \
             ORDER BY batch LIMIT 1{lock}) RETURNING batch, attempts"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(max_attempts)
            .fetch_optional(&mut *tx)
            .await?;
        let claim = match row {
            Some(r) => {
                let c = Claim {
                    batch: r.try_get("batch")?,
                    attempts: r.try_get("attempts")?,
                };
                sqlx::query("UPDATE batches SET status = 'proving' WHERE number = $1")
                    .bind(c.batch)
                    .execute(&mut *tx)
                    .await?;
                Some(c)
            }
            None => None,
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Extends the lease if `owner` still holds it; false if it was lost.
    pub async fn renew_lease(
        &self,
        batch: i64,
        owner: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_ms = $2 \
             WHERE batch = $3 AND lease_owner = $4 AND status = 'running'",
        )
        .bind(now_ms() + lease_ms)
        .bind(now_ms())
        .bind(batch)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a verified proof if `owner` still holds the lease (the batch becomes `proved`);
    /// false, writing nothing, if the lease was lost.
    pub async fn complete_job(
        &self,
        batch: i64,
        owner: &str,
        public_inputs: &str,
        proof: &[u8],
        backend: &str,
        prove_ms: i64,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE jobs SET status = 'done', updated_ms = $1, last_error = NULL \
             WHERE batch = $2 AND lease_owner = $3 AND status = 'running'",
        )
        .bind(now)
        .bind(batch)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE batches SET status = 'proved', public_inputs = $1, proof = $2, backend = $3, \
             prove_ms = $4, proved_ms = $5, error = NULL WHERE number = $6",
        )
        .bind(public_inputs)
        .bind(proof.to_vec())
        .bind(backend)
        .bind(prove_ms)
        .bind(now)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a proved batch verified (its stored proof re-checked from the database).
    pub async fn mark_verified(&self, batch: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE batches SET status = 'verified', verified_ms = $1 WHERE number = $2 AND status = 'proved'",
        )
        .bind(now_ms())
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt. `permanent` failures (the circuit cannot prove the batch) fail
    /// the job and the batch at once; others requeue it. No-op if the lease was lost.
    pub async fn fail_job(
        &self,
        batch: i64,
        owner: &str,
        reason: &str,
        permanent: bool,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let status = if permanent { "failed" } else { "queued" };
        let r = sqlx::query(
            "UPDATE jobs SET status = $1, last_error = $2, updated_ms = $3, lease_owner = NULL, \
             lease_until = NULL WHERE batch = $4 AND lease_owner = $5 AND status = 'running'",
        )
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(batch)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let bstatus = if permanent { "failed" } else { "sealed" };
        sqlx::query("UPDATE batches SET status = $1, error = $2 WHERE number = $3")
            .bind(bstatus)
            .bind(reason)
            .bind(batch)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Job counts by status.
    pub async fn job_counts(&self) -> Result<JobCounts, DbError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut c = JobCounts::default();
        for r in rows {
            let s: String = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            match s.as_str() {
                "queued" => c.queued = n,
                "running" => c.running = n,
                "done" => c.done = n,
                "failed" => c.failed = n,
                _ => {}
            }
        }
        Ok(c)
    }
}

async fn insert_batch(
    dbtx: &mut Transaction<'_, Any>,
    s: &NewBatch,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO batches (number, status, first_seq, last_seq, tx_count, old_root, new_root, sealed_ms) \
         VALUES ($1, 'sealed', $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.number)
    .bind(s.first_seq)
    .bind(s.last_seq)
    .bind(s.last_seq - s.first_seq + 1)
    .bind(s.old_root.as_str())
    .bind(s.new_root.as_str())
    .bind(now)
    .execute(&mut **dbtx)
    .await?;
    sqlx::query(
        "INSERT INTO jobs (batch, status, attempts, updated_ms) VALUES ($1, 'queued', 0, $2)",
    )
    .bind(s.number)
    .bind(now)
    .execute(&mut **dbtx)
    .await?;
    Ok(())
}
