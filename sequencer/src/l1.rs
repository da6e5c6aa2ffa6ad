//! Deposits read from the settlement contract. A node started with an L1 ([`L1Feed`], today the
//! devnet of `collar_verifier::settlement`) takes deposits only from the contract's
//! `DepositQueued` events: the HTTP deposit routes refuse them, and [`spawn_watcher`] submits each
//! queued deposit to the sequencer in queue order, one at a time, from the first one the state
//! has not consumed. That makes the state's deposit chain (§7.1) the contract's: after each
//! accepted deposit the watcher compares the two heads and stops, loudly, if they differ.
//!
//! Restarts need nothing special: the state's consumed count is durable (it is replayed from
//! the log), the devnet's queue is durable (its journal), and the watcher resumes from the first
//! unconsumed deposit. A deposit is submitted under the idempotency key `l1-deposit:INDEX`, so a
//! resubmission after a lost reply is answered with the stored receipt.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use collar_protocol::tx::Deposit;
use collar_protocol::{Fr, Genesis, SignedTx, State, Tx};
use collar_verifier::chain::Address;
use collar_verifier::settlement::{DevL1, L1Error, QueuedDeposit};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::error::SubmitError;
use crate::sequencer::{fr_hex, payload_hash, SequencerHandle, Submission};

/// The node's L1: the devnet settlement contract, shared by the API and the watcher. The EVM is
/// not `Send`, so the devnet lives on its own thread and this handle talks to it by messages;
/// the queue it has emitted is mirrored here for readers.
#[derive(Clone, Debug)]
pub struct L1Feed {
    requests: mpsc::UnboundedSender<Request>,
    queue: Arc<Mutex<Vec<QueuedDeposit>>>,
    settlement: Address,
    notify: Arc<Notify>,
    credited: Arc<AtomicU64>,
}

#[derive(Debug)]
enum Request {
    Deposit(Deposit, oneshot::Sender<Result<QueuedDeposit, L1Error>>),
    HeadAt(u64, oneshot::Sender<Fr>),
}

/// What `GET /v1/l1` reports.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct L1Status {
    /// The settlement contract's address (devnet).
    pub settlement: String,
    /// Deposits queued on L1.
    pub queued: u64,
    /// Deposits the rollup state has consumed (in memory; a commit may still be in flight).
    pub consumed: u64,
    /// Deposits whose credit is committed in the node's log (durable).
    pub credited: u64,
    /// The contract's queue head after `consumed` deposits.
    pub l1_head_at_consumed: String,
    /// The state's deposit head; equal to `l1_head_at_consumed` unless the feed diverged.
    pub state_head: String,
}

fn gone() -> L1Error {
    L1Error::Corrupt("the devnet L1 thread stopped".into())
}

