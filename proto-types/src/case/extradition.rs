//! Extradition stages and their deadlines (spec/CASES.md §2).
//!
//! The requesting side asks for a provisional arrest, sends the formal request, and may withdraw;
//! the requested side (where the person is) reports everything that happens there. Deadlines are
//! data ([`DeadlineRule`]): each starts on the date of a stage and is met by reaching one of a set
//! of stages; the defaults ([`ECE`]) are the European Convention on Extradition's and its Third
//! Additional Protocol's.

pub use super::Deadline;
use super::{Day, IllegalTransition, Side};
use crate::message::{ExtraditionDecision, ExtraditionStage, ExtraditionStatusUpdate};

use ExtraditionStage::*;

/// Every stage, in procedure order.
pub const ALL: [ExtraditionStage; 15] = [
    ProvisionalArrestRequested,
    Arrested,
    ConsentGiven,
    FormalRequestReceived,
    HearingScheduled,
    HearingHeld,
    JudicialDecision,
    ExecutiveDecision,
    AppealLodged,
    AppealDecided,
    SurrenderScheduled,
    Surrendered,
    Released,
    Discharged,
    Withdrawn,
];

/// Stages after which nothing more happens.
pub const FINAL: [ExtraditionStage; 3] = [Surrendered, Discharged, Withdrawn];

/// Stages an extradition may start with.
pub const FIRST: [ExtraditionStage; 2] = [ProvisionalArrestRequested, FormalRequestReceived];

/// Which side reports a stage.
pub fn reported_by(stage: ExtraditionStage) -> &'static [Side] {
    match stage {
        ProvisionalArrestRequested | Withdrawn => &[Side::Requesting],
        // The requesting side sends the formal request; the requested side acknowledges it.
        FormalRequestReceived => &[Side::Requesting, Side::Requested],
        _ => &[Side::Requested],
    }
}

/// The stages that may follow `from`, given the decision recorded at `from` (if any).
pub fn next(
    from: ExtraditionStage,
    decision: Option<ExtraditionDecision>,
) -> Vec<ExtraditionStage> {
    use ExtraditionDecision::Granted;
    let mut v: Vec<ExtraditionStage> = match (from, decision) {
        (ProvisionalArrestRequested, _) => vec![Arrested, FormalRequestReceived],
        (Arrested, _) => vec![ConsentGiven, FormalRequestReceived, Released],
        (ConsentGiven, _) => vec![ExecutiveDecision, SurrenderScheduled, Released],
        (FormalRequestReceived, _) => {
            vec![
                Arrested,
                ConsentGiven,
                HearingScheduled,
                Released,
                Discharged,
            ]
        }
        (HearingScheduled, _) => vec![HearingScheduled, HearingHeld, ConsentGiven, Released],
        (HearingHeld, _) => vec![HearingScheduled, JudicialDecision],
        (JudicialDecision | AppealDecided, Some(Granted)) => {
            vec![ExecutiveDecision, AppealLodged, SurrenderScheduled]
        }
        (JudicialDecision | AppealDecided, _) => vec![AppealLodged, Released, Discharged],
        (ExecutiveDecision, Some(Granted)) => vec![SurrenderScheduled, AppealLodged],
        (ExecutiveDecision, _) => vec![AppealLodged, Released, Discharged],
        (AppealLodged, _) => vec![AppealDecided],
        (SurrenderScheduled, _) => vec![SurrenderScheduled, Surrendered, Released],
        // Release does not end the case: the person may be re-arrested once the formal request
        // arrives (ECE Art. 16(5)).
        (Released, _) => vec![
            Arrested,
            FormalRequestReceived,
            HearingScheduled,
            Discharged,
        ],
        (Surrendered | Discharged | Withdrawn, _) => vec![],
    };
    if !FINAL.contains(&from) {
        v.push(Withdrawn);
    }
    v
}

/// One deadline rule: `days` after the date of `starts` (or, with `from_scheduled`, after the
/// date the stage scheduled), unless one of `met_by` is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeadlineRule {
    /// Short name, e.g. `formal-request-18`.
    pub name: &'static str,
    /// What must happen, in a clerk's words.
    pub what: &'static str,
    /// The legal source.
    pub source: &'static str,
    /// The stage whose date starts it.
    pub starts: ExtraditionStage,
    /// Counted from the scheduled date the stage names instead of its effective date.
    pub from_scheduled: bool,
    /// Only when the case began with a provisional-arrest request.
    pub after_provisional_arrest: bool,
    /// Days allowed.
    pub days: i64,
    /// Stages that meet it.
    pub met_by: &'static [ExtraditionStage],
}

/// The default rules: the European Convention on Extradition (ETS No. 24) and its Third
/// Additional Protocol (CETS No. 209) on simplified extradition.
pub const ECE: &[DeadlineRule] = &[
    DeadlineRule {
        name: "formal-request-18",
        what: "the formal request must arrive, or the person may be released",
        source: "ECE Art. 16(4): release may be ordered 18 days after the arrest",
        starts: Arrested,
        from_scheduled: false,
        after_provisional_arrest: true,
        days: 18,
        met_by: &[FormalRequestReceived, ConsentGiven, Released, Withdrawn],
    },
    DeadlineRule {
        name: "formal-request-40",
        what: "the formal request must arrive, or the person must be released",
        source: "ECE Art. 16(4): provisional detention may not exceed 40 days",
        starts: Arrested,
        from_scheduled: false,
        after_provisional_arrest: true,
        days: 40,
        met_by: &[FormalRequestReceived, ConsentGiven, Released, Withdrawn],
    },
    DeadlineRule {
        name: "consent-decision-20",
        what: "the decision on simplified extradition must be notified",
        source: "Third Additional Protocol Art. 7: notified within 20 days of the consent",
        starts: ConsentGiven,
        from_scheduled: false,
        after_provisional_arrest: false,
        days: 20,
        met_by: &[ExecutiveDecision, SurrenderScheduled, Released, Withdrawn],
    },
    DeadlineRule {
        name: "surrender-15",
        what: "the person must be taken over, or may be released",
        source: "ECE Art. 18(4): release may be ordered 15 days after the date fixed for surrender",
        starts: SurrenderScheduled,
        from_scheduled: true,
        after_provisional_arrest: false,
        days: 15,
        met_by: &[Surrendered, SurrenderScheduled, Released, Withdrawn],
    },
    DeadlineRule {
        name: "surrender-30",
        what: "the person must be taken over, or must be released",
        source: "ECE Art. 18(4): release in any case 30 days after the date fixed for surrender",
        starts: SurrenderScheduled,
        from_scheduled: true,
        after_provisional_arrest: false,
        days: 30,
        met_by: &[Surrendered, SurrenderScheduled, Released, Withdrawn],
    },
];

