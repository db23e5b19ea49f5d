//! Statistics of an agency's cases (spec/STATS.md): figures computed from the messages of each
//! case, as the node holds them or as an auditor reads them from export bundles. Both feed this
//! one function, so a node's figures and a recomputation from its bundles agree by
//! construction, and an independent implementation can check them from the rules of the spec.
//!
//! Victims appear only in aggregate, and small counts are suppressed ([`suppress`]).

pub mod render;
pub mod suppress;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::case::Day;
use crate::case::extradition::{ECE, ExtraditionCase};
use crate::ids::{AgencyId, CaseId};
use crate::message::{
    AGE_BANDS, ExtraditionDecision, ExtraditionStage, GENDERS, Message, MlaStatus, PersonRole,
};

/// The format name of [`Figures`].
pub const FORMAT: &str = "rogatory-stats/1";

/// The default suppression threshold: victim counts from 1 to 4 are never shown.
pub const DEFAULT_THRESHOLD: u64 = 5;

/// One message of a case, as its sender sealed it.
#[derive(Debug, Clone)]
pub struct StatMessage {
    /// The sender.
    pub from: AgencyId,
    /// The envelope's addressee.
    pub to: AgencyId,
    /// Unix seconds at sealing (the sender's signed `sent-at`).
    pub sent_at: u64,
    /// Its place in the agency's audit log of the case: the index of the `envelope-sent` or
    /// `envelope-received` entry that records it. The log orders what the agency sent and
    /// received as it happened, which `sent-at` (whole seconds, two senders' clocks) cannot.
    pub position: u64,
    /// The message.
    pub message: Message,
}

/// Every message of one case that the agency sent or received.
#[derive(Debug, Clone)]
pub struct CaseMessages {
    /// The case.
    pub case_id: CaseId,
    /// Its messages, in any order.
    pub messages: Vec<StatMessage>,
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct Params {
    /// The agency whose figures these are.
    pub agency: AgencyId,
    /// The period's first second (Unix seconds, inclusive).
    pub from: u64,
    /// The period's last second (inclusive).
    pub until: u64,
    /// Victim counts from 1 to `threshold - 1` are suppressed (at least 1: 1 suppresses none).
    pub threshold: u64,
}

/// Counts by category; categories are names from the spec's lists.
pub type Counts = BTreeMap<String, u64>;

/// The figures of a period (spec/STATS.md §4), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// [`FORMAT`].
    pub format: String,
    /// The agency.
    pub agency: String,
    /// The period's first second, `YYYY-MM-DDTHH:MM:SSZ`.
    pub from: String,
    /// Its last second.
    pub until: String,
    /// The suppression threshold applied to victims.
    pub threshold: u64,
    /// Cases begun in the period.
    pub cases: CaseFigures,
    /// Messages sent or received in the period.
    pub messages: MessageFigures,
    /// Victims named in the requests of those cases, by age band and gender.
    pub victims: suppress::Table,
    /// Times in seconds from an MLA request to the requested side's first update, its
    /// registration, its execution and its closing, for the cases begun in the period.
    pub durations: BTreeMap<String, Duration>,
    /// The statutory periods of the extraditions begun in the period (CASES.md §3).
    pub extradition_deadlines: Counts,
}

/// Cases, by each breakdown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFigures {
    /// How many.
    pub total: u64,
    /// `incoming` (a partner asked this agency) or `outgoing`.
    pub by_direction: Counts,
    /// The partner agency.
    pub by_partner: Counts,
    /// `mla`, `extradition`, `preservation`, `liaison`, `evidence`.
    pub by_kind: Counts,
    /// ICCS code of each offence of the case's requests (`unclassified` without one); a case
    /// counts once under each of its codes.
    pub by_offence: Counts,
    /// Measures of assistance requested; a case counts once under each.
    pub by_measure: Counts,
    /// `emergency` or `routine`.
    pub by_emergency: Counts,
    /// `mla:…` and `extradition:…` outcomes.
    pub by_outcome: Counts,
    /// The classified grounds of refused MLA requests (`not-classified` without one).
    pub by_refusal_ground: Counts,
}

/// Messages, by each breakdown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFigures {
    /// How many.
    pub total: u64,
    /// `sent` or `received`.
    pub by_direction: Counts,
    /// The other agency.
    pub by_partner: Counts,
    /// The message type.
    pub by_type: Counts,
}

/// A duration's distribution, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duration {
    /// How many cases reached the event.
    pub count: u64,
    /// The lower median: the ⌊(n−1)/2⌋-th smallest.
    pub median: Option<u64>,
    /// The nearest-rank 90th percentile: the ⌈0.9·n⌉-th smallest.
    pub p90: Option<u64>,
    /// The largest.
    pub max: Option<u64>,
}

impl Duration {
    fn of(mut v: Vec<u64>) -> Self {
        v.sort_unstable();
        let n = v.len();
        if n == 0 {
            return Self::default();
        }
        Self {
            count: n as u64,
            median: Some(v[(n - 1) / 2]),
            p90: Some(v[(9 * n).div_ceil(10) - 1]),
            max: Some(v[n - 1]),
        }
    }
}

