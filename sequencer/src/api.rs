//! The HTTP API (axum, JSON, under `/v1`), Prometheus `/metrics` and `/openapi.json`
//! generated from these handlers by utoipa.
//!
//! Every error is JSON `{code, message}`: malformed JSON 400, a content type other than
//! `application/json` (bare or `; charset=utf-8`) 415, a well-formed but invalid body (an
//! unknown field at any level included) or a protocol rejection 422 (the code names the rule),
//! a reused idempotency key 409, a missing or wrong operator token 401, an oversize body 413,
//! rate limiting 429 (with `Retry-After: 1`), an unconfirmed commit 503. Client input never
//! yields a 500.
//!
//! Idempotency: a submission may carry an `Idempotency-Key` header (1..=128 visible ASCII
//! characters). The same payload sent again under it is answered with the stored receipt;
//! another payload under it is 409 `idempotency_conflict`, answered only after that payload's
//! signatures verify, so a forgery gets its 422 whether or not the key exists. Keys are scoped
//! ([`crate::idempotency`]): on an operator kind (deposit, register_series, oracle_tick) to the
//! operator, on a signed user transaction to the accounts that sign it, on a settlement (which
//! anyone may send) to the settlements of its account, so one client can neither see nor
//! reserve another's keys. Without the header the
//! key is derived from the transaction (signer and nonce, tick time, or payload hash), except
//! for a deposit: it must carry its L1 identity (e.g. its deposit-queue number) as its key, or
//! it is refused with 400 `idempotency_key_required`, since two identical deposits are two
//! deposits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, State as AxState};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use collar_protocol::tx::Deposit;
use collar_protocol::{SignedTx, Tx};
use collar_verifier::settlement::L1Error;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use utoipa::{OpenApi, ToSchema};

use crate::db::Db;
use crate::error::SubmitError;
use crate::idempotency::{derived_key, Scope};
use crate::l1::{L1Feed, L1Status};
use crate::metrics::Metrics;
use crate::sequencer::{
    fr_hex, payload_hash, rejection_code, Receipt, SequencerHandle, Submission,
};

/// A typed JSON error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code (`malformed_json`, `insufficient_collateral`, …).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // Every limit is at least one submission per second: a token is back within 1 s.
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match &e {
            SubmitError::Rejected(r) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                &rejection_code(r),
                r.to_string(),
            ),
            SubmitError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "idempotency_conflict", e.to_string())
            }
            SubmitError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            _ => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }
}

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Bearer token for operator endpoints; `None` disables them.
    pub operator_token: Option<String>,
    /// Largest accepted request body in bytes.
    pub max_body: usize,
    /// Submissions per second across all clients (burst: the same number); `None` for no
    /// limit.
    pub rate_limit: Option<u32>,
    /// Submissions per second from each client (burst: the same number); `None` for no limit.
    /// A client is the TCP peer's IP address (see [`Peer`]), or its /64 for IPv6
    /// ([`client_key`]); `X-Forwarded-For` and similar
    /// headers are ignored, so behind a reverse proxy every client counts as the proxy.
    /// Checked before [`ApiConfig::rate_limit`], so a client over its own limit spends nothing
    /// of the overall one.
    pub client_rate_limit: Option<u32>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            operator_token: None,
            max_body: 64 * 1024,
            rate_limit: None,
            client_rate_limit: None,
        }
    }
}

