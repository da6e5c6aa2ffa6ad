//! Prometheus metrics in the text exposition format, kept in atomics (no global registry).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A cumulative histogram over fixed second-valued buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, c) in self.bounds.iter().zip(&self.buckets) {
            if s <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    accepted_by_kind: Mutex<BTreeMap<String, u64>>,
    /// Resubmissions answered from the idempotency record.
    pub replayed: Counter,
    /// Submissions refused (rules, signatures, conflicts).
    pub rejected: Counter,
    /// Batches sealed.
    pub batches_sealed: Counter,
    /// HTTP requests by status class, indexed 1..=5.
    pub http: [Counter; 6],
    /// Transactions written per group commit.
    pub committed_txs: Counter,
    /// Group commits.
    pub commits: Counter,
    /// Duration of a group's database commit.
    pub commit_latency: Histogram,
    /// Duration of a whole group (checks + commit).
    pub group_latency: Histogram,
    /// Proofs verified by in-process workers.
    pub proofs_verified: Counter,
    /// Proving jobs failed by in-process workers.
    pub proofs_failed: Counter,
    /// Submissions answered 429 by the per-client rate limit.
    pub rate_limited_client: Counter,
    /// Submissions answered 429 by the overall rate limit.
    pub rate_limited_overall: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            accepted_by_kind: Mutex::new(BTreeMap::new()),
            replayed: Counter::default(),
            rejected: Counter::default(),
            batches_sealed: Counter::default(),
            http: Default::default(),
            committed_txs: Counter::default(),
            commits: Counter::default(),
            commit_latency: Histogram::new(LATENCY_BOUNDS),
            group_latency: Histogram::new(LATENCY_BOUNDS),
            proofs_verified: Counter::default(),
            proofs_failed: Counter::default(),
            rate_limited_client: Counter::default(),
            rate_limited_overall: Counter::default(),
        }
    }
}

impl Metrics {
    /// Counts one accepted transaction of `kind`.
    pub fn accepted(&self, kind: &str) {
        let mut m = self
            .accepted_by_kind
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *m.entry(kind.to_string()).or_default() += 1;
    }

    /// Accepted transactions of `kind` so far.
    pub fn accepted_count(&self, kind: &str) -> u64 {
        let m = self
            .accepted_by_kind
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.get(kind).copied().unwrap_or(0)
    }

    /// Records one group commit of `txs` transactions.
    pub fn observe_commit(&self, d: Duration, txs: usize) {
        self.commit_latency.observe(d);
        self.commits.inc();
        self.committed_txs.add(txs as u64);
    }

    /// Records one processed group.
    pub fn observe_group(&self, d: Duration, _n: usize) {
        self.group_latency.observe(d);
    }

    /// Counts an HTTP response status.
    pub fn http_status(&self, status: u16) {
        let class = (status / 100).min(5) as usize;
        self.http[class].inc();
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP collar_txs_accepted_total Transactions committed, by kind.\n# TYPE collar_txs_accepted_total counter");
        for (k, v) in self
            .accepted_by_kind
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "collar_txs_accepted_total{{kind=\"{k}\"}} {v}");
        }
        let counters: [(&str, &str, &Counter); 7] = [
            (
                "collar_txs_replayed_total",
                "Resubmissions answered from the idempotency record.",
                &self.replayed,
            ),
            (
                "collar_txs_rejected_total",
                "Submissions refused.",
                &self.rejected,
            ),
            (
                "collar_batches_sealed_total",
                "Batches sealed.",
                &self.batches_sealed,
            ),
            ("collar_db_commits_total", "Group commits.", &self.commits),
            (
                "collar_db_committed_txs_total",
                "Transactions written by group commits.",
                &self.committed_txs,
            ),
            (
                "collar_proofs_verified_total",
                "Proofs verified by in-process workers.",
                &self.proofs_verified,
            ),
            (
                "collar_proofs_failed_total",
                "Proving jobs failed in in-process workers.",
                &self.proofs_failed,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.get()
            );
        }
        let _ = writeln!(out, "# HELP collar_http_responses_total HTTP responses by status class.\n# TYPE collar_http_responses_total counter");
        for class in 1..=5 {
            let _ = writeln!(
                out,
                "collar_http_responses_total{{class=\"{class}xx\"}} {}",
                self.http[class].get()
            );
        }
        let _ = writeln!(out, "# HELP collar_http_rate_limited_total Submissions answered 429, by the limit hit.\n# TYPE collar_http_rate_limited_total counter");
        for (limit, c) in [
            ("client", &self.rate_limited_client),
            ("overall", &self.rate_limited_overall),
        ] {
            let _ = writeln!(
                out,
                "collar_http_rate_limited_total{{limit=\"{limit}\"}} {}",
                c.get()
            );
        }
        self.commit_latency.render(
            &mut out,
            "collar_db_commit_seconds",
            "Duration of one group commit.",
        );
        self.group_latency.render(
            &mut out,
            "collar_group_seconds",
            "Duration of one group: checks, apply and commit.",
        );
        out
    }
}
