//! Who may send what in a case (spec/PROTOCOL.md §5.4): the rules a node applies to every
//! message it receives, before anything of it is applied, and to every message it seals.
//!
//! A node knows each case by its record: the **partner** (the other party of the case: the
//! agency whose message opened it here, or the one this node opened it with) and the
//! **copied** agencies (those this node addressed in the case besides the partner, and those the
//! partner named as co-addressees). What an agency may send depends on where it stands:
//!
//! - only the partner acts on the case: status and stage updates, requests, evidence;
//! - a copied agency receives, and may answer with a liaison message, but changes nothing;
//! - any other agency is refused, whatever it sends (`unauthorized`, reason 19);
//! - a report on evidence (`evidence-status`) comes only from the agency an item was handed to,
//!   and only about its own actions ([`check_custody_report`]).
//!
//! The state machines ([`super::mla`], [`super::extradition`]) then decide whether what the
//! partner says is allowed from its side (`illegal-transition`, reason 13).

use std::fmt;

use crate::ids::AgencyId;
use crate::message::{ItemState, ItemStatus, Message, MessageType};

/// Seconds a sender's clock may run ahead of the receiver's: `sent_at`, and the times a
/// partner writes into a chain of custody, may be at most this far in the future
/// (spec/PROTOCOL.md §3.8, "Clock").
pub const CLOCK_TOLERANCE_SECS: u64 = 300;

/// Most custody entries one item's report may add.
pub const MAX_REPORTED_CUSTODY: usize = 4;

/// Where the sender of a message stands towards its case, as the receiving node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// The case is not known here: the message may open it.
    Unknown,
    /// The case's other party.
    Partner,
    /// An agency copied in the case (addressed by this node, or named by the partner as a
    /// co-addressee).
    Copied,
    /// Any other agency.
    Outsider,
}

impl Standing {
    /// Every standing, in the order of the spec's table.
    pub const ALL: [Standing; 4] = [
        Standing::Unknown,
        Standing::Partner,
        Standing::Copied,
        Standing::Outsider,
    ];

    /// The column heading in the spec's table.
    pub fn heading(self) -> &'static str {
        match self {
            Standing::Unknown => "case not known here",
            Standing::Partner => "partner",
            Standing::Copied => "copied",
            Standing::Outsider => "any other agency",
        }
    }
}

/// What the rules say of one (message type, standing) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The message opens the case here, and its sender becomes the case's partner.
    Opens,
    /// Allowed; the case's state machine may still refuse what it says.
    Allowed,
    /// Allowed only from the requesting side of the case (the partner that made the request).
    RequestingSide,
    /// Allowed only about items this node handed over to the sender in the case, and only
    /// about the sender's own actions.
    HandedOver,
    /// Refused as `illegal-transition`: there is no request in the case to report on.
    NoRequest,
    /// Refused as `unauthorized`.
    Refused,
}

impl Rule {
    /// The cell of the spec's table.
    pub fn cell(self) -> &'static str {
        match self {
            Rule::Opens => "opens the case",
            Rule::Allowed => "allowed",
            Rule::RequestingSide => "requesting side only",
            Rule::HandedOver => "items handed over to it; its own acts",
            Rule::NoRequest => "refused (illegal-transition)",
            Rule::Refused => "refused",
        }
    }

    /// Whether a message under this rule gets past authorization at all (given its condition).
    pub fn may_pass(self) -> bool {
        !matches!(self, Rule::NoRequest | Rule::Refused)
    }
}

/// The rule for a message of type `kind` from a sender standing `standing` towards its case.
pub fn rule(kind: MessageType, standing: Standing) -> Rule {
    use MessageType as T;
    use Standing as S;
    match (kind, standing) {
        (
            T::MlaRequest | T::ExtraditionStatus | T::Liaison | T::PreservationRequest,
            S::Unknown,
        ) => Rule::Opens,
        (T::MlaStatus, S::Unknown) => Rule::NoRequest,
        (T::EvidenceManifest | T::EvidenceStatus, S::Unknown) => Rule::Refused,
        (T::MlaRequest | T::PreservationRequest, S::Partner) => Rule::RequestingSide,
        (T::MlaStatus | T::ExtraditionStatus | T::Liaison | T::EvidenceManifest, S::Partner) => {
            Rule::Allowed
        }
        (T::EvidenceStatus, S::Partner) => Rule::HandedOver,
        (T::Liaison, S::Copied) => Rule::Allowed,
        (_, S::Copied | S::Outsider) => Rule::Refused,
    }
}