/// A token bucket holding at most `rate` tokens, refilled at `rate` tokens per second.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Self {
        Self {
            tokens: rate,
            last: now,
        }
    }

    /// The tokens at `now`, capped at `rate`.
    fn level(&self, now: Instant, rate: f64) -> f64 {
        (self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * rate).min(rate)
    }

    /// Refills up to `now` and takes one token if there is one.
    fn try_take(&mut self, now: Instant, rate: f64) -> bool {
        self.tokens = self.level(now, rate);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Most per-client buckets kept at once.
const MAX_CLIENTS: usize = 65_536;

/// One bucket per client (`None`: requests without a known peer, all counted together),
/// bounded to `cap` entries so that many addresses cannot exhaust memory.
#[derive(Debug)]
struct ClientBuckets {
    map: HashMap<Option<IpAddr>, Bucket>,
    cap: usize,
}

impl ClientBuckets {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// Takes one of `client`'s tokens at `now`, creating its bucket full if it has none. IPv6
    /// addresses count per /64 ([`client_key`]).
    fn try_take(&mut self, client: Option<IpAddr>, now: Instant, rate: f64) -> bool {
        let client = client.map(client_key);
        if !self.map.contains_key(&client) {
            self.make_room(now, rate);
        }
        self.map
            .entry(client)
            .or_insert_with(|| Bucket::full(rate, now))
            .try_take(now, rate)
    }

    /// At the cap, drops every full bucket: a client idle long enough to refill is the same as
    /// a new one, so nothing is lost. If that frees less than a quarter of the map (many
    /// clients active within the last second), it also drops the least recently used buckets
    /// down to half the cap; those clients start again with a full burst, and the overall
    /// limit still holds. Each sweep frees at least a quarter of the cap, so its cost is
    /// amortised over as many insertions.
    fn make_room(&mut self, now: Instant, rate: f64) {
        if self.map.len() < self.cap {
            return;
        }
        self.map.retain(|_, b| b.level(now, rate) < rate);
        if self.map.len() > self.cap - self.cap / 4 {
            let keep = self.cap / 2;
            let mut lasts: Vec<Instant> = self.map.values().map(|b| b.last).collect();
            let cut = lasts.len() - keep - 1;
            let (_, cutoff, _) = lasts.select_nth_unstable(cut);
            let cutoff = *cutoff;
            self.map.retain(|_, b| b.last > cutoff);
        }
    }
}

/// The address a client's submissions are counted under: an IPv4 address itself, an IPv6
/// address its /64 prefix (the rest zeroed). A /64 is the smallest block commonly assigned to
/// one subscriber or host, and its 2^64 addresses are free to rotate through, so counting per
/// address would not limit an IPv6 client at all.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

/// How a 429 names a client: its address, or its /64 for IPv6 ([`client_key`]).
fn client_name(peer: Option<IpAddr>) -> String {
    match peer.map(client_key) {
        None => "an unknown address".to_string(),
        Some(ip @ IpAddr::V4(_)) => ip.to_string(),
        Some(ip @ IpAddr::V6(_)) => format!("{ip}/64"),
    }
}

/// The client a request counts as for [`ApiConfig::client_rate_limit`]: the TCP peer's IP
/// address from [`ConnectInfo`] (so the server must be run with
/// `into_make_service_with_connect_info::<SocketAddr>()`, as [`crate::node::Node`] does), with
/// IPv4-mapped IPv6 addresses folded to IPv4. Forwarding headers (`X-Forwarded-For`,
/// `Forwarded`) are never trusted: any client can write them. `None` where the connection
/// info is absent (e.g. in-process `oneshot` calls); such requests share one bucket. Never
/// rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let info = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await;
        Ok(Peer(info.ok().map(|ConnectInfo(a)| a.ip().to_canonical())))
    }
}

fn rate_limited(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
}

/// Shared handler state.
#[derive(Clone, Debug)]
pub struct AppState {
    seq: SequencerHandle,
    db: Db,
    metrics: Arc<Metrics>,
    config: Arc<ApiConfig>,
    bucket: Arc<Mutex<Bucket>>,
    clients: Arc<Mutex<ClientBuckets>>,
    l1: Option<L1Feed>,
}

impl AppState {
    /// Handler state over a running sequencer.
    pub fn new(seq: SequencerHandle, db: Db, metrics: Arc<Metrics>, config: ApiConfig) -> Self {
        let tokens = config.rate_limit.unwrap_or(0) as f64;
        Self {
            seq,
            db,
            metrics,
            config: Arc::new(config),
            bucket: Arc::new(Mutex::new(Bucket::full(tokens, Instant::now()))),
            clients: Arc::new(Mutex::new(ClientBuckets::new(MAX_CLIENTS))),
            l1: None,
        }
    }

