//! The sequencer: a two-stage pipeline. The verification stage takes submissions in groups and
//! checks their signatures (one batched MSM per thread) while the sequencer task, the one owner
//! of the live [`State`], handles the previous group: it answers resubmissions of accepted
//! payloads, verifies one by one whatever the first stage could not vouch for, refuses another
//! payload under a used idempotency key once its signatures hold, applies the rules, writes the
//! whole group and any sealed batch in one database transaction, and only then replies. A
//! failed commit replies 503 to the group and rebuilds the state from the log, so memory never
//! runs ahead of what is durable.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use collar_circuits::batch::{port_accounts, table_accounts};
use collar_protocol::field::fr_to_be_bytes;
use collar_protocol::signature;
use collar_protocol::tx::Signer;
use collar_protocol::{Fr, Genesis, Rejection, SignedTx, State, Tx};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

/// One signature to check: key, message, signature.
type SigItem = (collar_protocol::PublicKey, Fr, signature::Signature);

use crate::db::{Db, NewBatch, TxRow};
use crate::error::{DbError, SubmitError};
use crate::metrics::Metrics;

/// Hex of a field element (big-endian, `0x`-prefixed).
pub fn fr_hex(f: &Fr) -> String {
    format!("0x{}", hex::encode(fr_to_be_bytes(f)))
}

/// SHA-256 hex of a payload's canonical JSON.
pub fn payload_hash(payload: &str) -> String {
    hex::encode(Sha256::digest(payload.as_bytes()))
}

/// The reply to an accepted transaction, stored with it and returned verbatim on resubmission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Position in the global order (1-based).
    pub seq: u64,
    /// The batch it belongs to.
    pub batch: u64,
    /// Transaction kind.
    pub kind: String,
    /// SHA-256 of the canonical signed payload.
    pub payload_hash: String,
}

/// Sequencer settings.
#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// Seal when the open batch has this many transactions (≤ circuit capacity).
    pub batch_size: usize,
    /// Seal when the open batch's first transaction is this old.
    pub batch_timeout: Duration,
    /// Most submissions committed in one database transaction.
    pub max_group: usize,
    /// Seal before a transaction that would make the open batch name more accounts than this,
    /// the provers' account table (`collar_circuits::batch::table_accounts` counts them).
    /// Assumes at least `collar_circuits::batch::MIN_TABLE_SIZE`, so that any one transaction
    /// fits; `Node::start` refuses less. `None`: no limit, for provers with the default table,
    /// which every batch of `batch_size ≤ capacity` fits.
    pub max_accounts: Option<usize>,
}

impl Default for SequencerConfig {
    /// 8 transactions a batch, 2 s timeout, groups of 1,024, no account limit.
    fn default() -> Self {
        Self {
            batch_size: 8,
            batch_timeout: Duration::from_millis(2_000),
            max_group: 1_024,
            max_accounts: None,
        }
    }
}

/// A submission waiting for the sequencer.
#[derive(Debug)]
pub struct Submission {
    /// The transaction.
    pub stx: SignedTx,
    /// Its canonical JSON.
    pub payload: String,
    /// SHA-256 of `payload`.
    pub payload_hash: String,
    /// Idempotency key: a client's key in its scope, or one derived from the transaction
    /// (see [`crate::idempotency`]).
    pub idem_key: String,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<Receipt, SubmitError>>,
}

enum Command {
    Submit(Box<Submission>),
    Seal(oneshot::Sender<Result<Option<u64>, SubmitError>>),
}

/// What the verification stage hands the sequencer, in arrival order.
enum Staged {
    /// A submission, with the epoch of the state its signatures were verified against, or
    /// `None` if they still need checking one by one.
    Submit(Box<Submission>, Option<u64>),
    Seal(oneshot::Sender<Result<Option<u64>, SubmitError>>),
}

