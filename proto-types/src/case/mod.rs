//! Case state machines (spec/CASES.md): which side may move a case from which state to which,
//! and the deadlines the dates of an extradition's stages start. Pure functions: a transition is
//! applied whole or refused with the reason, never half-applied.

pub mod authz;
pub mod extradition;
pub mod mla;
pub mod order;
pub mod preservation;

use std::fmt;

/// The two sides of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The agency that made the request (or the provisional-arrest request).
    Requesting,
    /// The agency the request is addressed to, which executes it.
    Requested,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Requesting => "the requesting side",
            Side::Requested => "the requested side",
        })
    }
}

/// Why a transition was refused; the message is written for the clerk who attempted it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IllegalTransition(pub String);

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Requesting => Side::Requested,
            Side::Requested => Side::Requesting,
        }
    }
}

/// A deadline of one case, computed from its history: an extradition's statutory periods
/// ([`extradition::ECE`]) or a preservation period ([`preservation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// Short name of the rule, e.g. `formal-request-18`.
    pub name: &'static str,
    /// What must happen, in a clerk's words.
    pub what: &'static str,
    /// The legal source.
    pub source: &'static str,
    /// The day it started.
    pub started: Day,
    /// The last day allowed.
    pub due: Day,
    /// The day it was met, if it was.
    pub met: Option<Day>,
}

impl Deadline {
    /// Open and past its due day on `today`.
    pub fn overdue(&self, today: Day) -> bool {
        self.met.is_none() && today > self.due
    }

    /// Open and due within `days` of `today` (or overdue).
    pub fn due_within(&self, today: Day, days: i64) -> bool {
        self.met.is_none() && self.due <= today.plus(days)
    }
}

/// A calendar date as days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// Parses `YYYY-MM-DD` (or the date part of `YYYY-MM-DDTHH:MM:SSZ`).
    pub fn parse(s: &str) -> Option<Day> {
        let d = s.get(..10)?;
        let b = d.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y: i64 = d.get(..4)?.parse().ok()?;
        let m: u32 = d.get(5..7)?.parse().ok()?;
        let day: u32 = d.get(8..10)?.parse().ok()?;
        if !(1..=12).contains(&m) || day == 0 || day > days_in_month(y, m) {
            return None;
        }
        Some(Day(crate::time::days_from_civil(y, m, day)))
    }

    /// The day of a Unix time.
    pub fn of_unix(secs: u64) -> Day {
        Day((secs / 86_400) as i64)
    }

    /// `n` days later.
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = crate::time::civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_print_and_count() {
        let d = Day::parse("2026-02-28").unwrap();
        assert_eq!(d.plus(1).to_string(), "2026-03-01");
        assert_eq!(
            Day::parse("2024-02-28").unwrap().plus(1).to_string(),
            "2024-02-29"
        );
        assert_eq!(
            Day::parse("2026-11-29T10:00:00Z").unwrap().to_string(),
            "2026-11-29"
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "26-01-01",
            "2026/01/01",
            "",
        ] {
            assert!(Day::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Day::of_unix(0).to_string(), "1970-01-01");
    }
}