/// The table of spec/PROTOCOL.md §5.4, as Markdown (a test keeps the spec equal to it).
pub fn markdown_table() -> String {
    let mut out = String::from("| message type |");
    for s in Standing::ALL {
        out.push_str(&format!(" {} |", s.heading()));
    }
    out.push_str("\n|---|");
    for _ in Standing::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for kind in MessageType::ALL {
        out.push_str(&format!("| `{}` |", kind.as_str()));
        for s in Standing::ALL {
            out.push_str(&format!(" {} |", rule(kind, s).cell()));
        }
        out.push('\n');
    }
    out
}

/// Why a message is refused as `unauthorized`, in words for both operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unauthorized(pub String);

/// The message types a node sends to one addressee only, the case's partner: a case has two
/// parties, and these act on it.
pub fn partner_only(kind: MessageType) -> bool {
    kind != MessageType::Liaison
}

/// The field rules of §5.4: a request names its requesting authority in the sender's country
/// and its requested authority in the addressee's.
pub fn check_fields(message: &Message, from: &AgencyId, to: &AgencyId) -> Result<(), Unauthorized> {
    let (requesting, requested) = match message {
        Message::MlaRequest(r) => (
            &r.requesting_authority.country,
            Some(&r.requested_authority.country),
        ),
        Message::PreservationRequest(p) => (&p.requesting_authority.country, None),
        _ => return Ok(()),
    };
    if requesting != from.country() {
        return Err(Unauthorized(format!(
            "the requesting authority is in {requesting}, but the request comes from {from}: an agency sends requests for its own country's authorities"
        )));
    }
    if let Some(c) = requested
        && c != to.country()
    {
        return Err(Unauthorized(format!(
            "the requested authority is in {c}, but the request is addressed to {to}: send it to an agency of that country"
        )));
    }
    Ok(())
}

/// The words a reported custody entry's action may begin with, for the state reported.
pub fn custody_actions(state: ItemState) -> &'static [&'static str] {
    match state {
        ItemState::Verified => &["received", "verified"],
        ItemState::Quarantined => &["received", "quarantined"],
        ItemState::Exported => &["exported"],
        ItemState::Refused => &["refused"],
    }
}