/// Read-mostly view shared with the API: the live state and batch bookkeeping.
#[derive(Debug)]
pub struct Live {
    /// The state after every accepted transaction.
    pub state: State,
    /// Number of the open batch.
    pub open_batch: u64,
    /// Transactions in the open batch.
    pub open_count: u64,
    /// Next sequence number.
    pub next_seq: u64,
    /// Root after the last sealed batch.
    pub sealed_root: Fr,
    /// Bumped each time the state is rebuilt from the log: a signature check made against an
    /// earlier epoch's state is not trusted (accounts it saw may not have been committed).
    pub epoch: u64,
}

/// Handle to the running sequencer.
#[derive(Clone, Debug)]
pub struct SequencerHandle {
    tx: mpsc::Sender<Command>,
    live: Arc<Mutex<Live>>,
    genesis: Arc<Genesis>,
}

impl SequencerHandle {
    /// Submits and waits for the committed receipt (or a typed refusal).
    pub async fn submit(&self, sub: Submission) -> Result<(), SubmitError> {
        self.tx
            .send(Command::Submit(Box::new(sub)))
            .await
            .map_err(|_| SubmitError::Unavailable("sequencer stopped".into()))
    }

    /// Seals the open batch now (operator); returns its number, or `None` if it was empty.
    pub async fn seal(&self) -> Result<Option<u64>, SubmitError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Seal(tx))
            .await
            .map_err(|_| SubmitError::Unavailable("sequencer stopped".into()))?;
        rx.await
            .map_err(|_| SubmitError::Unavailable("sequencer stopped".into()))?
    }

    /// Locks the live view (keep the guard short: the sequencer waits on it).
    pub fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The genesis the state was built from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
}

/// What [`replay`] rebuilt.
struct Replayed {
    live: Live,
    idem: HashMap<String, (String, String)>,
    last_sealed_new_root: Fr,
    /// The accounts the open batch names (`table_accounts` of its transactions).
    open_accounts: BTreeSet<u64>,
}

/// Rebuilds the state from genesis by replaying the whole log; checks every sealed batch's
/// transaction range and new root against the replay.
async fn replay(db: &Db, genesis: &Genesis) -> Result<Replayed, DbError> {
    let mut state =
        State::genesis(genesis).map_err(|e| DbError::Corrupt(format!("genesis: {e}")))?;
    let genesis_root = state.root();
    let batches = db.batches().await?;
    let mut idem = HashMap::new();
    let mut after = 0i64;
    let mut bi = 0usize;
    let mut last_root = genesis_root;
    let open_batch = batches.last().map_or(1, |b| b.number as u64 + 1);
    let mut open_count = 0u64;
    let mut open_accounts = table_accounts([]);
    loop {
        let rows = db.txs_after(after, 5_000).await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            if r.seq != after + 1 {
                return Err(DbError::Corrupt(format!("gap in log before seq {}", r.seq)));
            }
            after = r.seq;
            let stx: SignedTx = serde_json::from_str(&r.payload)
                .map_err(|e| DbError::Corrupt(format!("tx {}: {e}", r.seq)))?;
            state
                .apply(&stx.tx)
                .map_err(|e| DbError::Corrupt(format!("replay of tx {} rejected: {e}", r.seq)))?;
            idem.insert(r.idem_key, (r.payload_hash, r.reply));
            if r.batch as u64 == open_batch {
                open_count += 1;
                open_accounts.extend(port_accounts(&stx.tx));
            }
            if let Some(b) = batches.get(bi) {
                if b.last_seq == r.seq {
                    let root = state.root();
                    if fr_hex(&root) != b.new_root || fr_hex(&last_root) != b.old_root {
                        return Err(DbError::Corrupt(format!(
                            "batch {} roots differ from the replayed log",
                            b.number
                        )));
                    }
                    last_root = root;
                    bi += 1;
                }
            }
        }
    }
    if bi != batches.len() {
        return Err(DbError::Corrupt(format!(
            "{} sealed batches reference transactions missing from the log",
            batches.len() - bi
        )));
    }
    Ok(Replayed {
        live: Live {
            state,
            open_batch,
            open_count,
            next_seq: after as u64 + 1,
            sealed_root: last_root,
            epoch: 0,
        },
        idem,
        last_sealed_new_root: last_root,
        open_accounts,
    })
}

