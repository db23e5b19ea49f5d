//! The console's page frame, its sign-in page and small pieces every page uses. HTML is built
//! with maud, which escapes every value it inserts.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::{Lang, Who};

/// HTML-escapes text (for the few answers not built with maud).
pub(super) use rogatory_proto::bundle::esc;

impl super::Console {
    /// A page in the console's frame, as an answer.
    pub(super) fn page(&self, who: &Who, here: &str, title: &str, body: Markup) -> Page {
        Ok(page_html(layout(who, &self.agency, here, title, body)))
    }
}

/// A page as an answer.
pub(super) fn page_html(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// The hidden CSRF field every form of a session carries.
pub(super) fn csrf(who: &Who) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf); }
}

/// The pages of the navigation: path, catalog key.
const NAV: [(&str, &str); 9] = [
    ("/", "nav-today"),
    ("/cases", "nav-cases"),
    ("/new", "nav-new"),
    ("/inbox", "nav-inbox"),
    ("/outbox", "nav-outbox"),
    ("/drafts", "nav-drafts"),
    ("/partners", "nav-partners"),
    ("/stats", "nav-stats"),
    ("/verify", "nav-verify"),
];

/// A page in the console's frame: a skip link, the navigation (the current page marked for
/// screen readers), who is signed in, the language switcher and sign-out.
pub(super) fn layout(who: &Who, agency: &str, here: &str, title: &str, body: Markup) -> Markup {
    let l = who.lang;
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (agency) " — Rogatory" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { (l.t("skip-to-content")) }
                header {
                    p.brand { "Rogatory · " strong { (agency) } }
                    nav aria-label=(l.t("nav-label")) {
                        ul {
                            @for (path, key) in NAV {
                                li {
                                    @if path == here {
                                        a href=(path) aria-current="page" { (l.t(key)) }
                                    } @else {
                                        a href=(path) { (l.t(key)) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (l.t("signed-in-as")) " " strong { (who.user) } }
                        @if !who.me.roles.is_empty() {
                            " (" (who.me.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) ")"
                        }
                        form method="post" action="/language" {
                            (csrf(who))
                            input type="hidden" name="back" value=(here);
                            label for="lang" { (l.t("language")) }
                            select id="lang" name="lang" {
                                @for x in Lang::ALL {
                                    option value=(x.code()) selected[x == l] { (x.name()) }
                                }
                            }
                            button type="submit" { (l.t("change")) }
                        }
                        form method="post" action="/logout" {
                            (csrf(who))
                            button type="submit" { (l.t("sign-out")) }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The sign-in page.
pub(super) fn login(agency: &str, l: Lang, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (l.t("sign-in")) " — " (agency) " — Rogatory" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                main id="main" {
                    h1 { (l.t("sign-in")) " — " (agency) }
                    p { (l.t("sign-in-help")) }
                    @if let Some(e) = error {
                        p.error role="alert" { (l.t("sign-in-refused")) " " (e) }
                    }
                    form method="post" action="/login" {
                        p {
                            label for="token" { (l.t("your-token")) }
                            input id="token" name="token" type="password" required autocomplete="current-password";
                        }
                        p {
                            label for="name" { (l.t("your-name")) }
                            input id="name" name="name" type="text" autocomplete="username";
                            small { (l.t("your-name-help")) }
                        }
                        p {
                            label for="lang" { (l.t("language")) }
                            select id="lang" name="lang" {
                                @for x in Lang::ALL {
                                    option value=(x.code()) selected[x == l] { (x.name()) }
                                }
                            }
                        }
                        button type="submit" { (l.t("sign-in")) }
                    }
                }
            }
        }
    }
}

/// A time cell: the reader's language, the machine form in `datetime`.
pub(super) fn when(l: Lang, t: &str) -> Markup {
    html! { time datetime=(t) { (l.time(t)) } }
}

/// A short form of a long hex id, the whole in its title.
pub(super) fn short(id: &str) -> Markup {
    let s: String = id.chars().take(8).collect();
    html! { code title=(id) { (s) "…" } }
}

/// The notices a page may show after a form, and the argument each takes. A notice is kept in
/// the session and shown once by the next page (never read from the address: a link from
/// elsewhere cannot make a page say something the console did not do).
pub(super) const NOTICES: [(&str, Option<&str>); 6] = [
    ("status-sent", Some("status")),
    ("draft-kept", Some("id")),
    ("request-sent", None),
    ("draft-approved", None),
    ("draft-rejected", None),
    ("manifest-sent", Some("n")),
];

/// A notice at the top of a page, for screen readers too.
pub(super) fn notice(l: Lang, flash: Option<(&'static str, Option<String>)>) -> Markup {
    let text = flash.and_then(|(key, arg)| {
        NOTICES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(k, name)| match (name, arg) {
                (Some(n), Some(a)) => l.t_with(k, &[(n, a)]),
                (Some(n), None) => l.t_with(k, &[(n, String::new())]),
                (None, _) => l.t(k),
            })
    });
    html! {
        @if let Some(t) = text {
            p.notice role="status" { (t) }
        }
    }
}

/// What a page handler answers.
pub(super) type Page = Result<Response, super::Failure>;

/// Percent-encodes a path segment.
pub(super) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
