//! Collecting every problem with a message, in words a clerk can act on.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Authority, Handling, HandlingCode, Offence, Urgency, UrgencyLevel};

/// One problem: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The field, as a JSON path such as `assistance[0].targets`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Every problem found in a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem.
    pub fn push(&mut self, field: &str, message: &str) {
        self.0.push(Problem {
            field: field.to_string(),
            message: message.to_string(),
        });
    }

    /// No problems.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when a problem names this field.
    pub fn mentions(&self, field: &str) -> bool {
        self.0.iter().any(|p| p.field == field)
    }

    pub(crate) fn text(&mut self, field: &str, value: &str, missing: &str) {
        if value.trim().is_empty() {
            self.push(field, missing);
        }
    }

    pub(crate) fn opt_date(&mut self, field: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.date(field, v);
        }
    }

    pub(crate) fn date(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.push(field, "is missing (a date, YYYY-MM-DD)");
        } else if !is_date(value) {
            self.push(
                field,
                &format!("`{value}` is not a date in the form YYYY-MM-DD"),
            );
        }
    }

    pub(crate) fn opt_datetime(&mut self, field: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.datetime(field, v);
        }
    }

    pub(crate) fn datetime(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.push(field, "is missing (a UTC time, YYYY-MM-DDTHH:MM:SSZ)");
        } else if !is_datetime(value) {
            self.push(
                field,
                &format!("`{value}` is not a UTC time in the form YYYY-MM-DDTHH:MM:SSZ"),
            );
        }
    }

    pub(crate) fn country(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.push(field, "is missing (the two-letter ISO 3166-1 country code)");
        } else if !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())) {
            self.push(
                field,
                &format!("`{value}` is not a two-letter ISO 3166-1 country code such as FR"),
            );
        }
    }

    pub(crate) fn authority(&mut self, field: &str, a: &Authority, role: &str) {
        self.text(
            &format!("{field}.name"),
            &a.name,
            &format!("the {role} is not named"),
        );
        self.country(&format!("{field}.country"), &a.country);
        if let Some(agency) = &a.agency
            && !a.country.is_empty()
            && agency.country() != a.country
        {
            self.push(
                &format!("{field}.agency"),
                "the agency id's country differs from the authority's country",
            );
        }
        for (i, c) in a.contacts.iter().enumerate() {
            self.text(
                &format!("{field}.contacts[{i}].name"),
                &c.name,
                "a contact needs a name or function",
            );
            if c.email.is_none() && c.phone.is_none() {
                self.push(
                    &format!("{field}.contacts[{i}]"),
                    "a contact needs an e-mail address or a telephone number",
                );
            }
        }
    }

    pub(crate) fn offences(&mut self, field: &str, offences: &[Offence]) {
        if offences.is_empty() {
            self.push(
                field,
                "no offence is described: name at least one, with its legal classification",
            );
        }
        for (i, o) in offences.iter().enumerate() {
            self.text(
                &format!("{field}[{i}].description"),
                &o.description,
                "the offence is not described",
            );
            self.text(
                &format!("{field}[{i}].legal_classification"),
                &o.legal_classification,
                "the provision of law defining the offence is missing",
            );
            if let Some(code) = &o.iccs
                && !iccs_valid(code)
            {
                self.push(
                    &format!("{field}[{i}].iccs"),
                    "an ICCS code is 2, 4, 5 or 6 digits, its section 01 to 11 (e.g. 0302, 03022)",
                );
            }
        }
    }

    pub(crate) fn handling(&mut self, field: &str, h: &Handling) {
        if h.codes.is_empty() {
            self.push(
                &format!("{field}.codes"),
                "no handling code is given (H0 purpose only, H1 not for court, H2 no onward sharing, H3 other)",
            );
        }
        let mut sorted = h.codes.clone();
        sorted.sort();
        sorted.dedup();
        if sorted != h.codes {
            self.push(
                &format!("{field}.codes"),
                "list each handling code once, in order H0, H1, H2, H3",
            );
        }
        if h.codes.contains(&HandlingCode::H3)
            && h.restrictions.as_deref().unwrap_or("").trim().is_empty()
        {
            self.push(
                &format!("{field}.restrictions"),
                "code H3 needs the other restrictions spelt out",
            );
        }
        if h.codes.contains(&HandlingCode::H0)
            && h.purpose.as_deref().unwrap_or("").trim().is_empty()
        {
            self.push(
                &format!("{field}.purpose"),
                "code H0 needs the purpose the information may be used for",
            );
        }
    }

    pub(crate) fn attachments(&mut self, field: &str, list: &[super::AttachmentRef]) {
        for (i, a) in list.iter().enumerate() {
            let f = format!("{field}[{i}]");
            self.text(&format!("{f}.name"), &a.name, "the attachment has no name");
            self.text(
                &format!("{f}.media_type"),
                &a.media_type,
                "the attachment's media type is missing",
            );
            if a.sha256.is_none() {
                self.push(
                    &format!("{f}.sha256"),
                    "the attachment's SHA-256 is missing",
                );
            }
        }
    }

    pub(crate) fn target(&mut self, field: &str, t: &super::Target) {
        if t.kind.is_none() {
            self.push(&format!("{field}.kind"), "say what kind of target this is");
        }
        self.text(
            &format!("{field}.identifier"),
            &t.identifier,
            "the target is not identified",
        );
    }

    pub(crate) fn urgency(&mut self, field: &str, u: &Urgency) {
        if u.level != UrgencyLevel::Routine && u.reason.as_deref().unwrap_or("").trim().is_empty() {
            self.push(
                &format!("{field}.reason"),
                "an urgent or emergency request must say why (e.g. risk to a child's life)",
            );
        }
        self.opt_date(&format!("{field}.deadline"), &u.deadline);
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {}: {}", p.field, p.message)?;
        }
        Ok(())
    }
}