    /// Deposits come from `l1`'s settlement contract: the deposit routes refuse them, and
    /// `/v1/l1/…` serve the devnet.
    pub fn with_l1(mut self, l1: L1Feed) -> Self {
        self.l1 = Some(l1);
        self
    }

    fn l1(&self) -> Result<&L1Feed, ApiError> {
        self.l1.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_l1",
                "this node has no devnet L1 (start it with --l1-devnet)",
            )
        })
    }

    /// Takes a token from `peer`'s bucket, then from the overall one; the 429 says which
    /// limit was hit.
    fn take_token(&self, peer: Peer) -> Result<(), ApiError> {
        if let Some(rate) = self.config.client_rate_limit {
            let taken = {
                let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
                c.try_take(peer.0, Instant::now(), f64::from(rate))
            };
            if !taken {
                self.metrics.rate_limited_client.inc();
                let who = client_name(peer.0);
                return Err(rate_limited(format!(
                    "per-client limit: more than {rate} submissions per second from {who}; \
                     retry later"
                )));
            }
        }
        if let Some(rate) = self.config.rate_limit {
            let taken = {
                let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
                b.try_take(Instant::now(), f64::from(rate))
            };
            if !taken {
                self.metrics.rate_limited_overall.inc();
                return Err(rate_limited(format!(
                    "overall limit: more than {rate} submissions per second across all \
                     clients; retry later"
                )));
            }
        }
        Ok(())
    }

    fn check_operator(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.config.operator_token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "operator_disabled",
                "no operator token is configured on this node",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given == Some(token.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "operator endpoints need `Authorization: Bearer <token>`",
            ))
        }
    }
}

/// Which transaction kinds an endpoint takes.
#[derive(Clone, Copy, Debug)]
enum Route {
    AnyUser,
    Only(&'static str),
    Operator(&'static str),
}

fn is_operator_kind(tx: &Tx) -> bool {
    matches!(
        tx,
        Tx::Deposit(_) | Tx::RegisterSeries(_) | Tx::OracleTick(_)
    )
}

/// Whether the content type `ct` is `application/json` with no parameter or with only
/// `charset=utf-8` (names and values case-insensitive, the value quoted or not). JSON is UTF-8
/// (RFC 8259 §8.1): a body declared in another charset would be read as something it is not.
fn is_json_utf8(ct: &str) -> bool {
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return false;
    }
    match (parts.next(), parts.next()) {
        (None, _) => true,
        (Some(param), None) => param.split_once('=').is_some_and(|(name, value)| {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
        }),
        _ => false,
    }
}

/// The JSON body of a request: 415 unless `application/json` (bare or `; charset=utf-8`), 413
/// over the size limit, 400 if malformed, 422 if well-formed but not `what` (an unknown field
/// at any level included).
fn json_body<T: serde::de::DeserializeOwned>(
    st: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> Result<T, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    if !ct
        .and_then(|v| std::str::from_utf8(v).ok())
        .is_some_and(is_json_utf8)
    {
        let given = match ct {
            Some(v) => format!("got {:?}", String::from_utf8_lossy(v)),
            None => "got none".to_string(),
        };
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "expected Content-Type: application/json (optionally with charset=utf-8); {given}"
            ),
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body exceeds {} bytes", st.config.max_body),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("not {what}: {e}"),
        ),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
    })
}

