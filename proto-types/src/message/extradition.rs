//! Extradition status updates (European Convention on Extradition and bilateral treaties).

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::ids::MessageId;

/// The stage an extradition has reached (spec/PROTOCOL.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtraditionStage {
    /// Provisional arrest requested (ECE Art. 16).
    ProvisionalArrestRequested,
    /// The person was arrested.
    Arrested,
    /// The person consented to surrender.
    ConsentGiven,
    /// The formal extradition request was received.
    FormalRequestReceived,
    /// A hearing is scheduled.
    HearingScheduled,
    /// The hearing was held.
    HearingHeld,
    /// The court decided (granted or refused).
    JudicialDecision,
    /// The executive (minister) decided.
    ExecutiveDecision,
    /// An appeal was lodged.
    AppealLodged,
    /// The appeal was decided.
    AppealDecided,
    /// Surrender is scheduled.
    SurrenderScheduled,
    /// The person was surrendered.
    Surrendered,
    /// The person was released.
    Released,
    /// The proceedings were discharged.
    Discharged,
    /// The request was withdrawn.
    Withdrawn,
}

impl ExtraditionStage {
    /// The stage's name, as in JSON (`formal-request-received`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProvisionalArrestRequested => "provisional-arrest-requested",
            Self::Arrested => "arrested",
            Self::ConsentGiven => "consent-given",
            Self::FormalRequestReceived => "formal-request-received",
            Self::HearingScheduled => "hearing-scheduled",
            Self::HearingHeld => "hearing-held",
            Self::JudicialDecision => "judicial-decision",
            Self::ExecutiveDecision => "executive-decision",
            Self::AppealLodged => "appeal-lodged",
            Self::AppealDecided => "appeal-decided",
            Self::SurrenderScheduled => "surrender-scheduled",
            Self::Surrendered => "surrendered",
            Self::Released => "released",
            Self::Discharged => "discharged",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Stages that carry a decision.
    pub fn needs_decision(self) -> bool {
        matches!(
            self,
            Self::JudicialDecision | Self::ExecutiveDecision | Self::AppealDecided
        )
    }
}

/// A decision's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtraditionDecision {
    /// Extradition granted.
    Granted,
    /// Extradition refused.
    Refused,
}

/// A status update in an extradition case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtraditionStatusUpdate {
    /// The stage reached.
    pub stage: Option<ExtraditionStage>,
    /// The person sought, by the reference both sides use (name or file number).
    pub person_reference: String,
    /// The date the stage was reached (YYYY-MM-DD); deadlines run from it.
    pub effective_date: String,
    /// Outcome, for decision stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<ExtraditionDecision>,
    /// Date of a scheduled hearing or surrender (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<String>,
    /// Treaty applied, e.g. "European Convention on Extradition".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treaty: Option<String>,
    /// Court or authority concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// National reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_reference: Option<String>,
    /// Remarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set by the requested side's node only: the message id of the requesting side's update
    /// that this one confirms (spec/CASES.md §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirms: Option<MessageId>,
}

impl ExtraditionStatusUpdate {
    pub(crate) fn check(&self, p: &mut Problems) {
        p.text(
            "person_reference",
            &self.person_reference,
            "say which person this concerns",
        );
        p.date("effective_date", &self.effective_date);
        p.opt_date("scheduled_for", &self.scheduled_for);
        let Some(stage) = self.stage else {
            p.push("stage", "the stage reached is missing");
            return;
        };
        if stage.needs_decision() && self.decision.is_none() {
            p.push(
                "decision",
                "a decision stage needs the outcome: granted or refused",
            );
        }
        if !stage.needs_decision() && self.decision.is_some() {
            p.push("decision", "only decision stages carry an outcome");
        }
        if matches!(
            stage,
            ExtraditionStage::HearingScheduled | ExtraditionStage::SurrenderScheduled
        ) && self.scheduled_for.is_none()
        {
            p.push("scheduled_for", "give the scheduled date");
        }
    }
}