/// The durations measured, in the order shown.
pub const DURATIONS: [&str; 4] = ["acknowledgement", "registration", "execution", "closing"];

fn bump(c: &mut Counts, k: impl Into<String>) {
    *c.entry(k.into()).or_default() += 1;
}

/// The facts of one case that the figures count.
struct Case<'a> {
    start: u64,
    first: &'a StatMessage,
    /// The requested side's updates, in the order it made them (CASES.md §4.1).
    history: Vec<&'a StatMessage>,
    messages: &'a [StatMessage],
}

impl<'a> Case<'a> {
    fn of(messages: &'a [StatMessage]) -> Option<Case<'a>> {
        let first = messages.iter().min_by_key(|m| m.position)?;
        let requested = &first.to;
        let mut history: Vec<&StatMessage> = messages
            .iter()
            .filter(|m| {
                &m.from == requested
                    && matches!(
                        m.message,
                        Message::MlaStatus(_) | Message::ExtraditionStatus(_)
                    )
            })
            .collect();
        history.sort_by_key(|m| m.position);
        Some(Case {
            start: first.sent_at,
            first,
            history,
            messages,
        })
    }

    fn has(&self, f: impl Fn(&Message) -> bool) -> bool {
        self.messages.iter().any(|m| f(&m.message))
    }

    fn kind(&self) -> &'static str {
        if self.has(|m| matches!(m, Message::MlaRequest(_))) {
            "mla"
        } else if self.has(|m| matches!(m, Message::ExtraditionStatus(_))) {
            "extradition"
        } else if self.has(|m| matches!(m, Message::PreservationRequest(_))) {
            "preservation"
        } else if self.has(|m| matches!(m, Message::Liaison(_))) {
            "liaison"
        } else {
            "evidence"
        }
    }