/// Starts the sequencer: replays the log (recording `genesis` on first start, refusing a
/// different one later) and spawns the task. Must run inside a tokio runtime.
pub async fn start(
    db: Db,
    genesis: Genesis,
    config: SequencerConfig,
    metrics: Arc<Metrics>,
) -> Result<SequencerHandle, DbError> {
    let gjson = serde_json::to_string(&genesis).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let stored = db.meta_init("genesis", &gjson).await?;
    if stored != gjson {
        return Err(DbError::Corrupt(
            "the database was created with a different genesis".into(),
        ));
    }
    let t0 = Instant::now();
    let r = replay(&db, &genesis).await?;
    tracing::info!(
        txs = r.live.next_seq - 1,
        open_batch = r.live.open_batch,
        ms = t0.elapsed().as_millis() as u64,
        "replayed the log"
    );
    let open_started = (r.live.open_count > 0).then(Instant::now);
    let live = Arc::new(Mutex::new(r.live));
    let (tx, rx) = mpsc::channel(config.max_group * 4);
    let (staged_tx, staged_rx) = mpsc::channel(config.max_group * 2);
    tokio::spawn(verify_stage(rx, staged_tx, live.clone(), config.max_group));
    let task = Task {
        db,
        genesis: genesis.clone(),
        config,
        metrics,
        live: live.clone(),
        idem: r.idem,
        last_root: r.last_sealed_new_root,
        open_started,
        open_first_seq: 0,
        open_accounts: r.open_accounts,
    };
    tokio::spawn(task.run(staged_rx));
    Ok(SequencerHandle {
        tx,
        live,
        genesis: Arc::new(genesis),
    })
}

