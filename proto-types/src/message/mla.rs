//! MLA requests (UNTOC Art. 18(15); the EU EIO form; the UNODC MLA Request Writer Tool) and
//! their status updates.

use serde::{Deserialize, Serialize};

use super::{AttachmentRef, Authority, Offence, Problems, Urgency};
use crate::ids::{CaseId, MessageId};

/// The legal basis of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasisKind {
    /// A bilateral or multilateral treaty, named in `instrument`.
    Treaty,
    /// Reciprocity (comity), with no treaty.
    Reciprocity,
    /// The requested state's domestic law alone.
    DomesticLaw,
}

/// Legal basis: treaty (named) or reciprocity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegalBasis {
    /// Which kind.
    pub kind: Option<LegalBasisKind>,
    /// The instrument, e.g. "UNTOC", "Budapest Convention", a bilateral treaty's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    /// The articles relied on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub articles: Option<String>,
}

/// What kind of proceedings the request serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProceedingsKind {
    /// Criminal investigation.
    Investigation,
    /// Prosecution.
    Prosecution,
    /// Trial.
    Trial,
    /// Appeal.
    Appeal,
    /// Execution of a sentence.
    ExecutionOfSentence,
    /// Confiscation or asset recovery.
    AssetRecovery,
}

/// The proceedings: UNTOC Art. 18(15)(b).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Proceedings {
    /// Kind of proceedings.
    pub kind: Option<ProceedingsKind>,
    /// Stage, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The subject matter and nature of the investigation, prosecution or proceedings.
    pub subject: String,
    /// The name and function of the authority conducting them, when not the requester.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conducted_by: Option<String>,
    /// The requesting side's national reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_reference: Option<String>,
}

/// A person's part in the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonRole {
    /// Suspect or accused.
    Suspect,
    /// Witness.
    Witness,
    /// Victim: identified only by pseudonym, age band and gender.
    Victim,
    /// Holder of data or property, or another person concerned.
    Other,
}

/// A person concerned (UNTOC Art. 18(15)(e)). Victims appear by pseudonym, age band and gender
/// only; any identifying field on a victim is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Person {
    /// Role.
    pub role: Option<PersonRole>,
    /// Full name (not for victims).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pseudonym (required for victims).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudonym: Option<String>,
    /// Date of birth, YYYY-MM-DD (not for victims).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// Nationalities, ISO 3166-1 alpha-2 (not for victims).
    pub nationalities: Vec<String>,
    /// Known or presumed location (not for victims).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Identifiers: document numbers, account names (not for victims).
    pub identifiers: Vec<String>,
    /// Age band (victims): one of [`AGE_BANDS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_band: Option<String>,
    /// Gender as recorded (victims): one of [`GENDERS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
}

/// A measure of assistance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssistanceKind {
    /// Preservation of stored data.
    Preserve,
    /// Subscriber data.
    SubscriberData,
    /// Traffic data.
    TrafficData,
    /// Content data.
    ContentData,
    /// Search and seizure.
    SearchAndSeizure,
    /// Hearing of a witness.
    WitnessHearing,
    /// Hearing by videoconference.
    VideoconferenceHearing,
    /// Bank records.
    BankRecords,
    /// Freezing of assets.
    FreezingOfAssets,
    /// Service of documents.
    ServiceOfDocuments,
    /// Anything else, described.
    Other,
}

impl AssistanceKind {
    /// Every measure, in the order of the list.
    pub const ALL: [AssistanceKind; 11] = [
        Self::Preserve,
        Self::SubscriberData,
        Self::TrafficData,
        Self::ContentData,
        Self::SearchAndSeizure,
        Self::WitnessHearing,
        Self::VideoconferenceHearing,
        Self::BankRecords,
        Self::FreezingOfAssets,
        Self::ServiceOfDocuments,
        Self::Other,
    ];

