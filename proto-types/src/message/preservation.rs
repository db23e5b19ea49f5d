//! Expedited preservation requests (Budapest Convention Art. 29) and emergency requests
//! (Second Additional Protocol Art. 9–10).

use serde::{Deserialize, Serialize};

use super::{Authority, Offence, Problems, Urgency, mla::Target};

/// Minimum preservation period, in days (Budapest Convention Art. 29(7)).
pub const MIN_PRESERVATION_DAYS: u32 = 60;

/// Stored computer data to be preserved (Art. 29(2)(c)–(d)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreservedData {
    /// The data, e.g. "subscriber information and IP logs".
    pub description: String,
    /// Where it is: account, service, system.
    pub target: Target,
    /// Its relationship to the offence.
    pub relationship_to_offence: String,
    /// Start of the period (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End of the period (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A request to preserve stored computer data pending an MLA request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreservationRequest {
    /// (a) The authority seeking preservation.
    pub requesting_authority: Authority,
    /// (b) The offence under investigation.
    pub offences: Vec<Offence>,
    /// (b) A brief summary of the related facts.
    pub summary_of_facts: String,
    /// (c)–(d) The data, its relationship to the offence, and where it is.
    pub data: Vec<PreservedData>,
    /// (d) The custodian of the data or location of the system, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custodian: Option<String>,
    /// (e) Why preservation is necessary.
    pub necessity: String,
    /// (f) The requesting party intends to submit an MLA request for the data.
    pub intends_mla_request: bool,
    /// Preservation period asked for, in days (at least 60).
    pub period_days: u32,
    /// Urgency; `emergency` for risk to life or safety (Second Additional Protocol Art. 9–10).
    pub urgency: Urgency,
    /// Do not inform the data subject.
    pub do_not_inform_subject: bool,
}

impl PreservationRequest {
    pub(crate) fn check(&self, p: &mut Problems) {
        p.authority(
            "requesting_authority",
            &self.requesting_authority,
            "requesting authority",
        );
        p.offences("offences", &self.offences);
        p.text(
            "summary_of_facts",
            &self.summary_of_facts,
            "the summary of the facts is missing",
        );
        if self.data.is_empty() {
            p.push("data", "say which stored data is to be preserved");
        }
        for (i, d) in self.data.iter().enumerate() {
            let f = format!("data[{i}]");
            p.text(
                &format!("{f}.description"),
                &d.description,
                "describe the data",
            );
            p.text(
                &format!("{f}.target.identifier"),
                &d.target.identifier,
                "say where the data is (account, service, system)",
            );
            p.text(
                &format!("{f}.relationship_to_offence"),
                &d.relationship_to_offence,
                "explain how the data relates to the offence",
            );
            p.opt_date(&format!("{f}.from"), &d.from);
            p.opt_date(&format!("{f}.until"), &d.until);
        }
        p.text(
            "necessity",
            &self.necessity,
            "explain why preservation is necessary",
        );
        if !self.intends_mla_request {
            p.push(
                "intends_mla_request",
                "Art. 29(2)(f): the request must state that a request for mutual assistance will follow",
            );
        }
        if self.period_days < MIN_PRESERVATION_DAYS {
            p.push(
                "period_days",
                "the preservation period is at least 60 days (Art. 29(7))",
            );
        }
        p.urgency("urgency", &self.urgency);
    }
}
