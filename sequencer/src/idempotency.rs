//! Idempotency keys: the string a submission is recorded under, so that sending it again
//! answers the stored receipt instead of applying it twice, and a different payload under the
//! same key is a conflict (409).
//!
//! A key given in the `Idempotency-Key` header is stored under the [`Scope`] of the submission,
//! so that clients never share a namespace: one client can neither learn that another's key
//! exists nor reserve it. The stored forms are:
//!
//! - `op:KEY`: a client key on an operator kind (deposit, register_series, oracle_tick; only
//!   the operator token can submit them);
//! - `acct:A,B:KEY`: a client key on a signed user transaction, scoped to the accounts that
//!   sign it (sorted, deduplicated);
//! - `settle:A:KEY`: a client key on a settlement of account `A`. Settlements are unsigned, so
//!   anyone may submit one: their keys live apart from the account's signed ones, which no
//!   one without its key can probe;
//! - without a header, a key derived from the transaction ([`derived_key`]): `withdraw:A:N`,
//!   `liquidate:A:N`, `tick:T` or `payload:HASH`; a deposit has none and must carry a header;
//! - `l1-deposit:INDEX`: deposits the node reads from its L1's queue ([`crate::l1`]);
//! - `client:KEY`: client keys recorded by earlier versions, unscoped; no new key takes this
//!   form, so they simply belong to no scope.
//!
//! An account list holds only digits and commas, so where a scope ends and the client's key
//! begins is unambiguous: keys in different scopes never collide.

use collar_protocol::tx::Signer;
use collar_protocol::{SignedTx, Tx};

/// The namespace a client's `Idempotency-Key` is recorded in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Operator kinds: deposit, register_series, oracle_tick.
    Operator,
    /// Signed user transactions: the accounts that sign them, ascending without repeats.
    Accounts(Vec<u64>),
    /// Settlements (unsigned, open to anyone) of this account.
    Settlement(u64),
}

impl Scope {
    /// The scope of `tx`: [`Scope::Operator`] for the operator kinds, [`Scope::Settlement`] for
    /// a settlement, else the accounts among its [`Tx::signers`].
    pub fn of(tx: &Tx) -> Scope {
        match tx {
            Tx::Deposit(_) | Tx::RegisterSeries(_) | Tx::OracleTick(_) => Scope::Operator,
            Tx::SettleExpiry(s) => Scope::Settlement(s.account),
            Tx::Withdraw(_) | Tx::Trade(_) | Tx::Liquidate(_) => {
                let mut accounts: Vec<u64> = tx
                    .signers()
                    .into_iter()
                    .filter_map(|s| match s {
                        Signer::Account(a) => Some(a),
                        Signer::Oracle(_) => None,
                    })
                    .collect();
                accounts.sort_unstable();
                accounts.dedup();
                Scope::Accounts(accounts)
            }
        }
    }

    /// The stored form of the client key `key` in this scope: `op:KEY`, `acct:A,B:KEY` or
    /// `settle:A:KEY`.
    pub fn key(&self, key: &str) -> String {
        match self {
            Scope::Operator => format!("op:{key}"),
            Scope::Accounts(accounts) => {
                let ids: Vec<String> = accounts.iter().map(u64::to_string).collect();
                format!("acct:{}:{key}", ids.join(","))
            }
            Scope::Settlement(account) => format!("settle:{account}:{key}"),
        }
    }
}

/// The idempotency key of a transaction sent without one: nonce-bearing kinds use their signer
/// and nonce (so a different payload reusing them is a conflict, 409), oracle ticks their
/// timestamp, settlements and series registrations the payload hash. `None` for a deposit:
/// nothing in its payload tells two identical deposits apart, so it must be sent with its L1
/// identity (e.g. its deposit-queue number) as its key.
pub fn derived_key(stx: &SignedTx, payload_hash: &str) -> Option<String> {
    match &stx.tx {
        Tx::Deposit(_) => None,
        Tx::Withdraw(w) => Some(format!("withdraw:{}:{}", w.account, w.nonce)),
        Tx::Liquidate(l) => Some(format!(
            "liquidate:{}:{}",
            l.order.liquidator, l.order.nonce
        )),
        Tx::OracleTick(t) => Some(format!("tick:{}", t.timestamp)),
        _ => Some(format!("payload:{payload_hash}")),
    }
}

#[cfg(test)]
mod tests {
    use collar_protocol::testkit::Harness;
    use collar_protocol::tx::Side;
    use collar_protocol::ProtocolParams;

    use super::*;

    #[test]
    fn scopes_are_the_operator_or_the_signing_accounts() {
        let mut h = Harness::new(ProtocolParams::small(), 1);
        assert_eq!(Scope::of(&h.deposit(3, 5).tx), Scope::Operator);
        assert_eq!(
            Scope::of(&h.tick(5, &[(0, 100_000, vec![])]).tx),
            Scope::Operator
        );
        assert_eq!(Scope::of(&h.withdraw(7, 1).tx), Scope::Accounts(vec![7]));
        assert_eq!(Scope::of(&h.settle(4, 0).tx), Scope::Settlement(4));
        // A trade's two signers, ascending whichever side each is on; a self-trade's one.
        let buy = h.order(9, 0, Side::Buy, 5, 1);
        let sell = h.order(3, 0, Side::Sell, 5, 1);
        let t = h.trade(buy, sell, 1, 5);
        assert_eq!(Scope::of(&t.tx), Scope::Accounts(vec![3, 9]));
        let buy = h.order(3, 0, Side::Buy, 5, 1);
        let sell = h.order(3, 0, Side::Sell, 5, 1);
        assert_eq!(
            Scope::of(&h.trade(buy, sell, 1, 5).tx),
            Scope::Accounts(vec![3])
        );
    }

    #[test]
    fn one_key_in_different_scopes_never_collides() {
        let keys = [
            Scope::Operator.key("k"),
            Scope::Accounts(vec![3]).key("k"),
            Scope::Accounts(vec![3, 7]).key("k"),
            Scope::Accounts(vec![37]).key("k"),
            Scope::Accounts(vec![3]).key("7:k"),
            Scope::Settlement(3).key("k"),
        ];
        assert_eq!(keys[0], "op:k");
        assert_eq!(keys[2], "acct:3,7:k");
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn deposits_have_no_derived_key() {
        let mut h = Harness::new(ProtocolParams::small(), 1);
        assert_eq!(derived_key(&h.deposit(2, 5), "h"), None);
        assert_eq!(
            derived_key(&h.withdraw(2, 5), "h").as_deref(),
            Some("withdraw:2:0")
        );
        assert_eq!(
            derived_key(&h.settle(2, 0), "h").as_deref(),
            Some("payload:h")
        );
    }
}