    /// The measure's name, as in JSON (`subscriber-data`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preserve => "preserve",
            Self::SubscriberData => "subscriber-data",
            Self::TrafficData => "traffic-data",
            Self::ContentData => "content-data",
            Self::SearchAndSeizure => "search-and-seizure",
            Self::WitnessHearing => "witness-hearing",
            Self::VideoconferenceHearing => "videoconference-hearing",
            Self::BankRecords => "bank-records",
            Self::FreezingOfAssets => "freezing-of-assets",
            Self::ServiceOfDocuments => "service-of-documents",
            Self::Other => "other",
        }
    }
}

/// The victims' age bands a request may give (spec/STATS.md §3).
pub const AGE_BANDS: [&str; 6] = ["0-5", "6-11", "12-15", "16-17", "adult", "unknown"];

/// The victims' genders a request may give; absent is counted as `unknown`.
pub const GENDERS: [&str; 4] = ["female", "male", "other", "unknown"];

/// What a measure is aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// An online account (user name, e-mail address).
    Account,
    /// An IP address with time.
    IpAddress,
    /// A telephone number.
    PhoneNumber,
    /// Premises.
    Premises,
    /// A person (by reference to `persons`).
    Person,
    /// A device.
    Device,
    /// A bank account (IBAN).
    BankAccount,
    /// A document or record.
    Document,
    /// Anything else.
    Other,
}

/// The target of a measure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    /// Kind.
    pub kind: Option<TargetKind>,
    /// The identifier: account name, IP address and time, number, address, IBAN …
    pub identifier: String,
    /// Who holds the data (service provider, bank), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// One measure of assistance sought, with its targets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Measure {
    /// Kind of measure.
    pub kind: Option<AssistanceKind>,
    /// What exactly is asked for.
    pub description: String,
    /// At whom or what it is aimed (at least one).
    pub targets: Vec<Target>,
    /// Start of the period concerned (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End of the period concerned (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Confidentiality terms (UNTOC Art. 18(20)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfidentialityTerms {
    /// The request and its content are to be kept confidential.
    pub confidential: bool,
    /// The data subject must not be informed.
    pub do_not_inform_subject: bool,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Another request this one relates to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelatedRequest {
    /// Its reference.
    pub reference: String,
    /// Its Rogatory case id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    /// How it relates, e.g. "supplements", "follows preservation".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
}

/// A request for mutual legal assistance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlaRequest {
    /// The authority making the request (Art. 18(15)(a)).
    pub requesting_authority: Authority,
    /// The authority asked to execute it.
    pub requested_authority: Authority,
    /// Legal basis.
    pub legal_basis: LegalBasis,
    /// The proceedings (Art. 18(15)(b)).
    pub proceedings: Proceedings,
    /// Summary of the relevant facts (Art. 18(15)(c)).
    pub summary_of_facts: String,
    /// Offences.
    pub offences: Vec<Offence>,
    /// Persons concerned (Art. 18(15)(e)).
    pub persons: Vec<Person>,
    /// Assistance sought (Art. 18(15)(d)), at least one measure.
    pub assistance: Vec<Measure>,
    /// Purpose for which the evidence or action is sought (Art. 18(15)(f)).
    pub purpose: String,
    /// Why the evidence is believed to be in the requested state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons_evidence_in_requested_state: Option<String>,
    /// Particular procedures the requester wishes followed (Art. 18(15)(d), 18(17)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedures: Option<String>,
    /// Confidentiality.
    pub confidentiality: ConfidentialityTerms,
    /// Urgency.
    pub urgency: Urgency,
    /// Related requests.
    pub related_requests: Vec<RelatedRequest>,
    /// Attachments, by hash.
    pub attachments: Vec<AttachmentRef>,
    /// Language of the request (BCP 47).
    pub language: String,
}