/// An extradition's state on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraditionCase {
    /// Every update applied, with the side that made it and its effective day, in order.
    pub history: Vec<(Side, ExtraditionStatusUpdate, Day)>,
}

impl ExtraditionCase {
    /// The current stage and its decision (`None` before the first update).
    pub fn stage(&self) -> Option<(ExtraditionStage, Option<ExtraditionDecision>)> {
        self.history
            .last()
            .and_then(|(_, u, _)| u.stage.map(|s| (s, u.decision)))
    }

    /// Applies an update by `side`: valid, reported by the right side, allowed after the current
    /// stage, and not dated before it; or refused with nothing changed.
    pub fn apply(
        &mut self,
        side: Side,
        update: &ExtraditionStatusUpdate,
    ) -> Result<(), IllegalTransition> {
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
        let (Some(to), Some(day)) = (update.stage, Day::parse(&update.effective_date)) else {
            return Err(IllegalTransition("the stage or its date is missing".into()));
        };
        if !reported_by(to).contains(&side) {
            return Err(IllegalTransition(format!(
                "{} is reported by {}, not by {side}",
                to.as_str(),
                reported_by(to)[0]
            )));
        }
        match self.stage() {
            None if !FIRST.contains(&to) => {
                return Err(IllegalTransition(format!(
                    "an extradition starts with provisional-arrest-requested or formal-request-received, not {}",
                    to.as_str()
                )));
            }
            None => {}
            Some((from, decision)) => {
                let options = next(from, decision);
                if !options.contains(&to) {
                    let list = options.iter().map(|s| s.as_str()).collect::<Vec<_>>();
                    return Err(IllegalTransition(if list.is_empty() {
                        format!(
                            "the extradition ended at {}; it cannot change",
                            from.as_str()
                        )
                    } else {
                        format!(
                            "after {} the next stage can be: {}; not {}",
                            from.as_str(),
                            list.join(", "),
                            to.as_str()
                        )
                    }));
                }
                if let Some((_, _, last)) = self.history.last()
                    && day < *last
                {
                    return Err(IllegalTransition(format!(
                        "{} is dated {day}, before the previous stage ({last})",
                        to.as_str()
                    )));
                }
            }
        }
        self.history.push((side, update.clone(), day));
        Ok(())
    }

    /// The deadlines under `rules`, met or open, in the order they started.
    pub fn deadlines(&self, rules: &[DeadlineRule]) -> Vec<Deadline> {
        let provisional = self
            .history
            .first()
            .is_some_and(|(_, u, _)| u.stage == Some(ProvisionalArrestRequested));
        let mut out: Vec<Deadline> = Vec::new();
        for (i, (_, u, day)) in self.history.iter().enumerate() {
            let Some(stage) = u.stage else { continue };
            for rule in rules {
                if rule.starts != stage || (rule.after_provisional_arrest && !provisional) {
                    continue;
                }
                let started = if rule.from_scheduled {
                    match u.scheduled_for.as_deref().and_then(Day::parse) {
                        Some(d) => d,
                        None => continue,
                    }
                } else {
                    *day
                };
                // A rule running again (a new arrest, a new surrender date) replaces the old one.
                out.retain(|d| d.name != rule.name || d.met.is_some());
                let met = self.history[i + 1..]
                    .iter()
                    .find(|(_, later, _)| later.stage.is_some_and(|s| rule.met_by.contains(&s)))
                    .map(|(_, _, d)| *d);
                out.push(Deadline {
                    name: rule.name,
                    what: rule.what,
                    source: rule.source,
                    started,
                    due: started.plus(rule.days),
                    met,
                });
            }
        }
        out
    }
}

/// The stages as a Mermaid state diagram (spec/CASES.md holds the same text; a test keeps them
/// equal). Edges that depend on a decision are labelled with it.
pub fn mermaid() -> String {
    let name = |s: ExtraditionStage| s.as_str().replace('-', "_");
    let mut out = String::from("stateDiagram-v2\n");
    for s in FIRST {
        out.push_str(&format!("    [*] --> {}\n", name(s)));
    }
    for from in ALL {
        let granted = next(from, Some(ExtraditionDecision::Granted));
        let refused = next(from, Some(ExtraditionDecision::Refused));
        for to in ALL {
            let label = match (granted.contains(&to), refused.contains(&to)) {
                (true, true) => "",
                (true, false) => ": granted",
                (false, true) => ": refused",
                (false, false) => continue,
            };
            out.push_str(&format!("    {} --> {}{label}\n", name(from), name(to)));
        }
    }
    for s in FINAL {
        out.push_str(&format!("    {} --> [*]\n", name(s)));
    }
    out
}
