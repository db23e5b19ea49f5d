//! Preservation requests (Budapest Convention Art. 29): the period the requested side keeps the
//! data, and the deadline it sets for the MLA request that must follow.
//!
//! The period runs from the day the request was sent (the envelope's `sent_at`, the same on both
//! nodes) for the `period_days` it asks for (at least
//! [`MIN_PRESERVATION_DAYS`](crate::message::MIN_PRESERVATION_DAYS)). An MLA request sent in the
//! same case meets it: under Art. 29(7) the data then stays preserved until that request is
//! decided. Until then the node lists the deadline (`rogatory deadlines`), warns in its log as
//! the day approaches, and flags the case overdue once the period has lapsed.

use super::{Day, Deadline};

/// The rule's name in listings.
pub const RULE: &str = "preservation-period";

/// The deadline of a preservation requested on `requested` for `period_days`, met on the day an
/// MLA request followed, if one did.
pub fn deadline(requested: Day, period_days: u32, mla_request: Option<Day>) -> Deadline {
    Deadline {
        name: RULE,
        what: "the MLA request for the preserved data must follow, or the data may be released",
        source: "Budapest Convention Art. 29(7): preserved for at least 60 days, and kept pending \
                 the decision once the MLA request is received",
        started: requested,
        due: requested.plus(i64::from(period_days)),
        met: mla_request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_runs_from_the_request_and_an_mla_request_meets_it() {
        let d = deadline(Day::parse("2026-11-01").unwrap(), 60, None);
        assert_eq!(d.due.to_string(), "2026-12-31");
        assert!(!d.overdue(Day::parse("2026-12-31").unwrap()));
        assert!(d.overdue(Day::parse("2027-01-01").unwrap()));
        assert!(d.due_within(Day::parse("2026-12-24").unwrap(), 7));
        assert!(!d.due_within(Day::parse("2026-12-23").unwrap(), 7));
        let met = deadline(
            Day::parse("2026-11-01").unwrap(),
            90,
            Day::parse("2026-12-01"),
        );
        assert!(!met.overdue(Day::parse("2027-06-01").unwrap()));
        assert!(!met.due_within(Day::parse("2027-06-01").unwrap(), 7));
    }
}