/// A calendar date `YYYY-MM-DD` (proleptic Gregorian).
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1900 && (1..=days).contains(&d)
}

/// A UTC time `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
pub(crate) fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return false;
    }
    let two = |i: usize| -> Option<u32> {
        let p = &s[i..i + 2];
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())
            .flatten()
    };
    is_date(&s[..10])
        && two(11).is_some_and(|h| h < 24)
        && two(14).is_some_and(|m| m < 60)
        && two(17).is_some_and(|sec| sec < 60)
}

/// Lists the object keys present in `input` but absent from `parsed` (the re-serialized form of
/// what was understood): fields the type does not have. Explicit `null`s are ignored.
pub(crate) fn unknown_fields(
    input: &serde_json::Value,
    parsed: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (input, parsed) {
        (Value::Object(i), Value::Object(p)) => {
            for (k, v) in i {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match p.get(k) {
                    Some(pv) => unknown_fields(v, pv, &sub, out),
                    None if v.is_null() => {}
                    None => out.push(sub),
                }
            }
        }
        (Value::Array(i), Value::Array(p)) => {
            for (n, (iv, pv)) in i.iter().zip(p).enumerate() {
                unknown_fields(iv, pv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// A code of the UNODC International Classification of Crime for Statistical Purposes: a
/// section (`01` to `11`), a division (4 digits), a group (5) or a class (6).
pub fn iccs_valid(code: &str) -> bool {
    matches!(code.len(), 2 | 4 | 5 | 6)
        && code.bytes().all(|b| b.is_ascii_digit())
        && matches!(code[..2].parse::<u8>(), Ok(1..=11))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert!(is_date("2026-11-29"));
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2025-02-29"));
        assert!(!is_date("2026-13-01"));
        assert!(!is_date("2026-1-01"));
        assert!(!is_date("2026-11-29T"));
        assert!(is_datetime("2026-11-29T23:59:59Z"));
        assert!(!is_datetime("2026-11-29T24:00:00Z"));
        assert!(!is_datetime("2026-11-29T10:00:00+01:00"));
    }
}
