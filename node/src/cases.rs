//! The node's case registry: for each case, its kind, this agency's side, the partner, and every
//! status or stage update applied, in order. The state is never stored on its own: it is the
//! replay of the updates through `rogatory-proto::case`, so it cannot disagree with them.
//!
//! Updates are checked in the same write transaction that seals an outgoing message or stores an
//! incoming one (`engine`, `inbox`): an illegal one is refused locally, or answered with an
//! `illegal-transition` rejection receipt, and changes nothing.

use rogatory_proto::case::extradition::{self, Deadline, ExtraditionCase};
use rogatory_proto::case::mla::MlaCase;
use rogatory_proto::case::{Day, IllegalTransition, Side};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId};
use rogatory_proto::message::{
    ExtraditionStage, ExtraditionStatusUpdate, Message, MlaStatusUpdate, UrgencyLevel,
};
use serde::{Deserialize, Serialize};

use crate::store::{Batch, StoreError};

/// What a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseKind {
    /// Mutual legal assistance.
    Mla,
    /// Extradition.
    Extradition,
    /// Police-to-police liaison.
    Liaison,
    /// Preservation of data.
    Preservation,
}

/// One update applied to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseUpdate {
    /// Who made it.
    pub side: Side,
    /// Unix seconds when this node applied it.
    pub at: u64,
    /// The envelope that carried it.
    pub envelope_id: EnvelopeId,
    /// An MLA status update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaStatusUpdate>,
    /// An extradition stage update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extradition: Option<ExtraditionStatusUpdate>,
}

/// A case as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The case.
    pub case_id: CaseId,
    /// Its kind.
    pub kind: CaseKind,
    /// This agency's side.
    pub our_side: Side,
    /// The partner agency.
    pub peer: AgencyId,
    /// Unix seconds when this node first saw it.
    pub opened_at: u64,
    /// An emergency (risk to life or safety).
    pub emergency: bool,
    /// This agency's own reference for the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Status and stage updates, in the order applied.
    pub updates: Vec<CaseUpdate>,
}

fn other(side: Side) -> Side {
    match side {
        Side::Requesting => Side::Requested,
        Side::Requested => Side::Requesting,
    }
}

impl CaseRecord {
    /// The MLA state, replayed.
    pub fn mla(&self) -> MlaCase {
        let mut c = MlaCase::default();
        for u in &self.updates {
            if let Some(m) = &u.mla {
                // Every stored update was applied once; replaying it cannot fail.
                let _ = c.apply(u.side, m);
            }
        }
        c
    }

    /// The extradition state, replayed.
    pub fn extradition(&self) -> ExtraditionCase {
        let mut c = ExtraditionCase::default();
        for u in &self.updates {
            if let Some(x) = &u.extradition {
                let _ = c.apply(u.side, x);
            }
        }
        c
    }

    /// The current status (MLA) or stage (extradition), by name; `open` for the other kinds.
    pub fn status(&self) -> String {
        match self.kind {
            CaseKind::Mla => self.mla().status.as_str().to_string(),
            CaseKind::Extradition => self
                .extradition()
                .stage()
                .map(|(s, _)| s.as_str().to_string())
                .unwrap_or_else(|| "opened".into()),
            CaseKind::Liaison | CaseKind::Preservation => "open".into(),
        }
    }

    /// The extradition deadlines under the default (ECE) rules.
    pub fn deadlines(&self) -> Vec<Deadline> {
        if self.kind == CaseKind::Extradition {
            self.extradition().deadlines(extradition::ECE)
        } else {
            Vec::new()
        }
    }

    /// Open deadlines past due on `today`.
    pub fn overdue(&self, today: Day) -> usize {
        self.deadlines().iter().filter(|d| d.overdue(today)).count()
    }
}

