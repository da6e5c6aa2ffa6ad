//! A small HTTP client for the API (used by `collar demo`, `collar load` and the tests).

use std::time::{Duration, Instant};

use collar_protocol::tx::Deposit;
use collar_protocol::SignedTx;
use serde_json::Value;

/// A client bound to one node.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A reply: HTTP status and JSON body.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Parsed JSON body (`Null` if the body was not JSON).
    pub body: Value,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `code` field of an error body, or "".
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`), with an optional operator token.
    pub fn new(base: impl Into<String>, token: Option<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .expect("HTTP client"),
            base: base.into(),
            token,
        }
    }

    /// POSTs `stx` as JSON to `path`.
    ///
    /// # Errors
    /// Transport failures only; HTTP errors come back as a [`Reply`].
    pub async fn submit(&self, path: &str, stx: &SignedTx) -> Result<Reply, reqwest::Error> {
        self.submit_with_key(path, stx, None).await
    }

    /// POSTs `stx` as JSON to `path`, under `Idempotency-Key: key` if one is given. A deposit
    /// needs one: its identity on L1 (e.g. its deposit-queue number), since two identical
    /// deposits are two deposits.
    ///
    /// # Errors
    /// Transport failures only; HTTP errors come back as a [`Reply`].
    pub async fn submit_with_key(
        &self,
        path: &str,
        stx: &SignedTx,
        key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        let body = serde_json::to_vec(stx).expect("signed transactions serialise");
        self.post_raw(path, body, "application/json", key).await
    }

    /// POSTs raw bytes with a content type and optional idempotency key.
    ///
    /// # Errors
    /// Transport failures only.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, reqwest::Error> {
        let mut rq = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = &self.token {
            rq = rq.bearer_auth(t);
        }
        if let Some(k) = idempotency_key {
            rq = rq.header("idempotency-key", k);
        }
        let r = rq.send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok(Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// GETs `path`.
    ///
    /// # Errors
    /// Transport failures only.
    pub async fn get(&self, path: &str) -> Result<Reply, reqwest::Error> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok(Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// Sends `d` to the devnet L1's settlement contract (`POST /v1/l1/deposits`).
    ///
    /// # Errors
    /// Transport failures only.
    pub async fn l1_deposit(&self, d: &Deposit) -> Result<Reply, reqwest::Error> {
        let body = serde_json::to_vec(d).expect("a deposit serialises");
        self.post_raw("/v1/l1/deposits", body, "application/json", None)
            .await
    }

    /// Polls `GET /v1/l1` until the node has durably credited the first `count` L1 deposits;
    /// returns that status body, or `None` if `timeout` passes first.
    ///
    /// # Errors
    /// Transport failures only.
    pub async fn await_l1_credited(
        &self,
        count: u64,
        timeout: Duration,
    ) -> Result<Option<Value>, reqwest::Error> {
        let started = Instant::now();
        loop {
            let s = self.get("/v1/l1").await?.body;
            if s["credited"].as_u64() >= Some(count) {
                return Ok(Some(s));
            }
            if started.elapsed() >= timeout {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