/// Parses, authorises and submits; replies only after the commit.
async fn submit(
    st: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    route: Route,
) -> Result<Json<Receipt>, ApiError> {
    st.take_token(peer)?;
    if let Route::Operator(_) = route {
        st.check_operator(headers)?;
    }
    let stx: SignedTx = json_body(st, headers, body, "a signed transaction")?;
    let kind = stx.tx.kind();
    if kind == "deposit" && st.l1.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "l1_deposits_only",
            "deposits on this node come from the settlement contract's queue (POST /v1/l1/deposits on the devnet)",
        ));
    }
    match route {
        Route::AnyUser if is_operator_kind(&stx.tx) => st.check_operator(headers)?,
        Route::Only(k) | Route::Operator(k) if k != kind => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong_kind",
                format!("this endpoint takes {k} transactions, got {kind}"),
            ))
        }
        _ => {}
    }
    let payload = serde_json::to_string(&stx).expect("a parsed transaction serialises");
    let hash = payload_hash(&payload);
    let idem_key = match headers.get("idempotency-key") {
        Some(v) => {
            let k = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 128);
            let k = k.ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_idempotency_key",
                    "Idempotency-Key must be 1..=128 visible ASCII characters",
                )
            })?;
            Scope::of(&stx.tx).key(k)
        }
        None => derived_key(&stx, &hash).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "a deposit needs an Idempotency-Key naming it on L1 (e.g. its deposit-queue \
                 number): nothing in its payload tells two identical deposits apart",
            )
        })?,
    };
    let (tx, rx) = oneshot::channel();
    st.seq
        .submit(Submission {
            stx,
            payload,
            payload_hash: hash,
            idem_key,
            reply: tx,
        })
        .await?;
    let r = rx
        .await
        .map_err(|_| SubmitError::Unavailable("sequencer stopped".into()))??;
    Ok(Json(r))
}

/// What the `Idempotency-Key` header means on a route taking any kind.
macro_rules! key_doc {
    () => {
        "Names the submission, so that it is applied at most once: the same payload sent again \
         under it gets the stored receipt, another payload 409 `idempotency_conflict` (answered \
         only once that payload's signatures verify). Keys are scoped: on a user transaction to \
         the accounts that sign it, on a settlement to its account's settlements, on an operator kind to the \
         operator; the same key in two scopes names two submissions. 1..=128 visible ASCII \
         characters. Without it the key is derived from the transaction (signer and nonce for a \
         withdrawal or liquidation, time for a tick, else the payload); a deposit must carry one."
    };
}

macro_rules! submit_route {
    ($name:ident, $path:literal, $route:expr, $doc:literal,
        key($key_ty:ty, $key_doc:expr), bad_request = $bad:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path,
            params(("Idempotency-Key" = $key_ty, Header, description = $key_doc)),
            request_body(content = SignedTxDoc, content_type = "application/json"),
            responses(
                (status = 200, description = "Committed (or the same payload resubmitted)", body = Receipt),
                (status = 400, description = $bad, body = ErrorBody),
                (status = 401, description = "Operator token missing or wrong", body = ErrorBody),
                (status = 409, description = "Idempotency key reused in its scope with another payload (`idempotency_conflict`)", body = ErrorBody),
                (status = 413, description = "Body too large", body = ErrorBody),
                (status = 415, description = "Not `application/json` (bare or `; charset=utf-8`)", body = ErrorBody),
                (status = 422, description = "Rejected by the protocol rules or the signatures (the code names the rule), or not a transaction of this route: `invalid_body` (an unknown field at any level included), `wrong_kind`", body = ErrorBody),
                (status = 429, description = "Rate limited: the per-client or the overall limit (the message says which)", body = ErrorBody,
                    headers(("Retry-After" = u32, description = "Seconds to wait before retrying (1)"))),
                (status = 503, description = "Not committed; retry the same payload", body = ErrorBody),
            ))]
        pub async fn $name(
            AxState(st): AxState<AppState>,
            peer: Peer,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Json<Receipt>, ApiError> {
            submit(&st, peer, &headers, body, $route).await
        }
    };
    ($name:ident, $path:literal, $route:expr, $doc:literal) => {
        submit_route!($name, $path, $route, $doc, key(Option<String>, key_doc!()),
            bad_request = "Malformed JSON (`malformed_json`) or a bad Idempotency-Key (`bad_idempotency_key`)");
    };
}