impl MlaRequest {
    pub(crate) fn check(&self, p: &mut Problems) {
        p.authority(
            "requesting_authority",
            &self.requesting_authority,
            "requesting authority",
        );
        p.authority(
            "requested_authority",
            &self.requested_authority,
            "requested authority",
        );
        match self.legal_basis.kind {
            None => p.push(
                "legal_basis.kind",
                "the legal basis is missing: a treaty (name it) or reciprocity",
            ),
            Some(LegalBasisKind::Treaty)
                if self
                    .legal_basis
                    .instrument
                    .as_deref()
                    .unwrap_or("")
                    .trim()
                    .is_empty() =>
            {
                p.push(
                    "legal_basis.instrument",
                    "name the treaty the request relies on",
                )
            }
            _ => {}
        }
        if self.proceedings.kind.is_none() {
            p.push(
                "proceedings.kind",
                "say what kind of proceedings this is (investigation, prosecution, trial …)",
            );
        }
        p.text(
            "proceedings.subject",
            &self.proceedings.subject,
            "the subject and nature of the investigation or proceedings is missing",
        );
        let only_service = !self.assistance.is_empty()
            && self
                .assistance
                .iter()
                .all(|m| m.kind == Some(AssistanceKind::ServiceOfDocuments));
        if !only_service {
            p.text(
                "summary_of_facts",
                &self.summary_of_facts,
                "the summary of the relevant facts is missing",
            );
        }
        p.offences("offences", &self.offences);
        for (i, person) in self.persons.iter().enumerate() {
            check_person(p, &format!("persons[{i}]"), person);
        }
        if self.assistance.is_empty() {
            p.push(
                "assistance",
                "the assistance sought is not described: list at least one measure",
            );
        }
        for (i, m) in self.assistance.iter().enumerate() {
            let f = format!("assistance[{i}]");
            if m.kind.is_none() {
                p.push(&format!("{f}.kind"), "say which kind of measure this is");
            }
            p.text(
                &format!("{f}.description"),
                &m.description,
                "describe what exactly is asked for",
            );
            if m.targets.is_empty() {
                p.push(
                    &format!("{f}.targets"),
                    "name the target of this measure (account, number, premises, person …)",
                );
            }
            for (j, t) in m.targets.iter().enumerate() {
                p.target(&format!("{f}.targets[{j}]"), t);
            }
            p.opt_date(&format!("{f}.from"), &m.from);
            p.opt_date(&format!("{f}.until"), &m.until);
            if let (Some(a), Some(b)) = (&m.from, &m.until)
                && a > b
            {
                p.push(&format!("{f}.until"), "the period ends before it starts");
            }
        }
        p.text(
            "purpose",
            &self.purpose,
            "the purpose for which the evidence or action is sought is missing",
        );
        p.urgency("urgency", &self.urgency);
        for (i, r) in self.related_requests.iter().enumerate() {
            p.text(
                &format!("related_requests[{i}].reference"),
                &r.reference,
                "give the related request's reference",
            );
        }
        p.attachments("attachments", &self.attachments);
        p.text(
            "language",
            &self.language,
            "the language of the request is missing (e.g. en, fr)",
        );
    }
}

fn check_person(p: &mut Problems, f: &str, person: &Person) {
    match person.role {
        None => p.push(
            &format!("{f}.role"),
            "say whether this is a suspect, witness, victim or other person",
        ),
        Some(PersonRole::Victim) => {
            if person.pseudonym.as_deref().unwrap_or("").trim().is_empty() {
                p.push(
                    &format!("{f}.pseudonym"),
                    "a victim is referred to by a pseudonym",
                );
            }
            if person.name.is_some()
                || person.date_of_birth.is_some()
                || person.location.is_some()
                || !person.identifiers.is_empty()
                || !person.nationalities.is_empty()
            {
                p.push(
                    f,
                    "a victim may be described only by pseudonym, age band and gender: remove name, date of birth, location, nationalities and identifiers",
                );
            }
            match person.age_band.as_deref() {
                None => p.push(&format!("{f}.age_band"), "give the victim's age band"),
                Some(b) if !AGE_BANDS.contains(&b) => p.push(
                    &format!("{f}.age_band"),
                    &format!("the age band is one of {}", AGE_BANDS.join(", ")),
                ),
                Some(_) => {}
            }
            if let Some(g) = person.gender.as_deref()
                && !GENDERS.contains(&g)
            {
                p.push(
                    &format!("{f}.gender"),
                    &format!("the gender is one of {}", GENDERS.join(", ")),
                );
            }
        }
        Some(_) => {
            if person.name.as_deref().unwrap_or("").trim().is_empty()
                && person.pseudonym.as_deref().unwrap_or("").trim().is_empty()
                && person.identifiers.is_empty()
            {
                p.push(
                    f,
                    "identify the person: a name, a pseudonym or an identifier",
                );
            }
            p.opt_date(&format!("{f}.date_of_birth"), &person.date_of_birth);
            for (i, n) in person.nationalities.iter().enumerate() {
                p.country(&format!("{f}.nationalities[{i}]"), n);
            }
        }
    }
}