/// Applies what a message says about its case, within `batch`: creates the case on its first
/// message, and applies a status or stage update if the case's machine allows it for the sender's
/// side. `we_send` says whether this agency is the sender. The inner `Err` is a refusal that
/// changed nothing; the outer one a store failure.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    batch: &mut Batch<'_>,
    case_id: &CaseId,
    peer: &AgencyId,
    we_send: bool,
    message: &Message,
    envelope_id: EnvelopeId,
    now: u64,
) -> Result<Result<(), IllegalTransition>, StoreError> {
    let existing = batch.case_record(case_id)?;
    let (kind, sender_if_new) = match message {
        Message::MlaRequest(_) | Message::MlaStatus(_) => (CaseKind::Mla, Side::Requesting),
        Message::ExtraditionStatus(u) => (
            CaseKind::Extradition,
            match u.stage {
                Some(
                    ExtraditionStage::ProvisionalArrestRequested
                    | ExtraditionStage::FormalRequestReceived
                    | ExtraditionStage::Withdrawn,
                ) => Side::Requesting,
                _ => Side::Requested,
            },
        ),
        Message::Liaison(_) => (CaseKind::Liaison, Side::Requesting),
        Message::PreservationRequest(_) => (CaseKind::Preservation, Side::Requesting),
        // Evidence belongs to whatever case it is sent in.
        Message::EvidenceManifest(_) => return Ok(Ok(())),
    };
    let mut record = match existing {
        Some(r) => r,
        None => {
            if matches!(message, Message::MlaStatus(_)) {
                return Ok(Err(IllegalTransition(
                    "there is no MLA request in this case to report on".into(),
                )));
            }
            let our_side = if we_send {
                sender_if_new
            } else {
                other(sender_if_new)
            };
            CaseRecord {
                case_id: *case_id,
                kind,
                our_side,
                peer: peer.clone(),
                opened_at: now,
                emergency: false,
                reference: None,
                updates: Vec::new(),
            }
        }
    };
    if record.kind != kind && !matches!(message, Message::Liaison(_)) {
        return Ok(Err(IllegalTransition(format!(
            "this case is a {:?} case; a {} does not belong in it",
            record.kind,
            message.kind().as_str()
        ))));
    }
    let side = if we_send {
        record.our_side
    } else {
        other(record.our_side)
    };
    match message {
        Message::MlaRequest(_) | Message::Liaison(_) | Message::PreservationRequest(_)
            if is_emergency(message) =>
        {
            record.emergency = true;
        }
        Message::MlaStatus(u) => {
            if let Err(e) = record.mla().apply(side, u) {
                return Ok(Err(e));
            }
            record.updates.push(CaseUpdate {
                side,
                at: now,
                envelope_id,
                mla: Some(u.clone()),
                extradition: None,
            });
        }
        Message::ExtraditionStatus(u) => {
            if let Err(e) = record.extradition().apply(side, u) {
                return Ok(Err(e));
            }
            record.updates.push(CaseUpdate {
                side,
                at: now,
                envelope_id,
                mla: None,
                extradition: Some(u.clone()),
            });
        }
        _ => {}
    }
    batch.put_case_record(&record)?;
    Ok(Ok(()))
}

/// Opens a case before its first message (`rogatory case new`): this agency is the requesting
/// side. Refuses a case id already known.
pub fn open(batch: &mut Batch<'_>, record: &CaseRecord) -> Result<Result<(), String>, StoreError> {
    if batch.case_record(&record.case_id)?.is_some() {
        return Ok(Err(format!("case {} exists already", record.case_id)));
    }
    batch.put_case_record(record)?;
    Ok(Ok(()))
}

/// Whether a message is an emergency (risk to life or safety): it jumps every queue and is
/// flagged in every listing.
pub fn is_emergency(m: &Message) -> bool {
    match m {
        Message::MlaRequest(r) => r.urgency.level == UrgencyLevel::Emergency,
        Message::Liaison(l) => l.priority == UrgencyLevel::Emergency,
        Message::PreservationRequest(p) => p.urgency.level == UrgencyLevel::Emergency,
        _ => false,
    }
}