submit_route!(
    post_transaction,
    "/v1/transactions",
    Route::AnyUser,
    "Submits any signed transaction (operator kinds need the operator token; a deposit needs an `Idempotency-Key`).",
    key(Option<String>, key_doc!()),
    bad_request = "Malformed JSON (`malformed_json`), a bad Idempotency-Key (`bad_idempotency_key`), or a deposit without one (`idempotency_key_required`)"
);
submit_route!(
    post_trade,
    "/v1/trades",
    Route::Only("trade"),
    "Submits a trade: two signed orders, fill size and price."
);
submit_route!(
    post_withdrawal,
    "/v1/withdrawals",
    Route::Only("withdraw"),
    "Submits a signed withdrawal."
);
submit_route!(
    post_liquidation,
    "/v1/liquidations",
    Route::Only("liquidate"),
    "Submits a signed liquidation."
);
submit_route!(
    post_settlement,
    "/v1/settlements",
    Route::Only("settle_expiry"),
    "Settles an account's position in an expired series."
);
submit_route!(
    post_deposit,
    "/v1/operator/deposits",
    Route::Operator("deposit"),
    "Operator: credits a deposit from the L1 queue, on a node without an L1 (with one, deposits come from the settlement contract's events and this route answers 403 `l1_deposits_only`). The deposit must carry its L1 identity as `Idempotency-Key`.",
    key(String, "Required: the deposit's identity on L1, e.g. its deposit-queue number. Two identical deposits under different keys are credited twice; the same deposit sent again under its key gets the stored receipt, another payload under it 409. Recorded in the operator's scope."),
    bad_request = "Malformed JSON (`malformed_json`), a bad Idempotency-Key (`bad_idempotency_key`), or none (`idempotency_key_required`)"
);
submit_route!(
    post_series,
    "/v1/operator/series",
    Route::Operator("register_series"),
    "Operator: registers an option series."
);
submit_route!(
    post_tick,
    "/v1/operator/ticks",
    Route::Operator("oracle_tick"),
    "Operator: submits an oracle tick (signed by a quorum of oracles)."
);

/// Documentation shape of a signed transaction (`collar_protocol::SignedTx`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SignedTxDoc {
    /// The transaction, tagged by `type`: deposit, withdraw, trade, liquidate, settle_expiry,
    /// oracle_tick, register_series.
    #[schema(value_type = Object)]
    tx: Value,
    /// One Schnorr signature per signed message, in order.
    #[schema(value_type = Vec<Object>)]
    signatures: Vec<Value>,
}

/// Result of sealing.
#[derive(Serialize, ToSchema)]
pub struct SealReply {
    /// The sealed batch, or null if the open batch was empty.
    pub sealed: Option<u64>,
}

/// Operator: seals the open batch now.
#[utoipa::path(post, path = "/v1/operator/seal", responses(
    (status = 200, body = SealReply), (status = 401, body = ErrorBody)))]
pub async fn post_seal(
    AxState(st): AxState<AppState>,
    headers: HeaderMap,
) -> Result<Json<SealReply>, ApiError> {
    st.check_operator(&headers)?;
    Ok(Json(SealReply {
        sealed: st.seq.seal().await?,
    }))
}

/// An account with its Merkle proof against the latest accounts root.
#[utoipa::path(get, path = "/v1/accounts/{id}", params(("id" = u64, Path, description = "Account id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_account(
    AxState(st): AxState<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: u64 = id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "account id must be a u64",
        )
    })?;
    let mut live = st.seq.live();
    let account = live.state.account(id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            format!("account {id} does not exist"),
        )
    })?;
    let proof = live
        .state
        .account_proof(id)
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown_account", e.to_string()))?;
    let header = live.state.header();
    let root = header.root();
    let margin = live.state.margin(id);
    Ok(Json(json!({
        "id": id,
        "account": account,
        "margin": margin,
        "proof": proof,
        "accounts_root": fr_hex(&header.accounts_root),
        "state_root": fr_hex(&root),
        "header": header,
    })))
}

