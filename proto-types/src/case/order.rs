//! How both sides of a case end with the same history (spec/CASES.md §4).
//!
//! Each side applies the other's updates in the order they were made (each sender's per-case
//! chain guarantees that), but two updates made at the same time on both sides — the requesting
//! side withdraws while the requested side reports execution — would each be applied first by
//! its own side, and the histories would differ. So one side orders the case: the **requested
//! side** ([`ORDERER`]), which executes the request and holds the person sought.
//!
//! - An update by the requested side is applied at once on its node, then on the requesting
//!   side's node when it arrives.
//! - An update by the requesting side is a **proposal**: its node checks it against what it
//!   knows (history plus its earlier proposals) and keeps it pending. The requested side applies
//!   it in its own order, if the case still allows it, and **confirms** it by an update of its
//!   own that names the proposal (`confirms`); the requesting side applies the proposal when the
//!   confirmation arrives, at that place in the history. A proposal the case no longer allows is
//!   refused with a rejection receipt, and recorded as refused on both sides.
//!
//! The requested side's updates and confirmations travel in its chain in the order it applied
//! them, so the requesting side rebuilds exactly the requested side's history. A [`Replica`] is
//! one side's view; it is pure (no I/O) and every operation is applied whole or refused with
//! nothing changed.

use serde::{Deserialize, Serialize};

use super::extradition::ExtraditionCase;
use super::mla::MlaCase;
use super::{IllegalTransition, Side};
use crate::ids::MessageId;
use crate::message::{ExtraditionStatusUpdate, MlaStatusUpdate};

/// The side that orders a case's updates.
pub const ORDERER: Side = Side::Requested;

/// A case state machine: updates by a side, applied whole or refused.
pub trait Machine: Default {
    /// What an update says.
    type Update: Clone + PartialEq + std::fmt::Debug;

    /// Applies an update by `side`, or refuses it with nothing changed.
    fn apply(&mut self, side: Side, update: &Self::Update) -> Result<(), IllegalTransition>;
}

impl Machine for MlaCase {
    type Update = MlaStatusUpdate;

    fn apply(&mut self, side: Side, update: &MlaStatusUpdate) -> Result<(), IllegalTransition> {
        MlaCase::apply(self, side, update)
    }
}

impl Machine for ExtraditionCase {
    type Update = ExtraditionStatusUpdate;

    fn apply(
        &mut self,
        side: Side,
        update: &ExtraditionStatusUpdate,
    ) -> Result<(), IllegalTransition> {
        ExtraditionCase::apply(self, side, update)
    }
}

/// One update: who made it, the message that carried it, what it says, and what the node keeps
/// beside it (`T`: for instance when it was applied and its envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<U, T> {
    /// The side that made it.
    pub side: Side,
    /// The message that proposed or made it (the same id on both nodes).
    pub message: MessageId,
    /// What it says.
    pub update: U,
    /// What the node keeps beside it.
    pub meta: T,
}

/// A proposal the requested side refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal<U, T> {
    /// The proposal.
    pub entry: Entry<U, T>,
    /// Why it was refused.
    pub reason: String,
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It is in the history now.
    Now,
    /// This side's proposal, pending until the requested side confirms it.
    Proposed,
    /// The other side's proposal, now in the history: the caller must send the confirmation
    /// (the same update, naming the proposal in `confirms`) in the same transaction.
    Confirm,
    /// The requested side confirmed this side's proposal: it moved into the history.
    Confirmed,
}

/// One side's view of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "M::Update: Serialize, T: Serialize",
    deserialize = "M::Update: Deserialize<'de>, T: Deserialize<'de>"
))]
pub struct Replica<M: Machine, T> {
    /// This node's side.
    pub our_side: Side,
    /// The updates applied, in the requested side's order; the same on both sides.
    pub history: Vec<Entry<M::Update, T>>,
    /// This side's proposals awaiting confirmation (only on the requesting side).
    #[serde(default)]
    pub pending: Vec<Entry<M::Update, T>>,
    /// Proposals the requested side refused; the same on both sides.
    #[serde(default)]
    pub refused: Vec<Refusal<M::Update, T>>,
    #[serde(skip)]
    _machine: std::marker::PhantomData<M>,
}