impl L1Feed {
    /// Opens the devnet L1 for `genesis` (journal at `journal`, or in memory) on its own thread.
    ///
    /// # Errors
    /// The genesis is invalid, or the journal cannot be read or belongs to another deployment.
    pub fn open_devnet(journal: Option<&Path>, genesis: &Genesis) -> Result<Self, L1Error> {
        let root = State::genesis(genesis)
            .map_err(|e| L1Error::Corrupt(format!("genesis: {e}")))?
            .root();
        let depth = u32::try_from(genesis.params.account_depth)
            .map_err(|_| L1Error::Corrupt("account depth".into()))?;
        let journal = journal.map(Path::to_path_buf);
        let (requests, mut rx) = mpsc::unbounded_channel::<Request>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let queue: Arc<Mutex<Vec<QueuedDeposit>>> = Arc::default();
        let mirror = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("collar-devnet-l1".into())
            .spawn(move || {
                let mut l1 = match DevL1::open(journal.as_deref(), depth, root) {
                    Ok(l1) => l1,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                *lock(&mirror) = l1.deposits_from(1).to_vec();
                let _ = ready_tx.send(Ok(l1.settlement()));
                // Ends when every handle is dropped.
                while let Some(req) = rx.blocking_recv() {
                    match req {
                        Request::Deposit(d, reply) => {
                            let r = l1.deposit(&d);
                            if let Ok(q) = &r {
                                lock(&mirror).push(q.clone());
                            }
                            let _ = reply.send(r);
                        }
                        Request::HeadAt(n, reply) => {
                            let _ = reply.send(l1.deposit_head_at(n));
                        }
                    }
                }
            })
            .map_err(|e| L1Error::Corrupt(format!("devnet thread: {e}")))?;
        let settlement = ready_rx.recv().map_err(|_| gone())??;
        tracing::info!(%settlement, queued = lock(&queue).len(), "devnet L1 ready");
        Ok(Self {
            requests,
            queue,
            settlement,
            notify: Arc::new(Notify::new()),
            credited: Arc::default(),
        })
    }

    /// A user's L1 deposit on the devnet (durable when it returns); wakes the watcher.
    ///
    /// # Errors
    /// [`L1Error::Reverted`] if the contract refuses it; [`L1Error::Journal`] on I/O failure.
    pub async fn deposit(&self, d: Deposit) -> Result<QueuedDeposit, L1Error> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Deposit(d, tx))
            .map_err(|_| gone())?;
        let q = rx.await.map_err(|_| gone())??;
        self.notify.notify_one();
        Ok(q)
    }

    /// The settlement contract's address.
    pub fn settlement(&self) -> Address {
        self.settlement
    }

    /// Deposits queued with index `>= first` (indices start at 1), in queue order.
    pub fn deposits_from(&self, first: u64) -> Vec<QueuedDeposit> {
        let skip = usize::try_from(first.saturating_sub(1)).unwrap_or(usize::MAX);
        lock(&self.queue).get(skip..).unwrap_or(&[]).to_vec()
    }

    /// The contract's queue head after the first `n` deposits (its `depositHeadAt(n)`).
    ///
    /// # Errors
    /// The devnet thread has stopped.
    pub async fn head_at(&self, n: u64) -> Result<Fr, L1Error> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::HeadAt(n, tx))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// The feed's status against the sequencer's state.
    ///
    /// # Errors
    /// The devnet thread has stopped.
    pub async fn status(&self, seq: &SequencerHandle) -> Result<L1Status, L1Error> {
        let (state_head, consumed) = seq.live().state.deposit_queue();
        let queued = lock(&self.queue).len() as u64;
        let l1_head = self.head_at(consumed).await?;
        Ok(L1Status {
            settlement: self.settlement.to_string(),
            queued,
            consumed,
            credited: self.credited.load(Ordering::SeqCst),
            l1_head_at_consumed: fr_hex(&l1_head),
            state_head: fr_hex(&state_head),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Submits one queued deposit and waits for the committed reply.
async fn submit(seq: &SequencerHandle, q: &QueuedDeposit) -> Result<(), SubmitError> {
    let stx = SignedTx::unsigned(Tx::Deposit(q.deposit.clone()));
    let payload = serde_json::to_string(&stx).expect("a deposit serialises");
    let (tx, rx) = oneshot::channel();
    seq.submit(Submission {
        stx,
        payload_hash: payload_hash(&payload),
        payload,
        idem_key: format!("l1-deposit:{}", q.index),
        reply: tx,
    })
    .await?;
    rx.await
        .map_err(|_| SubmitError::Unavailable("sequencer stopped".into()))?
        .map(|_| ())
}

/// Starts the task that feeds queued deposits to the sequencer (see the module docs). It runs
/// until aborted, or until the state's deposit head differs from the contract's.
pub fn spawn_watcher(feed: L1Feed, seq: SequencerHandle) -> JoinHandle<()> {
    // What the replayed log holds is durable.
    let replayed = seq.live().state.deposit_queue().1;
    feed.credited.store(replayed, Ordering::SeqCst);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let consumed = seq.live().state.deposit_queue().1;
            let pending = feed.deposits_from(consumed + 1);
            if pending.is_empty() {
                // Woken by a deposit through the API; the timeout also catches anything else.
                let _ = tokio::time::timeout(Duration::from_secs(1), feed.notify.notified()).await;
                continue;
            }
            for q in pending {
                match submit(&seq, &q).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        feed.credited.fetch_max(q.index, Ordering::SeqCst);
                        let (head, count) = seq.live().state.deposit_queue();
                        if count == q.index && head != q.head {
                            tracing::error!(
                                index = q.index,
                                state_head = %fr_hex(&head),
                                l1_head = %fr_hex(&q.head),
                                "the state's deposit chain differs from the settlement contract's; \
                                 deposits stop"
                            );
                            return;
                        }
                    }
                    Err(e) => {
                        // Unavailable: the sequencer rebuilt its state; retry from what it holds.
                        // Anything else cannot happen for a queued deposit (§7.1), so say so.
                        if matches!(e, SubmitError::Unavailable(_)) {
                            tracing::warn!(index = q.index, error = %e, "deposit not committed; retrying");
                        } else {
                            tracing::error!(index = q.index, error = %e, "queued deposit refused");
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        break;
                    }
                }
            }
        }
    })
}