/// A batch: status (open, sealed, proving, proved, verified, failed), roots, public inputs,
/// proof (hex) and job attempts.
#[utoipa::path(get, path = "/v1/batches/{n}", params(("n" = u64, Path, description = "Batch number")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_batch(
    AxState(st): AxState<AppState>,
    Path(n): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n: u64 = n.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_number",
            "batch number must be a u64",
        )
    })?;
    let (open, open_count) = {
        let live = st.seq.live();
        (live.open_batch, live.open_count)
    };
    if n == open {
        return Ok(Json(
            json!({"number": n, "status": "open", "tx_count": open_count}),
        ));
    }
    let row = st
        .db
        .batch(n as i64)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_batch",
                format!("batch {n} does not exist"),
            )
        })?;
    let inputs: Option<Value> = row
        .public_inputs
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    Ok(Json(json!({
        "number": row.number,
        "status": row.status,
        "first_seq": row.first_seq,
        "last_seq": row.last_seq,
        "tx_count": row.tx_count,
        "old_root": row.old_root,
        "new_root": row.new_root,
        "public_inputs": inputs,
        "proof": row.proof.as_ref().map(|p| format!("0x{}", hex::encode(p))),
        "backend": row.backend,
        "prove_ms": row.prove_ms,
        "error": row.error,
        "attempts": row.attempts,
        "last_error": row.last_error,
    })))
}

/// Registered series, by id.
#[utoipa::path(get, path = "/v1/series", responses((status = 200, body = Object)))]
pub async fn get_series(AxState(st): AxState<AppState>) -> Json<Value> {
    let live = st.seq.live();
    let list: Vec<Value> = live
        .state
        .series()
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "series": s}))
        .collect();
    Json(json!({ "time": live.state.time(), "series": list }))
}

/// The latest tick: state time and each underlying's spot and breaker state.
#[utoipa::path(get, path = "/v1/ticks/latest", responses((status = 200, body = Object)))]
pub async fn get_tick(AxState(st): AxState<AppState>) -> Json<Value> {
    let live = st.seq.live();
    Json(json!({ "time": live.state.time(), "underlyings": live.state.underlyings() }))
}

/// Liveness and a summary: next sequence number, open batch, job queue.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
pub async fn get_health(AxState(st): AxState<AppState>) -> Result<Json<Value>, ApiError> {
    let (next_seq, open_batch, sealed_root) = {
        let live = st.seq.live();
        (live.next_seq, live.open_batch, fr_hex(&live.sealed_root))
    };
    let jobs = st.db.job_counts().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "db_unavailable",
            e.to_string(),
        )
    })?;
    Ok(Json(json!({
        "status": "ok",
        "next_seq": next_seq,
        "open_batch": open_batch,
        "sealed_root": sealed_root,
        "jobs": jobs,
    })))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn get_metrics(AxState(st): AxState<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}

/// An L1 deposit accepted by the settlement contract.
#[derive(Serialize, ToSchema)]
pub struct L1DepositReply {
    /// Its position in the contract's deposit queue (from 1).
    pub index: u64,
    /// The queue head after it (§7.1).
    pub head: String,
    /// The settlement contract.
    pub settlement: String,
}

/// Devnet L1: a user's deposit, sent to the settlement contract's `deposit()` with `amount` wei
/// (the devnet funds it). Durable on L1 when answered; the node credits it once its watcher has
/// read the `DepositQueued` event (see `GET /v1/l1`).
#[utoipa::path(post, path = "/v1/l1/deposits",
    request_body(content = Object, content_type = "application/json",
        description = "`{account, pubkey: {x, y}, amount}` (PROTOCOL.md §7.1)"),
    responses(
        (status = 200, body = L1DepositReply),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No devnet L1 on this node (`no_l1`)", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Refused by the contract; code names its error (`zero_amount`, `invalid_pubkey`, `account_out_of_range`, `total_locked_overflow`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "The devnet journal could not be written; nothing happened", body = ErrorBody),
    ))]