    fn mla_statuses(&self) -> impl Iterator<Item = (&'a StatMessage, MlaStatus)> + '_ {
        self.history.iter().filter_map(|m| match &m.message {
            Message::MlaStatus(u) => u.status.map(|s| (*m, s)),
            _ => None,
        })
    }

    fn outcome(&self) -> Option<String> {
        match self.kind() {
            "mla" => {
                let decisive = [
                    MlaStatus::Executed,
                    MlaStatus::PartiallyExecuted,
                    MlaStatus::Refused,
                    MlaStatus::Withdrawn,
                ];
                let last = self
                    .mla_statuses()
                    .filter(|(_, s)| decisive.contains(s))
                    .last()
                    .map(|(_, s)| s.as_str());
                let closed = self.mla_statuses().any(|(_, s)| s == MlaStatus::Closed);
                Some(format!(
                    "mla:{}",
                    last.unwrap_or(if closed { "closed" } else { "open" })
                ))
            }
            "extradition" => {
                use ExtraditionStage::*;
                let mut out = "open";
                for m in &self.history {
                    let Message::ExtraditionStatus(u) = &m.message else {
                        continue;
                    };
                    out = match (u.stage, u.decision) {
                        (Some(Surrendered), _) => "surrendered",
                        (Some(Released), _) => "released",
                        (Some(Discharged), _) => "discharged",
                        (Some(Withdrawn), _) => "withdrawn",
                        (Some(s), Some(ExtraditionDecision::Refused)) if s.needs_decision() => {
                            "refused"
                        }
                        (Some(s), Some(ExtraditionDecision::Granted)) if s.needs_decision() => {
                            "granted"
                        }
                        _ => out,
                    };
                }
                Some(format!("extradition:{out}"))
            }
            _ => None,
        }
    }
}

/// Computes the figures of `cases` for `p` (spec/STATS.md §4).
pub fn compute(cases: &[CaseMessages], p: &Params) -> Figures {
    let inside = |t: u64| p.from <= t && t <= p.until;
    let mut c = CaseFigures::default();
    let mut m = MessageFigures::default();
    let mut victims = vec![vec![0u64; GENDERS.len()]; AGE_BANDS.len()];
    let mut durations: BTreeMap<&str, Vec<u64>> = DURATIONS.iter().map(|d| (*d, vec![])).collect();
    let mut deadlines: Counts = ["met", "missed", "open"]
        .iter()
        .map(|k| (k.to_string(), 0))
        .collect();
    for case in cases {
        for msg in case.messages.iter().filter(|x| inside(x.sent_at)) {
            m.total += 1;
            let sent = msg.from == p.agency;
            bump(&mut m.by_direction, if sent { "sent" } else { "received" });
            bump(
                &mut m.by_partner,
                if sent {
                    msg.to.as_str()
                } else {
                    msg.from.as_str()
                },
            );
            bump(&mut m.by_type, msg.message.kind().as_str());
        }
        let Some(k) = Case::of(&case.messages) else {
            continue;
        };
        if !inside(k.start) {
            continue;
        }
        c.total += 1;
        let outgoing = k.first.from == p.agency;
        bump(
            &mut c.by_direction,
            if outgoing { "outgoing" } else { "incoming" },
        );
        bump(
            &mut c.by_partner,
            if outgoing {
                k.first.to.as_str()
            } else {
                k.first.from.as_str()
            },
        );
        bump(&mut c.by_kind, k.kind());
        let emergency = k.has(Message::is_emergency);
        bump(
            &mut c.by_emergency,
            if emergency { "emergency" } else { "routine" },
        );
        let mut offences = BTreeSet::new();
        let mut measures = BTreeSet::new();
        let mut seen_victims = BTreeSet::new();
        for msg in k.messages.iter().filter(|x| x.sent_at <= p.until) {
            match &msg.message {
                Message::MlaRequest(r) => {
                    for o in &r.offences {
                        offences.insert(o.iccs.clone().unwrap_or_else(|| "unclassified".into()));
                    }
                    for a in &r.assistance {
                        if let Some(kind) = a.kind {
                            measures.insert(kind.as_str().to_string());
                        }
                    }
                    for v in r
                        .persons
                        .iter()
                        .filter(|x| x.role == Some(PersonRole::Victim))
                    {
                        let name = v.pseudonym.clone().unwrap_or_default();
                        if !seen_victims.insert(name) {
                            continue;
                        }
                        let band = v.age_band.as_deref().unwrap_or("unknown");
                        let gender = v.gender.as_deref().unwrap_or("unknown");
                        let row = AGE_BANDS.iter().position(|b| *b == band);
                        let col = GENDERS.iter().position(|g| *g == gender);
                        if let (Some(r), Some(g)) = (row, col) {
                            victims[r][g] += 1;
                        }
                    }
                }
                Message::PreservationRequest(r) => {
                    for o in &r.offences {
                        offences.insert(o.iccs.clone().unwrap_or_else(|| "unclassified".into()));
                    }
                    measures.insert("preserve".to_string());
                }
                _ => {}
            }
        }
        for o in offences {
            bump(&mut c.by_offence, o);
        }
        for x in measures {
            bump(&mut c.by_measure, x);
        }
        if let Some(o) = k.outcome() {
            if o == "mla:refused" {
                let mut grounds = BTreeSet::new();
                for (msg, s) in k.mla_statuses() {
                    if let (MlaStatus::Refused, Message::MlaStatus(u)) = (s, &msg.message) {
                        grounds.extend(u.refusal_grounds.iter().map(|g| g.as_str()));
                    }
                }
                if grounds.is_empty() {
                    grounds.insert("not-classified");
                }
                for g in grounds {
                    bump(&mut c.by_refusal_ground, g);
                }
            }
            bump(&mut c.by_outcome, o);
        }
        // Durations: from the first MLA request to the requested side's updates.
        let request = k
            .messages
            .iter()
            .filter(|x| matches!(x.message, Message::MlaRequest(_)))
            .map(|x| x.sent_at)
            .min();
        if let Some(start) = request.filter(|t| *t <= p.until) {
            let first_where = |f: &dyn Fn(MlaStatus) -> bool| {
                k.mla_statuses()
                    .find(|(x, s)| x.sent_at <= p.until && f(*s))
                    .map(|(x, _)| x.sent_at.saturating_sub(start))
            };
            let events = [
                first_where(&|_| true),
                first_where(&|s| s == MlaStatus::Registered),
                first_where(&|s| matches!(s, MlaStatus::Executed | MlaStatus::PartiallyExecuted)),
                first_where(&|s| s == MlaStatus::Closed),
            ];
            for (name, e) in DURATIONS.iter().zip(events) {
                if let (Some(e), Some(v)) = (e, durations.get_mut(name)) {
                    v.push(e);
                }
            }
        }
        if k.kind() == "extradition" {
            let mut x = ExtraditionCase::default();
            let mut updates: Vec<(Day, u64, &crate::message::ExtraditionStatusUpdate)> = Vec::new();
            for msg in k.history.iter().filter(|x| x.sent_at <= p.until) {
                if let Message::ExtraditionStatus(u) = &msg.message
                    && let (Some(day), Some(_)) = (Day::parse(&u.effective_date), u.stage)
                {
                    updates.push((day, msg.position, u));
                }
            }
            updates.sort_by_key(|(d, at, _)| (*d, *at));
            for (day, _, u) in updates {
                x.history
                    .push((crate::case::Side::Requested, u.clone(), day));
            }
            let today = Day::of_unix(p.until);
            for d in x.deadlines(ECE) {
                let state = match d.met {
                    Some(met) if met <= d.due => "met",
                    Some(_) => "missed",
                    None if today > d.due => "missed",
                    None => "open",
                };
                bump(&mut deadlines, state);
            }
        }
    }
    Figures {
        format: FORMAT.into(),
        agency: p.agency.to_string(),
        from: crate::time::format_unix(p.from),
        until: crate::time::format_unix(p.until),
        threshold: p.threshold,
        cases: c,
        messages: m,
        victims: suppress::Table::suppressed(&AGE_BANDS, &GENDERS, &victims, p.threshold),
        durations: durations
            .into_iter()
            .map(|(k, v)| (k.to_string(), Duration::of(v)))
            .collect(),
        extradition_deadlines: deadlines,
    }
}

#[cfg(test)]
mod tests;
