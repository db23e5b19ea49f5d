//! The console's words in English, French and Spanish (the UN working languages central
//! authorities use), from Fluent message catalogs (`locales/*.ftl`, Project Fluent syntax), and
//! dates in the reader's language with UTC shown.

use std::sync::OnceLock;

use axum::http::{HeaderMap, header};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// French.
    Fr,
    /// Spanish.
    Es,
}

const SOURCES: [(Lang, &str, &str); 3] = [
    (Lang::En, "en", include_str!("locales/en.ftl")),
    (Lang::Fr, "fr", include_str!("locales/fr.ftl")),
    (Lang::Es, "es", include_str!("locales/es.ftl")),
];

fn bundles() -> &'static [FluentBundle<FluentResource>; 3] {
    static B: OnceLock<[FluentBundle<FluentResource>; 3]> = OnceLock::new();
    B.get_or_init(|| {
        SOURCES.map(|(_, code, text)| {
            let id: unic_langid::LanguageIdentifier = code.parse().unwrap_or_default();
            let mut b = FluentBundle::new_concurrent(vec![id]);
            // No Unicode isolation marks around arguments: pages are in one direction.
            b.set_use_isolating(false);
            let res = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
            let _ = b.add_resource(res);
            b
        })
    })
}

impl Lang {
    /// Every language, in the order the switcher shows them.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Fr, Lang::Es];

    /// The BCP 47 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    /// The language's own name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
            Lang::Es => "Español",
        }
    }

    /// A code, as a form gives it.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s)
    }

    /// The first of the browser's languages the console speaks (English otherwise).
    pub fn from_headers(h: &HeaderMap) -> Lang {
        h.get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(',')
            .filter_map(|part| part.split(';').next())
            .filter_map(|tag| Lang::parse(tag.trim().split('-').next().unwrap_or("")))
            .next()
            .unwrap_or(Lang::En)
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        &bundles()[self as usize]
    }

    /// The message `key`; the English one if this language lacks it; the key itself if no
    /// catalog has it (a test checks every key used is in every catalog).
    pub fn t(self, key: &str) -> String {
        self.t_args(key, None)
    }

    /// The message `key` with its arguments.
    pub fn t_with(self, key: &str, args: &[(&str, String)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, v.clone());
        }
        self.t_args(key, Some(&a))
    }

    fn t_args(self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        for b in [self.bundle(), Lang::En.bundle()] {
            if let Some(p) = b.get_message(key).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return b.format_pattern(p, args, &mut errors).into_owned();
            }
        }
        key.to_string()
    }

    /// A time (`YYYY-MM-DDTHH:MM:SSZ`) in this language, UTC shown: `7 Dec 2026, 12:40 UTC`,
    /// `7 déc. 2026, 12:40 UTC`, `7 dic 2026, 12:40 UTC`. Anything else is shown as given.
    pub fn time(self, t: &str) -> String {
        let Some(secs) = rogatory_proto::time::parse_utc(t) else {
            return self.date(t);
        };
        let day = &t[..10];
        format!(
            "{}, {} UTC",
            self.date(day),
            &rogatory_proto::time::format_unix(secs)[11..16]
        )
    }

    /// A date (`YYYY-MM-DD`) in this language.
    pub fn date(self, d: &str) -> String {
        let months: [&str; 12] = match self {
            Lang::En => [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ],
            Lang::Fr => [
                "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                "nov.", "déc.",
            ],
            Lang::Es => [
                "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
            ],
        };
        let parts: Vec<&str> = d.get(..10).unwrap_or("").split('-').collect();
        match parts.as_slice() {
            [y, m, day] => match (m.parse::<usize>(), day.parse::<u32>()) {
                (Ok(m @ 1..=12), Ok(day)) => format!("{day} {} {y}", months[m - 1]),
                _ => d.to_string(),
            },
            _ => d.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of a catalog.
    fn keys(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with([' ', '#', '\t']) && l.contains(" ="))
            .map(|l| l.split(" =").next().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn every_catalog_parses_and_has_every_key_of_the_english_one() {
        let en = keys(SOURCES[0].2);
        assert!(en.len() > 50, "{}", en.len());
        for (lang, code, text) in SOURCES {
            assert!(FluentResource::try_new(text.to_string()).is_ok(), "{code}");
            let mine = keys(text);
            for k in &en {
                assert!(mine.contains(k), "{code} lacks {k}");
            }
            assert_ne!(lang.t("nav-today"), "nav-today");
        }
        // Every key the pages use is in the English catalog.
        let used = include_str!("pages.rs").to_string()
            + include_str!("render.rs")
            + include_str!("request.rs")
            + include_str!("evidence.rs")
            + include_str!("audit.rs")
            + include_str!("extradition.rs");
        let mut rest = used.as_str();
        while let Some(i) = rest.find(".t(\"") {
            let tail = &rest[i + 4..];
            let key = &tail[..tail.find('"').unwrap_or(0)];
            assert!(
                en.iter().any(|k| k == key),
                "{key} is used but not in en.ftl"
            );
            rest = tail;
        }
    }

    #[test]
    fn dates_in_the_readers_language_with_utc() {
        assert_eq!(
            Lang::En.time("2026-12-07T12:40:05Z"),
            "7 Dec 2026, 12:40 UTC"
        );
        assert_eq!(
            Lang::Fr.time("2026-12-07T12:40:05Z"),
            "7 déc. 2026, 12:40 UTC"
        );
        assert_eq!(Lang::Es.date("2026-08-01"), "1 ago 2026");
        assert_eq!(Lang::Fr.date("not a date"), "not a date");
        assert_eq!(
            Lang::from_headers(&{
                let mut h = HeaderMap::new();
                h.insert(
                    header::ACCEPT_LANGUAGE,
                    "de-DE,es;q=0.8,en;q=0.5".parse().unwrap(),
                );
                h
            }),
            Lang::Es
        );
    }
}