/// Where an MLA request stands on the requested side (spec/PROTOCOL.md §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MlaStatus {
    /// Arrived.
    Received,
    /// Registered under a national reference.
    Registered,
    /// Returned as deficient, with the deficiencies.
    ReturnedDeficient,
    /// Under review.
    UnderReview,
    /// More information is requested.
    MoreInformationRequested,
    /// The requester provided the information asked for.
    InformationProvided,
    /// Accepted for execution.
    Accepted,
    /// Being executed.
    Executing,
    /// Partly executed.
    PartiallyExecuted,
    /// Executed.
    Executed,
    /// Postponed until a date, for a reason.
    Postponed,
    /// Refused, on stated grounds.
    Refused,
    /// Withdrawn by the requester.
    Withdrawn,
    /// Closed (final).
    Closed,
}

impl MlaStatus {
    /// The status's name, as in JSON (`more-information-requested`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Registered => "registered",
            Self::ReturnedDeficient => "returned-deficient",
            Self::UnderReview => "under-review",
            Self::MoreInformationRequested => "more-information-requested",
            Self::InformationProvided => "information-provided",
            Self::Accepted => "accepted",
            Self::Executing => "executing",
            Self::PartiallyExecuted => "partially-executed",
            Self::Executed => "executed",
            Self::Postponed => "postponed",
            Self::Refused => "refused",
            Self::Withdrawn => "withdrawn",
            Self::Closed => "closed",
        }
    }
}

/// A ground for refusing assistance, from a fixed list: the grounds of the EIO Directive
/// (2014/41/EU) Art. 11(1) and of UNTOC Art. 18(21), plus `political-offence` (treaties that
/// keep it) and `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalGround {
    /// Immunity or privilege, or rules on the freedom of the press (EIO Art. 11(1)(a)).
    ImmunityOrPrivilege,
    /// Harm to essential national security interests (EIO Art. 11(1)(b)).
    NationalSecurity,
    /// Sovereignty, security, ordre public or other essential interests (UNTOC Art. 18(21)(b)).
    SovereigntyOrPublicOrder,
    /// The measure is not available in a similar domestic case (EIO Art. 11(1)(c), (h);
    /// UNTOC Art. 18(21)(c)).
    MeasureNotAvailable,
    /// Ne bis in idem (EIO Art. 11(1)(d)).
    NeBisInIdem,
    /// Committed outside the requesting state and wholly or partly in the requested one (EIO
    /// Art. 11(1)(e)).
    Territoriality,
    /// Incompatible with fundamental rights (EIO Art. 11(1)(f)).
    FundamentalRights,
    /// Not an offence under the requested state's law (EIO Art. 11(1)(g)).
    DualCriminality,
    /// The measure is restricted to offences or thresholds this one does not meet (EIO
    /// Art. 11(1)(h)).
    OffenceThreshold,
    /// The request does not conform to the article's requirements (UNTOC Art. 18(21)(a)).
    FormalNonConformity,
    /// Contrary to the legal system of the requested state (UNTOC Art. 18(21)(d)).
    ContraryToLegalSystem,
    /// A political offence, where a treaty keeps this ground.
    PoliticalOffence,
    /// Another ground, stated in `grounds`.
    Other,
}