impl<M: Machine, T: Clone> Replica<M, T> {
    /// An empty case, seen from `our_side`.
    pub fn new(our_side: Side) -> Self {
        Self {
            our_side,
            history: Vec::new(),
            pending: Vec::new(),
            refused: Vec::new(),
            _machine: std::marker::PhantomData,
        }
    }

    /// Whether this side orders the case.
    pub fn orders(&self) -> bool {
        self.our_side == ORDERER
    }

    /// The state both sides agree on: the history, replayed.
    pub fn state(&self) -> M {
        let mut m = M::default();
        for e in &self.history {
            // Every entry was applied once in this order; replaying it cannot fail.
            let _ = m.apply(e.side, &e.update);
        }
        m
    }

    /// The state this side expects once its pending proposals are confirmed: what a new
    /// proposal is checked against.
    pub fn projected(&self) -> M {
        let mut m = self.state();
        for e in &self.pending {
            let _ = m.apply(e.side, &e.update);
        }
        m
    }

    /// An update made on this node: applied (requested side) or proposed (requesting side), if
    /// the case allows it.
    pub fn local(
        &mut self,
        message: MessageId,
        update: M::Update,
        meta: T,
    ) -> Result<Applied, IllegalTransition> {
        let (mut m, applied) = if self.orders() {
            (self.state(), Applied::Now)
        } else {
            (self.projected(), Applied::Proposed)
        };
        m.apply(self.our_side, &update)?;
        let e = Entry {
            side: self.our_side,
            message,
            update,
            meta,
        };
        match applied {
            Applied::Now => self.history.push(e),
            _ => self.pending.push(e),
        }
        Ok(applied)
    }

    /// An update from the other side, in its chain's order; `confirms` names the proposal of
    /// this side that it confirms.
    pub fn remote(
        &mut self,
        message: MessageId,
        update: M::Update,
        confirms: Option<MessageId>,
        meta: T,
    ) -> Result<Applied, IllegalTransition> {
        let theirs = self.our_side.other();
        let mut m = self.state();
        match (self.orders(), confirms) {
            (true, Some(_)) => Err(IllegalTransition(
                "only the requested side confirms updates".into(),
            )),
            (true, None) => {
                m.apply(theirs, &update)?;
                self.history.push(Entry {
                    side: theirs,
                    message,
                    update,
                    meta,
                });
                Ok(Applied::Confirm)
            }
            (false, None) => {
                m.apply(theirs, &update)?;
                self.history.push(Entry {
                    side: theirs,
                    message,
                    update,
                    meta,
                });
                Ok(Applied::Now)
            }
            (false, Some(p)) => {
                let Some(i) = self.pending.iter().position(|e| e.message == p) else {
                    return Err(IllegalTransition(format!(
                        "confirms {p}, which is not a pending proposal of this agency"
                    )));
                };
                if self.pending[i].update != update {
                    return Err(IllegalTransition(format!(
                        "the confirmation of {p} does not say what the proposal said"
                    )));
                }
                m.apply(self.our_side, &update)?;
                let e = self.pending.remove(i);
                self.history.push(e);
                Ok(Applied::Confirmed)
            }
        }
    }

    /// The requested side refused this side's proposal `message`. Returns whether it was
    /// pending.
    pub fn refused_by_peer(&mut self, message: MessageId, reason: String) -> bool {
        let Some(i) = self.pending.iter().position(|e| e.message == message) else {
            return false;
        };
        let entry = self.pending.remove(i);
        self.refused.push(Refusal { entry, reason });
        true
    }

