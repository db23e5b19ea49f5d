//! The MLA request lifecycle (spec/CASES.md §1).
//!
//! The requested side drives execution; the requesting side may answer a request for more
//! information (or a return as deficient), and may withdraw the request while it is open.
//! Refusal needs grounds and postponement a reason and a date (checked by the status update's
//! validation, [`crate::message::MlaStatusUpdate`]); closed is final.

use super::{IllegalTransition, Side};
use crate::message::{MlaStatus, MlaStatusUpdate};

use MlaStatus::*;

/// Every status, in lifecycle order (for tables and diagrams).
pub const ALL: [MlaStatus; 14] = [
    Received,
    Registered,
    ReturnedDeficient,
    UnderReview,
    MoreInformationRequested,
    InformationProvided,
    Accepted,
    Executing,
    PartiallyExecuted,
    Executed,
    Postponed,
    Refused,
    Withdrawn,
    Closed,
];

/// The status a request has when it has been delivered and nothing was said of it yet.
pub const INITIAL: MlaStatus = Received;

/// The statuses the requested side may move a request to from `from`.
fn requested_moves(from: MlaStatus) -> &'static [MlaStatus] {
    match from {
        Received => &[Registered, ReturnedDeficient, UnderReview, Refused],
        // Executing straight away implies acceptance.
        Registered => &[
            UnderReview,
            ReturnedDeficient,
            MoreInformationRequested,
            Accepted,
            Executing,
            Postponed,
            Refused,
        ],
        UnderReview => &[
            ReturnedDeficient,
            MoreInformationRequested,
            Accepted,
            Executing,
            Postponed,
            Refused,
        ],
        // Waiting for the requesting side; the requested side may still refuse (no answer).
        MoreInformationRequested => &[Refused],
        InformationProvided => &[
            UnderReview,
            MoreInformationRequested,
            Accepted,
            Executing,
            Postponed,
            Refused,
        ],
        Accepted => &[Executing, Postponed, Refused],
        Executing => &[PartiallyExecuted, Executed, Postponed],
        PartiallyExecuted => &[Executing, Executed, Closed],
        Postponed => &[UnderReview, Accepted, Executing, Refused],
        Executed | Refused => &[Closed],
        ReturnedDeficient | Withdrawn => &[Closed],
        Closed => &[],
    }
}

/// The statuses the requesting side may move a request to from `from`.
fn requesting_moves(from: MlaStatus) -> &'static [MlaStatus] {
    match from {
        MoreInformationRequested => &[InformationProvided, Withdrawn],
        // A request returned as deficient may be supplemented (and goes back to review).
        ReturnedDeficient => &[InformationProvided, Withdrawn, Closed],
        Received | Registered | UnderReview | InformationProvided | Accepted | Executing
        | PartiallyExecuted | Postponed => &[Withdrawn],
        Withdrawn => &[Closed],
        Executed | Refused | Closed => &[],
    }
}

/// The statuses `side` may move a request to from `from`.
pub fn moves(from: MlaStatus, side: Side) -> &'static [MlaStatus] {
    match side {
        Side::Requested => requested_moves(from),
        Side::Requesting => requesting_moves(from),
    }
}

/// Whether `side` may move a request from `from` to `to`.
pub fn allowed(from: MlaStatus, to: MlaStatus, side: Side) -> bool {
    moves(from, side).contains(&to)
}

/// Checks a transition, with a refusal a clerk can act on.
pub fn check(from: MlaStatus, to: MlaStatus, side: Side) -> Result<(), IllegalTransition> {
    if allowed(from, to, side) {
        return Ok(());
    }
    let other = match side {
        Side::Requesting => Side::Requested,
        Side::Requested => Side::Requesting,
    };
    let name = |s: MlaStatus| s.as_str();
    let msg = if from == Closed {
        "the request is closed; a closed request cannot change".to_string()
    } else if allowed(from, to, other) {
        format!(
            "only {other} may move a request from {} to {}",
            name(from),
            name(to)
        )
    } else {
        let mine = moves(from, side);
        let options = if mine.is_empty() {
            format!("{side} cannot change it now")
        } else {
            format!(
                "{side} may move it to: {}",
                mine.iter().map(|s| name(*s)).collect::<Vec<_>>().join(", ")
            )
        };
        format!(
            "a request cannot go from {} to {}; {options}",
            name(from),
            name(to)
        )
    };
    Err(IllegalTransition(msg))
}

/// An MLA request's state on one node: its status and the history of accepted updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlaCase {
    /// The current status.
    pub status: MlaStatus,
    /// Every update applied, with the side that made it, in order.
    pub history: Vec<(Side, MlaStatusUpdate)>,
}

impl Default for MlaCase {
    fn default() -> Self {
        Self {
            status: INITIAL,
            history: Vec::new(),
        }
    }
}

impl MlaCase {
    /// Applies an update by `side`: valid (grounds, reason and date, reference …) and allowed
    /// from the current status, or refused with nothing changed.
    pub fn apply(&mut self, side: Side, update: &MlaStatusUpdate) -> Result<(), IllegalTransition> {
        let mut problems = crate::message::Problems::default();
        update.check(&mut problems);
        if !problems.0.is_empty() {
            return Err(IllegalTransition(
                problems
                    .0
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        let Some(to) = update.status else {
            return Err(IllegalTransition("the new status is missing".into()));
        };
        check(self.status, to, side)?;
        self.status = to;
        self.history.push((side, update.clone()));
        Ok(())
    }

    /// Whether the request is closed (final).
    pub fn is_closed(&self) -> bool {
        self.status == Closed
    }
}

/// The lifecycle as a Mermaid state diagram (spec/CASES.md holds the same text; a test keeps
/// them equal).
pub fn mermaid() -> String {
    let name = |s: MlaStatus| s.as_str().replace('-', "_");
    let mut out = String::from("stateDiagram-v2\n    [*] --> received\n");
    for from in ALL {
        for to in ALL {
            let a = allowed(from, to, Side::Requested);
            let b = allowed(from, to, Side::Requesting);
            let label = match (a, b) {
                (true, true) => "either",
                (true, false) => "requested",
                (false, true) => "requesting",
                (false, false) => continue,
            };
            out.push_str(&format!("    {} --> {}: {label}\n", name(from), name(to)));
        }
    }
    out.push_str("    closed --> [*]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_final_and_every_status_is_reachable() {
        for side in [Side::Requesting, Side::Requested] {
            assert!(moves(Closed, side).is_empty());
        }
        let mut seen = vec![INITIAL];
        let mut i = 0;
        while i < seen.len() {
            for side in [Side::Requesting, Side::Requested] {
                for &to in moves(seen[i], side) {
                    if !seen.contains(&to) {
                        seen.push(to);
                    }
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), ALL.len(), "{seen:?}");
        // And closed is reachable from every status but itself.
        for from in ALL {
            let mut r = vec![from];
            let mut j = 0;
            while j < r.len() {
                for side in [Side::Requesting, Side::Requested] {
                    for &to in moves(r[j], side) {
                        if !r.contains(&to) {
                            r.push(to);
                        }
                    }
                }
                j += 1;
            }
            assert!(r.contains(&Closed), "{from:?} cannot reach closed");
        }
    }
}