impl RefusalGround {
    /// Every ground, in the order of the list.
    pub const ALL: [RefusalGround; 13] = [
        Self::ImmunityOrPrivilege,
        Self::NationalSecurity,
        Self::SovereigntyOrPublicOrder,
        Self::MeasureNotAvailable,
        Self::NeBisInIdem,
        Self::Territoriality,
        Self::FundamentalRights,
        Self::DualCriminality,
        Self::OffenceThreshold,
        Self::FormalNonConformity,
        Self::ContraryToLegalSystem,
        Self::PoliticalOffence,
        Self::Other,
    ];

    /// The ground's name, as in JSON (`dual-criminality`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImmunityOrPrivilege => "immunity-or-privilege",
            Self::NationalSecurity => "national-security",
            Self::SovereigntyOrPublicOrder => "sovereignty-or-public-order",
            Self::MeasureNotAvailable => "measure-not-available",
            Self::NeBisInIdem => "ne-bis-in-idem",
            Self::Territoriality => "territoriality",
            Self::FundamentalRights => "fundamental-rights",
            Self::DualCriminality => "dual-criminality",
            Self::OffenceThreshold => "offence-threshold",
            Self::FormalNonConformity => "formal-non-conformity",
            Self::ContraryToLegalSystem => "contrary-to-legal-system",
            Self::PoliticalOffence => "political-offence",
            Self::Other => "other",
        }
    }
}

/// A status update on an MLA request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlaStatusUpdate {
    /// The new status.
    pub status: Option<MlaStatus>,
    /// The message id of the request concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<MessageId>,
    /// When the status took effect (UTC).
    pub effective_at: String,
    /// The requested side's reference (required with `registered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Reason (required with `postponed`; optional otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Postponed until (YYYY-MM-DD; required with `postponed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Grounds for refusal (required with `refused`), in words.
    pub grounds: Vec<String>,
    /// The grounds classified (with `refused` only): the fixed list of [`RefusalGround`], for
    /// statistics (spec/STATS.md). Optional, so that a refusal of an earlier node still reads;
    /// a refusal without it is counted as `not-classified`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refusal_grounds: Vec<RefusalGround>,
    /// Deficiencies (required with `returned-deficient`), or questions (with
    /// `more-information-requested`).
    pub items: Vec<String>,
    /// Free-text note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set by the requested side's node only: the message id of the requesting side's update
    /// that this one confirms (spec/CASES.md §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirms: Option<MessageId>,
}

impl MlaStatusUpdate {
    pub(crate) fn check(&self, p: &mut Problems) {
        p.datetime("effective_at", &self.effective_at);
        p.opt_date("until", &self.until);
        let Some(status) = self.status else {
            p.push("status", "the new status is missing");
            return;
        };
        match status {
            MlaStatus::Registered if self.reference.as_deref().unwrap_or("").trim().is_empty() => {
                p.push("reference", "registration needs the national reference");
            }
            MlaStatus::ReturnedDeficient | MlaStatus::MoreInformationRequested
                if self.items.iter().all(|i| i.trim().is_empty()) =>
            {
                p.push("items", "list the deficiencies or the questions");
            }
            MlaStatus::Postponed => {
                if self.reason.as_deref().unwrap_or("").trim().is_empty() {
                    p.push("reason", "a postponement needs a reason");
                }
                if self.until.is_none() {
                    p.push("until", "a postponement needs the date it lasts until");
                }
            }
            MlaStatus::Refused if self.grounds.iter().all(|g| g.trim().is_empty()) => {
                p.push("grounds", "a refusal must state its grounds");
            }
            _ => {}
        }
        if status != MlaStatus::Refused && !self.grounds.is_empty() {
            p.push("grounds", "grounds are given only with a refusal");
        }
        if status != MlaStatus::Refused && !self.refusal_grounds.is_empty() {
            p.push(
                "refusal_grounds",
                "refusal grounds are given only with a refusal",
            );
        }
        let mut seen = self.refusal_grounds.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.refusal_grounds.len() {
            p.push("refusal_grounds", "a refusal ground is listed twice");
        }
    }
}