pub async fn post_l1_deposit(
    AxState(st): AxState<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<L1DepositReply>, ApiError> {
    let l1 = st.l1()?.clone();
    st.take_token(peer)?;
    let d: Deposit = json_body(&st, &headers, body, "a deposit")?;
    let q = l1.deposit(d).await.map_err(|e| match e {
        L1Error::Reverted { code } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
        }
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "l1_unavailable",
            other.to_string(),
        ),
    })?;
    Ok(Json(L1DepositReply {
        index: q.index,
        head: fr_hex(&q.head),
        settlement: l1.settlement().to_string(),
    }))
}

/// Devnet L1: the settlement contract, its deposit queue, and how far the state has consumed it.
#[utoipa::path(get, path = "/v1/l1", responses((status = 200, body = L1Status),
    (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn get_l1(AxState(st): AxState<AppState>) -> Result<Json<L1Status>, ApiError> {
    let status = st.l1()?.status(&st.seq).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "l1_unavailable",
            e.to_string(),
        )
    })?;
    Ok(Json(status))
}

/// The generated OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Collar sequencer API",
        description = "Submit signed transactions, query state, batches and proofs."
    ),
    paths(
        post_transaction,
        post_trade,
        post_withdrawal,
        post_liquidation,
        post_settlement,
        post_deposit,
        post_series,
        post_tick,
        post_seal,
        get_account,
        get_batch,
        get_series,
        get_tick,
        get_health,
        get_metrics,
        post_l1_deposit,
        get_l1
    ),
    components(schemas(ErrorBody, Receipt, SignedTxDoc, SealReply, L1DepositReply, L1Status))
)]
pub struct ApiDoc;

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn count_status(
    AxState(st): AxState<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let r = next.run(req).await;
    st.metrics.http_status(r.status().as_u16());
    r
}