    /// This side refused the other side's proposal: keep it, so both sides show it refused.
    pub fn refuse_remote(
        &mut self,
        message: MessageId,
        update: M::Update,
        meta: T,
        reason: String,
    ) {
        self.refused.push(Refusal {
            entry: Entry {
                side: self.our_side.other(),
                message,
                update,
                meta,
            },
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MlaStatus;

    fn up(status: MlaStatus) -> MlaStatusUpdate {
        MlaStatusUpdate {
            status: Some(status),
            effective_at: "2026-11-30T09:15:00Z".into(),
            ..Default::default()
        }
    }

    fn id(n: u8) -> MessageId {
        MessageId::from_bytes([n; 16])
    }

    #[test]
    fn a_withdrawal_crossing_an_execution_ends_the_same_on_both_sides() {
        let mut a: Replica<MlaCase, ()> = Replica::new(Side::Requesting);
        let mut b: Replica<MlaCase, ()> = Replica::new(Side::Requested);
        // At the same time: A withdraws, B starts reviewing.
        assert_eq!(
            a.local(id(1), up(MlaStatus::Withdrawn), ()),
            Ok(Applied::Proposed)
        );
        assert_eq!(
            b.local(id(2), up(MlaStatus::UnderReview), ()),
            Ok(Applied::Now)
        );
        // B gets the proposal after its own update: still allowed, applied and confirmed.
        assert_eq!(
            b.remote(id(1), up(MlaStatus::Withdrawn), None, ()),
            Ok(Applied::Confirm)
        );
        // A gets B's update, then the confirmation, in B's chain order.
        assert_eq!(
            a.remote(id(2), up(MlaStatus::UnderReview), None, ()),
            Ok(Applied::Now)
        );
        assert_eq!(a.state().status, MlaStatus::UnderReview);
        assert_eq!(
            a.remote(id(3), up(MlaStatus::Withdrawn), Some(id(1)), ()),
            Ok(Applied::Confirmed)
        );
        assert_eq!(a.history, b.history);
        assert!(a.pending.is_empty());
        assert_eq!(a.state().status, MlaStatus::Withdrawn);
    }

    #[test]
    fn a_proposal_the_case_no_longer_allows_is_refused_on_both_sides() {
        let mut a: Replica<MlaCase, ()> = Replica::new(Side::Requesting);
        let mut b: Replica<MlaCase, ()> = Replica::new(Side::Requested);
        b.local(id(1), up(MlaStatus::Registered), ()).unwrap_err(); // registered needs a reference
        let mut reg = up(MlaStatus::Registered);
        reg.reference = Some("XB-1".into());
        b.local(id(1), reg.clone(), ()).unwrap();
        a.local(id(2), up(MlaStatus::Withdrawn), ()).unwrap();
        b.local(id(3), up(MlaStatus::Refused), ()).unwrap_err(); // no grounds
        let mut refused = up(MlaStatus::Refused);
        refused.grounds = vec!["dual criminality".into()];
        b.local(id(3), refused.clone(), ()).unwrap();
        // Refused is not withdrawable: B refuses the proposal.
        let e = b
            .remote(id(2), up(MlaStatus::Withdrawn), None, ())
            .unwrap_err();
        b.refuse_remote(id(2), up(MlaStatus::Withdrawn), (), e.0.clone());
        a.remote(id(1), reg, None, ()).unwrap();
        a.remote(id(3), refused, None, ()).unwrap();
        assert!(a.refused_by_peer(id(2), e.0));
        assert!(!a.refused_by_peer(id(2), "again".into()));
        assert_eq!(a.history, b.history);
        assert_eq!(a.refused, b.refused);
        assert!(a.pending.is_empty());
    }

    #[test]
    fn confirmations_are_checked() {
        let mut a: Replica<MlaCase, ()> = Replica::new(Side::Requesting);
        let mut b: Replica<MlaCase, ()> = Replica::new(Side::Requested);
        assert!(
            b.remote(id(1), up(MlaStatus::Withdrawn), Some(id(9)), ())
                .is_err()
        );
        assert!(
            a.remote(id(1), up(MlaStatus::Withdrawn), Some(id(9)), ())
                .is_err()
        );
        a.local(id(2), up(MlaStatus::Withdrawn), ()).unwrap();
        let before = a.clone();
        assert!(
            a.remote(id(3), up(MlaStatus::Closed), Some(id(2)), ())
                .is_err()
        );
        assert_eq!(a, before, "a refused confirmation changed nothing");
    }
}