/// The first pipeline stage: takes submissions in groups (up to `max_group`, in arrival order)
/// and checks their signatures in one batched MSM per thread against the live state, while the
/// sequencer applies and commits the previous group. Account keys never change once an account
/// exists and oracle keys are fixed at genesis, so a check against an earlier state holds later
/// in the same epoch (see [`Live::epoch`]). Items whose keys are not known yet (an account
/// created by a deposit still queued) and every item of a group whose batched check fails are
/// left to the sequencer, which checks them one by one.
async fn verify_stage(
    mut rx: mpsc::Receiver<Command>,
    out: mpsc::Sender<Staged>,
    live: Arc<Mutex<Live>>,
    max_group: usize,
) {
    while let Some(first) = rx.recv().await {
        let mut group = Vec::new();
        let mut seal = None;
        match first {
            Command::Seal(r) => seal = Some(r),
            Command::Submit(s) => {
                group.push(s);
                while group.len() < max_group {
                    match rx.try_recv() {
                        Ok(Command::Submit(s)) => group.push(s),
                        Ok(Command::Seal(r)) => {
                            seal = Some(r);
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        if !group.is_empty() {
            let live = Arc::clone(&live);
            let checked = tokio::task::spawn_blocking(move || {
                let flags = check_group(&live, &group);
                (group, flags)
            })
            .await;
            let Ok((group, flags)) = checked else {
                return; // the check panicked: stop taking submissions rather than skip checks
            };
            for (s, f) in group.into_iter().zip(flags) {
                if out.send(Staged::Submit(s, f)).await.is_err() {
                    return;
                }
            }
        }
        if let Some(r) = seal {
            if out.send(Staged::Seal(r)).await.is_err() {
                return;
            }
        }
    }
}

/// Batched signature check of a group against the live state: for each submission, the epoch
/// it was verified in, or `None` if it needs checking one by one.
fn check_group(live: &Mutex<Live>, group: &[Box<Submission>]) -> Vec<Option<u64>> {
    let lock = || live.lock().unwrap_or_else(|e| e.into_inner());
    let chain_id = lock().state.params().chain_id;
    // Message hashing is most of the cost: spread it over the cores, outside the lock, so the
    // sequencer goes on applying meanwhile.
    let msgs: Vec<Vec<(Signer, Fr)>> = group
        .par_iter()
        .map(|s| s.stx.tx.signed_messages(chain_id))
        .collect();
    // Only the key lookups need the state.
    let (per_tx, epoch): (Vec<Option<Vec<SigItem>>>, u64) = {
        let live = lock();
        let per_tx = group
            .iter()
            .zip(msgs)
            .map(|(s, msgs)| {
                if msgs.len() != s.stx.signatures.len() {
                    return None; // the sequencer rejects it with the reason
                }
                msgs.into_iter()
                    .zip(&s.stx.signatures)
                    .map(|((signer, m), sig)| {
                        live.state.signer_key(signer).ok().map(|pk| (pk, m, *sig))
                    })
                    .collect()
            })
            .collect();
        (per_tx, live.epoch)
    };
    let mut flags: Vec<Option<u64>> = per_tx.iter().map(|v| v.as_ref().map(|_| epoch)).collect();
    let items: Vec<SigItem> = per_tx.into_iter().flatten().flatten().collect();
    let chunk = items
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1);
    if !items
        .par_chunks(chunk)
        .all(|c| signature::verify_batch(c).is_ok())
    {
        flags.iter_mut().for_each(|f| *f = None);
    }
    flags
}

struct Task {
    db: Db,
    genesis: Genesis,
    config: SequencerConfig,
    metrics: Arc<Metrics>,
    live: Arc<Mutex<Live>>,
    idem: HashMap<String, (String, String)>,
    last_root: Fr,
    open_started: Option<Instant>,
    open_first_seq: u64,
    /// The accounts the open batch names, for [`SequencerConfig::max_accounts`].
    open_accounts: BTreeSet<u64>,
}

enum Outcome {
    /// Committed in this group: reply after commit.
    Accept(Receipt),
    /// Already committed earlier: reply now with the stored receipt.
    Replay(String),
    Refuse(SubmitError),
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Staged>) {
        self.open_first_seq = {
            let live = self.lock();
            live.next_seq - live.open_count
        };
        loop {
            let deadline = self
                .open_started
                .map(|t| tokio::time::Instant::from_std(t + self.config.batch_timeout));
            let cmd = tokio::select! {
                c = rx.recv() => c,
                _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                    let _ = self.seal_alone().await;
                    continue;
                }
            };
            match cmd {
                None => break,
                Some(Staged::Seal(reply)) => {
                    let r = self.seal_alone().await;
                    let _ = reply.send(r);
                }
                Some(Staged::Submit(first, checked)) => {
                    let mut group = vec![(*first, checked)];
                    let mut seal_requests = Vec::new();
                    while group.len() < self.config.max_group {
                        match rx.try_recv() {
                            Ok(Staged::Submit(s, c)) => group.push((*s, c)),
                            Ok(Staged::Seal(r)) => {
                                seal_requests.push(r);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.process(group).await;
                    for r in seal_requests {
                        let res = self.seal_alone().await;
                        let _ = r.send(res);
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seals the open batch in its own database transaction, if it is non-empty.
    async fn seal_alone(&mut self) -> Result<Option<u64>, SubmitError> {
        let seal = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.open_count == 0 {
                self.open_started = None;
                return Ok(None);
            }
            let root = live.state.root();
            NewBatch {
                number: live.open_batch as i64,
                first_seq: self.open_first_seq as i64,
                last_seq: live.next_seq as i64 - 1,
                old_root: fr_hex(&self.last_root),
                new_root: fr_hex(&root),
            }
        };
        match self.db.commit_group(&[], std::slice::from_ref(&seal)).await {
            Ok(()) => {
                self.after_seal(&seal);
                Ok(Some(seal.number as u64))
            }
            Err(e) => {
                tracing::warn!(error = %e, "sealing failed; rebuilding from the log");
                self.recover().await;
                Err(SubmitError::Unavailable(e.to_string()))
            }
        }
    }

    /// Closes the open batch (transactions `open_first_seq..next_seq`) at `root` in memory and
    /// returns its record; the caller commits it with the group.
    fn cut(&mut self, live: &mut Live, root: Fr) -> NewBatch {
        let seal = NewBatch {
            number: live.open_batch as i64,
            first_seq: self.open_first_seq as i64,
            last_seq: live.next_seq as i64 - 1,
            old_root: fr_hex(&self.last_root),
            new_root: fr_hex(&root),
        };
        live.open_batch += 1;
        live.open_count = 0;
        live.sealed_root = root;
        self.open_first_seq = live.next_seq;
        self.open_accounts = table_accounts([]);
        self.last_root = root;
        self.open_started = None;
        seal
    }

    fn after_seal(&mut self, seal: &NewBatch) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.open_batch = seal.number as u64 + 1;
        live.open_count = 0;
        self.open_first_seq = live.next_seq;
        self.open_accounts = table_accounts([]);
        let root = live.state.root();
        live.sealed_root = root;
        self.last_root = root;
        self.open_started = None;
        self.metrics.batches_sealed.inc();
        tracing::info!(
            batch = seal.number,
            txs = seal.last_seq - seal.first_seq + 1,
            "sealed"
        );
    }

    async fn process(&mut self, group: Vec<(Submission, Option<u64>)>) {
        let started = Instant::now();
        let n = group.len();
        let (group, checked): (Vec<Submission>, Vec<Option<u64>>) = group.into_iter().unzip();
        // Sequentially: replays of an accepted payload, signatures where the verification
        // stage could not vouch for them in this epoch, key conflicts, rules; apply on success.
        let mut outcomes = Vec::with_capacity(n);
        let mut rows = Vec::new();
        let mut seals = Vec::new();
        let mut pending_keys: HashMap<String, String> = HashMap::new();
        {
            // A handle of our own, so that `self` stays free for `cut` while the guard lives.
            let shared = Arc::clone(&self.live);
            let mut live = shared.lock().unwrap_or_else(|e| e.into_inner());
            for (i, s) in group.iter().enumerate() {
                // The same payload again: its stored receipt (it was verified when accepted).
                let stored = self.idem.get(&s.idem_key);
                if let Some((_, reply)) = stored.filter(|(hash, _)| *hash == s.payload_hash) {
                    outcomes.push(if pending_keys.contains_key(&s.idem_key) {
                        // Accepted earlier in this very group: answer after the commit.
                        Outcome::Accept(serde_json::from_str(reply).expect("own receipt JSON"))
                    } else {
                        Outcome::Replay(reply.clone())
                    });
                    continue;
                }
                if checked[i] != Some(live.epoch) {
                    if let Err(e) = live.state.verify_signatures(&s.stx) {
                        outcomes.push(Outcome::Refuse(SubmitError::Rejected(e)));
                        continue;
                    }
                }
                // Another payload under a used key is a conflict, but only once its signatures
                // hold: a forgery gets the same refusal whether or not the key exists, so no
                // one learns another account's keys.
                if self.idem.contains_key(&s.idem_key) {
                    outcomes.push(Outcome::Refuse(SubmitError::Conflict {
                        key: s.idem_key.clone(),
                    }));
                    continue;
                }
                // A tick opens its batch (the circuit's tick lane, §11), and a transaction that
                // would overflow the provers' account table opens the next one: what is open
                // before it is sealed first, at the root before it.
                let named = port_accounts(&s.stx.tx);
                let overflows = self.config.max_accounts.is_some_and(|max| {
                    let new = named.iter().filter(|a| !self.open_accounts.contains(a));
                    self.open_accounts.len() + new.collect::<BTreeSet<_>>().len() > max
                });
                let opens = matches!(s.stx.tx, Tx::OracleTick(_)) || overflows;
                let cut_before = (opens && live.open_count > 0).then(|| live.state.root());
                if let Err(e) = live.state.apply(&s.stx.tx) {
                    outcomes.push(Outcome::Refuse(SubmitError::Rejected(e)));
                    continue;
                }
                if let Some(root) = cut_before {
                    seals.push(self.cut(&mut live, root));
                }
                self.open_accounts.extend(named);
                let receipt = Receipt {
                    seq: live.next_seq,
                    batch: live.open_batch,
                    kind: s.stx.tx.kind().to_string(),
                    payload_hash: s.payload_hash.clone(),
                };
                let reply = serde_json::to_string(&receipt).expect("receipt JSON");
                rows.push(TxRow {
                    seq: receipt.seq as i64,
                    batch: receipt.batch as i64,
                    idem_key: s.idem_key.clone(),
                    payload_hash: s.payload_hash.clone(),
                    kind: receipt.kind.clone(),
                    payload: s.payload.clone(),
                    reply: reply.clone(),
                });
                self.idem
                    .insert(s.idem_key.clone(), (s.payload_hash.clone(), reply));
                pending_keys.insert(s.idem_key.clone(), s.payload_hash.clone());
                live.next_seq += 1;
                live.open_count += 1;
                if live.open_count == 1 && self.open_started.is_none() {
                    self.open_started = Some(Instant::now());
                }
                outcomes.push(Outcome::Accept(receipt));
                if live.open_count as usize >= self.config.batch_size {
                    let root = live.state.root();
                    seals.push(self.cut(&mut live, root));
                }
            }
        }
        // One durable commit for the whole group, then the replies.
        let committed = if rows.is_empty() && seals.is_empty() {
            Ok(())
        } else {
            let t = Instant::now();
            let r = self.db.commit_group(&rows, &seals).await;
            self.metrics.observe_commit(t.elapsed(), rows.len());
            r
        };
        match committed {
            Ok(()) => {
                for s in &seals {
                    self.metrics.batches_sealed.inc();
                    tracing::info!(
                        batch = s.number,
                        txs = s.last_seq - s.first_seq + 1,
                        "sealed"
                    );
                }
                for (s, o) in group.into_iter().zip(outcomes) {
                    let r = match o {
                        Outcome::Accept(r) => {
                            self.metrics.accepted(&r.kind);
                            Ok(r)
                        }
                        Outcome::Replay(json) => {
                            self.metrics.replayed.inc();
                            Ok(serde_json::from_str(&json).expect("stored receipt JSON"))
                        }
                        Outcome::Refuse(e) => {
                            self.metrics.rejected.inc();
                            Err(e)
                        }
                    };
                    let _ = s.reply.send(r);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "group commit failed; rebuilding from the log");
                let msg = e.to_string();
                for (s, o) in group.into_iter().zip(outcomes) {
                    let r = match o {
                        Outcome::Refuse(SubmitError::Rejected(r)) => Err(SubmitError::Rejected(r)),
                        _ => Err(SubmitError::Unavailable(msg.clone())),
                    };
                    let _ = s.reply.send(r);
                }
                self.recover().await;
            }
        }
        self.metrics.observe_group(started.elapsed(), n);
    }

    /// Rebuilds the live state from the log, retrying until the database answers.
    async fn recover(&mut self) {
        let mut wait = Duration::from_millis(100);
        loop {
            match replay(&self.db, &self.genesis).await {
                Ok(r) => {
                    let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                    self.open_first_seq = r.live.next_seq - r.live.open_count;
                    self.open_started = (r.live.open_count > 0).then(Instant::now);
                    let epoch = live.epoch + 1;
                    *live = r.live;
                    live.epoch = epoch;
                    self.idem = r.idem;
                    self.last_root = r.last_sealed_new_root;
                    self.open_accounts = r.open_accounts;
                    tracing::info!(next_seq = live.next_seq, "state rebuilt from the log");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "database unavailable; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// A rejection as a stable machine-readable code.
pub fn rejection_code(r: &Rejection) -> String {
    let dbg = format!("{r:?}");
    let name: String = dbg
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // CamelCase → snake_case.
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