/// The router with every endpoint.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body;
    Router::new()
        .route("/v1/transactions", post(post_transaction))
        .route("/v1/trades", post(post_trade))
        .route("/v1/withdrawals", post(post_withdrawal))
        .route("/v1/liquidations", post(post_liquidation))
        .route("/v1/settlements", post(post_settlement))
        .route("/v1/operator/deposits", post(post_deposit))
        .route("/v1/operator/series", post(post_series))
        .route("/v1/operator/ticks", post(post_tick))
        .route("/v1/operator/seal", post(post_seal))
        .route("/v1/accounts/{id}", get(get_account))
        .route("/v1/batches/{n}", get(get_batch))
        .route("/v1/series", get(get_series))
        .route("/v1/ticks/latest", get(get_tick))
        .route("/v1/health", get(get_health))
        .route("/v1/l1", get(get_l1))
        .route("/v1/l1/deposits", post(post_l1_deposit))
        .route("/metrics", get(get_metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_status,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn each_client_has_its_own_bucket() {
        let mut c = ClientBuckets::new(16);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        assert!(c.try_take(a, t0, 2.0));
        assert!(c.try_take(a, t0, 2.0));
        assert!(!c.try_take(a, t0, 2.0), "a burst of `rate` then refused");
        assert!(
            c.try_take(ip("10.0.0.2"), t0, 2.0),
            "another address is served"
        );
        // Requests without a peer address share one bucket.
        assert!(c.try_take(None, t0, 2.0));
        assert!(c.try_take(None, t0, 2.0));
        assert!(!c.try_take(None, t0, 2.0));
        // Half a second later `a` has one token back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(c.try_take(a, t1, 2.0));
        assert!(!c.try_take(a, t1, 2.0));
    }

    #[test]
    fn idle_full_buckets_are_evicted_first() {
        let mut c = ClientBuckets::new(8);
        let t0 = Instant::now();
        let late = t0 + Duration::from_millis(1_900);
        for i in 0..8u8 {
            let at = if i < 4 { t0 } else { late };
            assert!(c.try_take(Some(IpAddr::from([10, 0, 0, i])), at, 2.0));
        }
        // At t0 + 2 s the first four have refilled (idle), the last four have not.
        let now = t0 + Duration::from_secs(2);
        assert!(c.try_take(ip("10.0.1.0"), now, 2.0));
        assert_eq!(c.map.len(), 5);
        for i in 4..8u8 {
            assert!(c.map.contains_key(&Some(IpAddr::from([10, 0, 0, i]))));
        }
    }

    #[test]
    fn busy_clients_are_evicted_least_recently_used_first() {
        let mut c = ClientBuckets::new(8);
        let t0 = Instant::now();
        for i in 0..8u8 {
            let at = t0 + Duration::from_millis(u64::from(i));
            assert!(c.try_take(Some(IpAddr::from([10, 0, 0, i])), at, 2.0));
        }
        // Nobody has refilled: the four least recently used go, the four latest stay.
        assert!(c.try_take(ip("10.0.1.0"), t0 + Duration::from_millis(9), 2.0));
        assert_eq!(c.map.len(), 5);
        for i in 4..8u8 {
            assert!(c.map.contains_key(&Some(IpAddr::from([10, 0, 0, i]))));
        }
    }

    #[test]
    fn many_addresses_never_grow_the_map_past_its_cap() {
        let mut c = ClientBuckets::new(64);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let at = t0 + Duration::from_micros(u64::from(i) * 50);
            assert!(c.try_take(Some(IpAddr::from(i.to_be_bytes())), at, 2.0));
            assert!(c.map.len() <= 64, "{} buckets after {i}", c.map.len());
        }
    }

    #[test]
    fn ipv6_clients_count_per_slash_64() {
        let mut c = ClientBuckets::new(16);
        let t0 = Instant::now();
        // Two addresses of one /64 share a bucket: the second is refused after the burst.
        assert!(c.try_take(ip("2001:db8:1:2::1"), t0, 2.0));
        assert!(c.try_take(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), t0, 2.0));
        assert!(!c.try_take(ip("2001:db8:1:2:abcd::7"), t0, 2.0));
        // The neighbouring /64 and an IPv4 client are served.
        assert!(c.try_take(ip("2001:db8:1:3::1"), t0, 2.0));
        assert!(c.try_take(ip("192.0.2.1"), t0, 2.0));
        assert_eq!(c.map.len(), 3);
        assert_eq!(
            client_key("2001:db8:1:2:abcd::7".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_name(ip("2001:db8:1:2:abcd::7")), "2001:db8:1:2::/64");
        assert_eq!(client_name(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(client_name(None), "an unknown address");
    }

    #[tokio::test]
    async fn peer_is_the_canonical_address_or_none() {
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        assert_eq!(
            Peer::from_request_parts(&mut parts, &()).await,
            Ok(Peer(None))
        );
        let mapped: SocketAddr = "[::ffff:127.0.0.2]:4000".parse().unwrap();
        parts.extensions.insert(ConnectInfo(mapped));
        assert_eq!(
            Peer::from_request_parts(&mut parts, &()).await,
            Ok(Peer(ip("127.0.0.2")))
        );
    }

    #[test]
    fn only_utf8_json_is_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            " application/json ; Charset = utf-8 ",
        ] {
            assert!(is_json_utf8(ok), "{ok:?}");
        }
        for bad in [
            "",
            "text/plain",
            "application/jsonx",
            "application/json; charset=utf-16",
            "application/json; charset=\"utf-16\"",
            "application/json; charset=\"utf-8",
            "application/json; charset=utf-8; q=1",
            "application/json;",
            "application/json; utf-8",
            "application/json; version=1",
        ] {
            assert!(!is_json_utf8(bad), "{bad:?}");
        }
    }

    #[test]
    fn rate_limited_answers_carry_retry_after() {
        let r = rate_limited("slow down".into()).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = ApiError::new(StatusCode::CONFLICT, "x", "y").into_response();
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }
}