/// Checks the custody entries of one item's report against §5.4: from the agency the item was
/// handed to (`from`) about its own acts: each entry's actor is `from` (or `from: name`, one of
/// its users), its action begins with a word allowed for the reported state, and its time lies
/// between the hand-over (`handed_over_at`, the holder's clock) and the holder's `now`, each
/// with [`CLOCK_TOLERANCE_SECS`]; at most [`MAX_REPORTED_CUSTODY`] entries.
pub fn check_custody_report(
    item: &ItemStatus,
    from: &AgencyId,
    handed_over_at: u64,
    now: u64,
) -> Result<(), Unauthorized> {
    let id = &item.item_id;
    let Some(state) = item.state else {
        return Err(Unauthorized(format!(
            "the report on item {id} says nothing"
        )));
    };
    if item.custody.len() > MAX_REPORTED_CUSTODY {
        return Err(Unauthorized(format!(
            "the report on item {id} adds {} custody entries; at most {MAX_REPORTED_CUSTODY}",
            item.custody.len()
        )));
    }
    let own = |actor: &str| {
        actor == from.as_str()
            || actor
                .strip_prefix(from.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .is_some_and(|name| !name.trim().is_empty())
    };
    let earliest = handed_over_at.saturating_sub(CLOCK_TOLERANCE_SECS);
    let latest = now.saturating_add(CLOCK_TOLERANCE_SECS);
    for c in &item.custody {
        if !own(&c.actor) {
            return Err(Unauthorized(format!(
                "the report on item {id} records an act by {:?}: {from} reports only its own acts",
                c.actor
            )));
        }
        let word = c.action.split([' ', ':']).next().unwrap_or_default();
        if !custody_actions(state).contains(&word) {
            return Err(Unauthorized(format!(
                "the report that item {id} was {} records {:?}, which is not such an act",
                state.as_str(),
                c.action
            )));
        }
        let Some(at) = crate::time::parse_utc(&c.at) else {
            return Err(Unauthorized(format!(
                "the report on item {id} has an unreadable time {:?}",
                c.at
            )));
        };
        if at < earliest {
            return Err(Unauthorized(format!(
                "the report on item {id} dates an act {} before the item was handed over ({})",
                c.at,
                crate::time::format_unix(handed_over_at)
            )));
        }
        if at > latest {
            return Err(Unauthorized(format!(
                "the report on item {id} dates an act {} in the future (now {})",
                c.at,
                crate::time::format_unix(now)
            )));
        }
    }
    Ok(())
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Standing::Unknown => "with no part in the case",
            Standing::Partner => "the case's partner",
            Standing::Copied => "copied in the case",
            Standing::Outsider => "not a party to the case",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::CustodyEntry;

    fn report(state: ItemState, custody: &[(&str, &str, &str)]) -> ItemStatus {
        ItemStatus {
            item_id: "E1".into(),
            state: Some(state),
            custody: custody
                .iter()
                .map(|(at, actor, action)| CustodyEntry {
                    at: (*at).into(),
                    actor: (*actor).into(),
                    action: (*action).into(),
                    note: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_the_partner_acts_and_copied_agencies_only_answer() {
        for kind in MessageType::ALL {
            assert_eq!(rule(kind, Standing::Outsider), Rule::Refused, "{kind}");
            let copied = rule(kind, Standing::Copied);
            assert_eq!(
                copied.may_pass(),
                kind == MessageType::Liaison,
                "{kind}: {copied:?}"
            );
            assert!(rule(kind, Standing::Partner).may_pass(), "{kind}");
        }
        assert_eq!(
            rule(MessageType::EvidenceManifest, Standing::Unknown),
            Rule::Refused
        );
        assert!(markdown_table().contains("| `mla-status` | refused (illegal-transition) |"));
    }

    #[test]
    fn a_request_names_authorities_of_the_sender_s_and_the_addressee_s_countries() {
        let example = include_str!("../../../spec/examples/mla-request.json");
        let m = Message::from_json(
            MessageType::MlaRequest,
            &serde_json::from_str(example).unwrap(),
        )
        .unwrap();
        let (xa, xb, yc) = (
            AgencyId::new("XA.MOJ-CA").unwrap(),
            AgencyId::new("XB.DOJ-CA").unwrap(),
            AgencyId::new("YC.POLICE").unwrap(),
        );
        check_fields(&m, &xa, &xb).unwrap();
        let e = check_fields(&m, &yc, &xb).unwrap_err();
        assert!(e.0.contains("requesting authority is in XA"), "{e}");
        let e = check_fields(&m, &xa, &yc).unwrap_err();
        assert!(e.0.contains("requested authority is in XB"), "{e}");
        assert!(partner_only(MessageType::MlaStatus) && !partner_only(MessageType::Liaison));
    }

    #[test]
    fn a_report_records_only_the_senders_own_acts_in_time() {
        let xa = AgencyId::new("XA.MOJ-CA").unwrap();
        let handed = crate::time::parse_utc("2026-12-04T10:00:00Z").unwrap();
        let now = crate::time::parse_utc("2026-12-04T12:00:00Z").unwrap();
        let ok = report(
            ItemState::Verified,
            &[
                (
                    "2026-12-04T10:02:11Z",
                    "XA.MOJ-CA",
                    "received from XB through Rogatory",
                ),
                (
                    "2026-12-04T10:02:11Z",
                    "XA.MOJ-CA: clerk-7",
                    "verified: the SHA-256 matches",
                ),
            ],
        );
        check_custody_report(&ok, &xa, handed, now).unwrap();
        for (bad, says) in [
            (
                report(
                    ItemState::Verified,
                    &[("2020-01-01T00:00:00Z", "XA.MOJ-CA", "received")],
                ),
                "before the item was handed over",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2026-12-04T10:01:00Z", "XB.DOJ-CA", "received")],
                ),
                "its own acts",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2026-12-04T10:01:00Z", "XA.MOJ-CA-X", "received")],
                ),
                "its own acts",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2026-12-04T10:01:00Z", "XA.MOJ-CA: ", "received")],
                ),
                "its own acts",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2026-12-04T10:01:00Z", "XA.MOJ-CA", "original destroyed")],
                ),
                "not such an act",
            ),
            (
                report(
                    ItemState::Exported,
                    &[("2026-12-04T10:01:00Z", "XA.MOJ-CA", "verified")],
                ),
                "not such an act",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2076-01-01T00:00:00Z", "XA.MOJ-CA", "received")],
                ),
                "in the future",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2026-13-01T00:00:00Z", "XA.MOJ-CA", "received")],
                ),
                "unreadable",
            ),
            (
                report(
                    ItemState::Verified,
                    &[("2026-12-04T10:01:00Z", "XA.MOJ-CA", "received"); 5],
                ),
                "at most",
            ),
        ] {
            let e = check_custody_report(&bad, &xa, handed, now).unwrap_err();
            assert!(e.0.contains(says), "{says}: {e}");
        }
    }
}
